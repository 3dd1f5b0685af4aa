"""Properties of the normalizer over arbitrary (hostile) JSON: it answers with rows that can be
stored, or refuses with `MalformedPayload`, and never fails any other way."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.licensing.normalize import (
    MAX_COUNT,
    MAX_TEXT_LENGTH,
    MalformedPayload,
    Normalized,
    customers_frame,
    license_facts_frame,
)
from sync365_pipeline.warehouse.columns import UNIT_COLUMNS

PARTNER = "11111111-1111-1111-1111-111111111111"
TENANT = "b44bb1fb-c595-45b0-9e09-d657365580bf"
SKU_IDS = ["cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "f8a1db68-be16-40ed-86d5-cb42ce701560"]

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


def assert_storable(result: Normalized) -> None:
    frame = result.frame
    units = [column for column in UNIT_COLUMNS if column in frame]
    for column in units:
        assert str(frame[column].dtype) == "int64"
    assert (frame[[c for c in units if c != "available_units"]] >= 0).all().all()
    for column in frame.select_dtypes("object"):
        for value in frame[column].dropna():
            if isinstance(value, str):
                value.encode("utf-8")  # no lone surrogate
                assert len(value) <= MAX_TEXT_LENGTH
                assert not any(ord(ch) < 32 for ch in value)
    for record in result.skipped:
        assert len(record.reason) < 400


@given(graph_skus=sku_lists, partner_center_skus=st.one_of(st.none(), json_values))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_license_facts_store_or_refuse(graph_skus: Any, partner_center_skus: Any) -> None:
    try:
        result = license_facts_frame(
            partner_tenant_id=PARTNER,
            tenant_id=TENANT,
            snapshot_date=date(2026, 7, 1),
            synced_at=datetime(2026, 7, 1, tzinfo=UTC),
            graph_skus=graph_skus,
            partner_center_skus=partner_center_skus,
            catalog=SkuCatalog([]),
        )
    except MalformedPayload:
        return
    assert_storable(result)


@given(pc=json_values, gdap=json_values, contracts=json_values)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_customers_store_or_refuse(pc: Any, gdap: Any, contracts: Any) -> None:
    try:
        result = customers_frame(PARTNER, pc, gdap, contracts)
    except MalformedPayload:
        return
    assert_storable(result)
