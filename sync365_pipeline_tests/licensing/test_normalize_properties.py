"""Properties of the normalizer over arbitrary (hostile) JSON: it answers with rows that can be
stored, or refuses with `MalformedPayload`, and never fails any other way; over well-formed JSON
its rows are the facts a plain reference computes, value for value and type for type."""

from __future__ import annotations

import copy
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync365_pipeline.catalog import SkuCatalog, SkuName
from sync365_pipeline.licensing.normalize import (
    CAPABILITY_PRECEDENCE,
    MAX_COUNT,
    MAX_TEXT_LENGTH,
    FactRows,
    MalformedPayload,
    Normalized,
    customers_frame,
    license_fact_rows,
)
from sync365_pipeline.warehouse import SkippedRecord
from sync365_pipeline.warehouse.columns import LICENSE_FACT_COLUMNS, UNIT_COLUMNS

PARTNER = "11111111-1111-1111-1111-111111111111"
TENANT = "b44bb1fb-c595-45b0-9e09-d657365580bf"
SKU_IDS = ["cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "f8a1db68-be16-40ed-86d5-cb42ce701560"]
SNAPSHOT = date(2026, 7, 1)
SYNCED_AT = datetime(2026, 7, 1, 7, 30, 15, 123456, tzinfo=UTC)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(SKU_IDS),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
counts = st.one_of(st.integers(min_value=0, max_value=MAX_COUNT), json_scalars)
sku_records = st.fixed_dictionaries(
    {
        "skuId": st.one_of(st.sampled_from(SKU_IDS), json_scalars),
        "skuPartNumber": st.one_of(st.text(max_size=2000), json_scalars),
        "capabilityStatus": st.one_of(st.sampled_from(["Enabled", "Warning"]), json_scalars),
        "consumedUnits": counts,
        "prepaidUnits": st.one_of(
            st.fixed_dictionaries(
                {"enabled": counts, "suspended": counts, "warning": counts},
                optional={"lockedOut": counts},
            ),
            json_values,
        ),
    },
    optional={"id": json_scalars, "accountId": json_scalars},
)
sku_lists = st.one_of(st.lists(st.one_of(sku_records, json_values), max_size=6), json_values)


def assert_safe_text(value: object) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # no lone surrogate
        assert len(value) <= MAX_TEXT_LENGTH
        assert not any(ord(ch) < 32 for ch in value)


def assert_reasons_short(skipped: tuple[SkippedRecord, ...]) -> None:
    for record in skipped:
        assert len(record.reason) < 400


def assert_storable_rows(result: FactRows) -> None:
    for row in result.rows:
        fact = dict(zip(LICENSE_FACT_COLUMNS, row, strict=True))
        for column in (*UNIT_COLUMNS, "billing_accounts"):
            assert type(fact[column]) is int
            assert -MAX_COUNT <= fact[column] <= MAX_COUNT
            assert column == "available_units" or fact[column] >= 0
        assert fact["available_units"] == fact["enabled_units"] - fact["consumed_units"]
        for value in row:
            assert_safe_text(value)
    assert_reasons_short(result.skipped)


def assert_storable_frame(result: Normalized) -> None:
    for column in result.frame.columns:
        for value in result.frame[column].dropna():
            assert_safe_text(value)
    assert_reasons_short(result.skipped)


def fact_rows(graph_skus: Any, partner_center_skus: Any, catalog: SkuCatalog) -> FactRows:
    return license_fact_rows(
        partner_tenant_id=PARTNER,
        tenant_id=TENANT,
        snapshot_date=SNAPSHOT,
        synced_at=SYNCED_AT,
        graph_skus=graph_skus,
        partner_center_skus=partner_center_skus,
        catalog=catalog,
    )


@given(graph_skus=sku_lists, partner_center_skus=st.one_of(st.none(), json_values))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_license_facts_store_or_refuse(graph_skus: Any, partner_center_skus: Any) -> None:
    try:
        result = fact_rows(graph_skus, partner_center_skus, SkuCatalog([]))
    except MalformedPayload:
        return
    assert_storable_rows(result)


@given(pc=json_values, gdap=json_values, contracts=json_values)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_customers_store_or_refuse(pc: Any, gdap: Any, contracts: Any) -> None:
    try:
        result = customers_frame(PARTNER, pc, gdap, contracts)
    except MalformedPayload:
        return
    assert_storable_frame(result)


# -- well-formed payloads against a plain reference ----------------------------------------

PART_NUMBERS = {SKU_IDS[0]: "SPB", SKU_IDS[1]: "POWER_BI_PRO"}
PART_NUMBERS["0b0b0b0b-0000-4000-8000-000000000000"] = "NEW_SKU"  # not in the catalog
CATALOG_NAMES = {SKU_IDS[0]: "Microsoft 365 Business Premium", SKU_IDS[1]: "Power BI Pro"}
CATALOG = SkuCatalog(SkuName(sku, PART_NUMBERS[sku], name) for sku, name in CATALOG_NAMES.items())
PREPAID = {"enabled": "enabled_units", "suspended": "suspended_units", "warning": "warning_units"}
unit_counts = st.one_of(st.integers(0, 1000), st.integers(0, MAX_COUNT))  # big ones can overflow


@st.composite
def well_formed_skus(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Graph SKU objects as Microsoft sends them: one per billing account (ids distinct), any
    case of skuId, `lockedOut` sometimes absent, and some objects repeated (a paging overlap)."""
    objects = []
    for index in range(draw(st.integers(0, 6))):
        sku = draw(st.sampled_from(sorted(PART_NUMBERS)))
        prepaid = {key: draw(unit_counts) for key in PREPAID}
        if draw(st.booleans()):
            prepaid["lockedOut"] = draw(unit_counts)
        objects.append(
            {
                draw(st.sampled_from(["id", "accountId"])): f"object-{index}",
                "skuId": sku.upper() if draw(st.booleans()) else sku,
                "skuPartNumber": PART_NUMBERS[sku],
                "capabilityStatus": draw(st.sampled_from([*CAPABILITY_PRECEDENCE, "Pending"])),
                "consumedUnits": draw(unit_counts),
                "prepaidUnits": prepaid,
            }
        )
    repeated = draw(st.lists(st.sampled_from(objects), max_size=2)) if objects else []
    return objects + copy.deepcopy(repeated)


partner_center_names = st.one_of(
    st.none(),
    st.lists(
        st.builds(
            lambda sku, name: {"productSku": {"id": sku, "name": name}},
            st.sampled_from([*PART_NUMBERS, *(sku.upper() for sku in PART_NUMBERS)]),
            st.one_of(st.none(), st.text(alphabet="ab ", max_size=4)),
        ),
        max_size=4,
    ),
)


def reference_frame(
    graph_skus: list[dict[str, Any]], partner_center_skus: list[dict[str, Any]] | None
) -> pd.DataFrame | None:
    """The facts as the frame path held them, computed plainly (None: the tenant is refused):
    distinct objects summed per skuId, the most usable status, Partner Center's name, else the
    catalog's, else the part number; counts int64, `synced_at` datetime64[us] naive UTC."""
    distinct = {(o["skuId"].lower(), o.get("id") or o.get("accountId")): o for o in graph_skus}
    by_sku: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (sku, _), item in distinct.items():
        by_sku[sku].append(item)
    names = {}
    for item in partner_center_skus or []:
        if (name := (item["productSku"]["name"] or "").strip()) != "":
            names[item["productSku"]["id"].lower()] = name
    ranks = {status: rank for rank, status in enumerate(CAPABILITY_PRECEDENCE)}
    facts = []
    for sku in sorted(by_sku):
        items = by_sku[sku]
        units = {
            column: sum(item["prepaidUnits"][key] for item in items)
            for key, column in PREPAID.items()
        }
        units["locked_out_units"] = sum(item["prepaidUnits"].get("lockedOut", 0) for item in items)
        units["consumed_units"] = sum(item["consumedUnits"] for item in items)
        if max(units.values()) > MAX_COUNT:
            return None
        if sku in names:
            name, source = names[sku], "partner_center"
        elif sku in CATALOG_NAMES:
            name, source = CATALOG_NAMES[sku], "catalog"
        else:
            name, source = PART_NUMBERS[sku], "part_number"
        statuses = [item["capabilityStatus"] for item in items]
        facts.append(
            {
                **units,
                "snapshot_date": SNAPSHOT,
                "partner_tenant_id": PARTNER,
                "tenant_id": TENANT,
                "sku_id": sku,
                "sku_part_number": PART_NUMBERS[sku],
                "product_name": name,
                "product_name_source": source,
                "capability_status": min(statuses, key=lambda s: ranks.get(s, len(ranks))),
                "available_units": units["enabled_units"] - units["consumed_units"],
                "billing_accounts": len(items),
                "source": "graph",
                "synced_at": datetime(2026, 7, 1, 7, 30, 15, 123456),
            }
        )
    frame = pd.DataFrame(facts, columns=list(LICENSE_FACT_COLUMNS))
    for column in (*UNIT_COLUMNS, "billing_accounts"):
        frame[column] = frame[column].astype("int64")
    frame["synced_at"] = frame["synced_at"].astype("datetime64[us]")
    return frame


PYTHON_TYPES = {
    "snapshot_date": date,
    "synced_at": datetime,
    **{column: int for column in (*UNIT_COLUMNS, "billing_accounts")},
}


@given(graph_skus=well_formed_skus(), partner_center_skus=partner_center_names)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_rows_are_the_facts_the_frame_held(
    graph_skus: list[dict[str, Any]], partner_center_skus: list[dict[str, Any]] | None
) -> None:
    expected = reference_frame(graph_skus, partner_center_skus)
    if expected is None:
        with pytest.raises(MalformedPayload, match="sums beyond"):
            fact_rows(graph_skus, partner_center_skus, CATALOG)
        return

    result = fact_rows(graph_skus, partner_center_skus, CATALOG)

    assert result.skipped == ()
    assert list(result.rows) == list(expected.itertuples(index=False, name=None))
    for row in result.rows:
        for column, value in zip(LICENSE_FACT_COLUMNS, row, strict=True):
            assert type(value) is PYTHON_TYPES.get(column, str), column
        assert row[LICENSE_FACT_COLUMNS.index("synced_at")].tzinfo is None
