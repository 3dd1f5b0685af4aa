"""The normalizer: Microsoft payloads -> rows; bad records skipped with their reasons,
hostile text made safe, lists that cannot be trusted refused."""

from __future__ import annotations

import copy
import re
from dataclasses import astuple
from datetime import UTC, date, datetime
from typing import Any

import pytest

from sync365_pipeline.catalog import SkuCatalog, SkuName
from sync365_pipeline.licensing.normalize import (
    LICENSE_FACT_COLUMNS,
    MAX_COUNT,
    MAX_TEXT_LENGTH,
    FactRows,
    MalformedPayload,
    customers_frame,
    graph_shaped_partner_center_skus,
    license_fact_rows,
)
from sync365_pipeline.warehouse import SkippedRecord
from sync365_pipeline.warehouse.columns import UNIT_COLUMNS
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, NORTHWIND, PARTNER, POWER_BI_PRO, SPB

UNKNOWN_SKU = "0b0b0b0b-0000-4000-8000-000000000000"
CATALOG = SkuCatalog(
    [
        SkuName(SPB, "SPB", "Microsoft 365 Business Premium"),
        SkuName(POWER_BI_PRO, "POWER_BI_PRO", "Power BI Pro"),
    ]
)


def pc_customer(tenant: str, name: str, relation: str = "reseller") -> dict[str, Any]:
    return {
        "id": tenant,
        "companyProfile": {
            "tenantId": tenant,
            "domain": f"{name.lower()}.com",
            "companyName": name,
        },
        "relationshipToPartner": relation,
    }


def gdap(tenant: str, status: str, end: str, label: str = "rel") -> dict[str, Any]:
    return {
        "displayName": label,
        "customer": {"tenantId": tenant, "displayName": f"GDAP name {tenant[:4]}"},
        "status": status,
        "endDateTime": end,
    }


def graph_sku(
    sku_id: str = SPB, part: str = "SPB", *, enabled: int = 25, consumed: int = 14, **extra: Any
) -> dict[str, Any]:
    return {
        "id": f"{CONTOSO}_{sku_id}",
        "skuId": sku_id,
        "skuPartNumber": part,
        "capabilityStatus": "Enabled",
        "consumedUnits": consumed,
        "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
        **extra,
    }


def facts(
    graph_skus: list[dict[str, Any]], partner_center_skus: list[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """{sku_id: {column: value}} of the rows the normalizer makes."""
    return by_sku(normalized(graph_skus, partner_center_skus))


def by_sku(result: FactRows) -> dict[str, dict[str, Any]]:
    records = [dict(zip(LICENSE_FACT_COLUMNS, row, strict=True)) for row in result.rows]
    return {record["sku_id"]: record for record in records}


def normalized(
    graph_skus: list[dict[str, Any]],
    partner_center_skus: list[dict[str, Any]] | None = None,
    **options: Any,
) -> FactRows:
    return license_fact_rows(
        **options,
        partner_tenant_id=PARTNER,
        tenant_id=CONTOSO,
        snapshot_date=date(2026, 7, 1),
        synced_at=datetime(2026, 7, 1, 7, 0, tzinfo=UTC),
        graph_skus=graph_skus,
        partner_center_skus=partner_center_skus,
        catalog=CATALOG,
    )


def test_customers_merge_partner_center_gdap_and_contracts() -> None:
    frame = customers_frame(
        PARTNER,
        [pc_customer(CONTOSO, "Contoso"), pc_customer(FABRIKAM, "Fabrikam", "advisor")],
        [
            gdap(CONTOSO, "expired", "2027-01-01T00:00:00Z"),
            gdap(CONTOSO, "active", "2026-12-01T10:00:00.1234567Z"),
            gdap(CONTOSO, "terminated", "2025-01-01T00:00:00Z"),
            gdap(NORTHWIND, "expired", "2025-01-01T00:00:00Z"),
            gdap(NORTHWIND, "expired", "2025-06-01T00:00:00Z"),
            gdap(FABRIKAM, "active", "2030-01-01T00:00:00Z", label="MLT_transition"),
        ],
        [
            {"customerId": CONTOSO, "displayName": "Contoso (old)", "defaultDomainName": "c.old"},
            {"customerId": NORTHWIND, "displayName": "Northwind", "defaultDomainName": "nw.com"},
        ],
    ).frame.set_index("tenant_id")

    assert frame.loc[CONTOSO, "relationship"] == "dap+gdap+reseller"
    assert frame.loc[CONTOSO, "display_name"] == "Contoso"  # Partner Center first
    assert frame.loc[CONTOSO, "default_domain"] == "contoso.com"
    assert frame.loc[CONTOSO, "gdap_status"] == "active"  # active beats a later end date
    assert frame.loc[CONTOSO, "gdap_end_date"] == datetime(2026, 12, 1, 10, 0, 0, 123456)
    assert frame.loc[FABRIKAM, "relationship"] == "advisor"  # the MLT_ relationship is ignored
    assert frame.loc[NORTHWIND, "relationship"] == "dap+gdap"
    assert frame.loc[NORTHWIND, "display_name"] == "GDAP name 52ea"  # GDAP before contracts
    assert frame.loc[NORTHWIND, "default_domain"] == "nw.com"
    assert frame.loc[NORTHWIND, "gdap_end_date"] == datetime(2025, 6, 1)  # latest of the expired
    assert set(frame["partner_tenant_id"]) == {PARTNER}


def test_customers_keep_active_relationship_ids_and_auto_extend() -> None:
    """The access audit reads the assignments of every active relationship; auto-extend is the
    chosen relationship's (`PT0S` and `P0D` do not extend)."""
    frame = customers_frame(
        PARTNER,
        [],
        [
            {
                **gdap(CONTOSO, "active", "2027-01-01T00:00:00Z"),
                "id": "r-2",
                "autoExtendDuration": "P180D",
            },
            {
                **gdap(CONTOSO, "active", "2026-12-01T00:00:00Z"),
                "id": "r-1",
                "autoExtendDuration": "PT0S",
            },
            {**gdap(CONTOSO, "expired", "2025-01-01T00:00:00Z"), "id": "r-0"},
            {
                **gdap(NORTHWIND, "active", "2026-12-20T00:00:00Z"),
                "id": "r-9",
                "autoExtendDuration": "P0D",
            },
            gdap(FABRIKAM, "active", "2026-12-20T00:00:00Z"),  # no id: a route, not auditable
        ],
        [],
    ).frame.set_index("tenant_id")

    assert list(frame.loc[CONTOSO, "gdap_relationship_ids"]) == ["r-1", "r-2"]
    assert frame.loc[CONTOSO, "gdap_auto_extend"]  # the latest-ending active one, r-2
    assert not frame.loc[NORTHWIND, "gdap_auto_extend"]
    assert frame.loc[FABRIKAM, "gdap_relationship_ids"] is None
    assert frame.loc[FABRIKAM, "relationship"] == "gdap"


def test_license_facts_keep_every_count_exact_in_table_order() -> None:
    result = normalized(
        [
            graph_sku(enabled=MAX_COUNT, consumed=0),
            graph_sku(
                POWER_BI_PRO, "POWER_BI_PRO", enabled=0, consumed=3, capabilityStatus="Warning"
            ),
        ]
    )
    assert all(len(row) == len(LICENSE_FACT_COLUMNS) for row in result.rows)
    rows = by_sku(result)
    assert list(rows) == sorted([SPB, POWER_BI_PRO])  # one row per SKU, in id order
    assert rows[SPB]["enabled_units"] == MAX_COUNT
    assert rows[SPB]["available_units"] == MAX_COUNT
    assert rows[POWER_BI_PRO]["available_units"] == -3  # consumed > enabled stays exact
    assert rows[POWER_BI_PRO]["capability_status"] == "Warning"
    for column in ("enabled_units", "consumed_units", "available_units", "locked_out_units"):
        assert type(rows[SPB][column]) is int
    assert rows[SPB]["snapshot_date"] == date(2026, 7, 1)
    assert rows[SPB]["synced_at"] == datetime(2026, 7, 1, 7, 0)  # stored as naive UTC
    assert rows[SPB]["synced_at"].tzinfo is None
    assert (rows[SPB]["partner_tenant_id"], rows[SPB]["tenant_id"]) == (PARTNER, CONTOSO)
    assert {row["source"] for row in rows.values()} == {"graph"}


def test_license_facts_say_where_their_counts_came_from() -> None:
    """Issue 10's fallback reads Partner Center's counts when Graph cannot be read."""
    rows = by_sku(normalized([graph_sku()], source="partner_center"))
    assert rows[SPB]["source"] == "partner_center"
    assert rows[SPB]["product_name_source"] == "catalog"  # the name's source is another thing


def test_partner_centers_skus_read_in_graphs_shape_unit_for_unit() -> None:
    """The fallback: each count Partner Center gives, and nothing it does not (no locked-out
    count: zero); a record missing a count is skipped with Graph's name for the field."""
    answered = [
        {
            "activeUnits": 120,
            "consumedUnits": 104,
            "suspendedUnits": 2,
            "warningUnits": 5,
            "totalUnits": 125,
            "availableUnits": 21,
            "capabilityStatus": "Enabled",
            "productSku": {
                "id": SPB,
                "name": "Microsoft 365 Business Premium",
                "skuPartNumber": "SPB",
            },
        },
        {
            "consumedUnits": 1,
            "capabilityStatus": "Enabled",
            "productSku": {"id": POWER_BI_PRO, "skuPartNumber": "POWER_BI_PRO"},
        },
        "not an object",
    ]

    result = normalized(
        graph_shaped_partner_center_skus(answered), answered, source="partner_center"
    )

    (row,) = by_sku(result).values()
    assert [row[column] for column in UNIT_COLUMNS] == [120, 2, 5, 0, 104, 16]
    assert (row["source"], row["product_name_source"]) == ("partner_center", "partner_center")
    assert [(record.list_name, record.list_index) for record in result.skipped] == [
        ("Partner Center subscribedskus", 2),
        ("subscribedSkus", 1),
        ("subscribedSkus", 2),
    ]
    assert "prepaidUnits.enabled" in result.skipped[1].reason
    assert graph_shaped_partner_center_skus({"items": []}) == {"items": []}, "left to refuse"


def test_product_name_prefers_partner_center_then_catalog_then_part_number() -> None:
    rows = facts(
        [graph_sku(), graph_sku(POWER_BI_PRO, "POWER_BI_PRO"), graph_sku(UNKNOWN_SKU, "NEW_SKU")],
        [{"productSku": {"id": SPB.upper(), "name": "Business Premium (PC)"}}],
    )

    def name(sku: str) -> tuple[str, str]:
        return rows[sku]["product_name"], rows[sku]["product_name_source"]

    assert name(SPB) == ("Business Premium (PC)", "partner_center")
    assert name(POWER_BI_PRO) == ("Power BI Pro", "catalog")
    assert name(UNKNOWN_SKU) == ("NEW_SKU", "part_number")


def test_one_sku_in_several_billing_accounts_is_summed() -> None:
    first = graph_sku(enabled=10, consumed=4, accountId="acc-1", id="obj-1")
    second = graph_sku(enabled=5, consumed=7, accountId="acc-2", id="obj-2")
    second["capabilityStatus"] = "Suspended"
    second["prepaidUnits"]["suspended"] = 2

    (row,) = facts([first, second]).values()

    assert (row["enabled_units"], row["consumed_units"], row["suspended_units"]) == (15, 11, 2)
    assert row["available_units"] == 4
    assert row["billing_accounts"] == 2
    assert row["capability_status"] == "Enabled"


def test_the_same_object_twice_counts_once_and_conflicting_copies_are_rejected() -> None:
    sku = graph_sku()
    assert facts([sku, copy.deepcopy(sku)])[SPB]["enabled_units"] == 25

    changed = graph_sku(enabled=26)
    with pytest.raises(MalformedPayload, match="repeats object"):
        facts([sku, changed])


def test_missing_locked_out_means_zero_and_empty_payload_gives_no_rows() -> None:
    sku = graph_sku()
    del sku["prepaidUnits"]["lockedOut"]
    assert facts([sku])[SPB]["locked_out_units"] == 0

    assert normalized([]) == FactRows(rows=(), skipped=())


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    sku = graph_sku()
    target = sku
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return sku


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("skuId",), "not-a-guid", "skuId"),
        (("skuId",), KeyError, "skuId"),
        (("consumedUnits",), -1, "consumedUnits"),
        (("consumedUnits",), 2.5, "consumedUnits"),
        (("consumedUnits",), "14", "consumedUnits"),
        (("consumedUnits",), True, "consumedUnits"),
        (("consumedUnits",), 2**64, "consumedUnits"),
        (("prepaidUnits", "enabled"), KeyError, "prepaidUnits.enabled"),
        (("prepaidUnits", "warning"), None, "prepaidUnits.warning"),
        (("prepaidUnits",), [1, 2], "prepaidUnits"),
        (("skuPartNumber",), 42, "skuPartNumber"),
        (("capabilityStatus",), KeyError, "capabilityStatus"),
    ],
)
def test_a_hostile_sku_record_is_skipped_naming_field_and_tenant_and_the_others_land(
    path: tuple[str, ...], value: object, field: str
) -> None:
    result = normalized([_with(path, value), graph_sku(POWER_BI_PRO, "POWER_BI_PRO")])
    assert list(by_sku(result)) == [POWER_BI_PRO]
    ((list_name, index, reason, key),) = [astuple(record) for record in result.skipped]
    assert (list_name, index, key) == ("subscribedSkus", 0, None)
    assert field in reason
    assert CONTOSO in reason
    assert len(reason) < 300  # never echoes the payload


@pytest.mark.parametrize("payload", [{"value": []}, "subscribedSkus", None])
def test_a_payload_that_is_not_a_list_is_refused_whole(payload: object) -> None:
    with pytest.raises(MalformedPayload, match=re.escape("subscribedSkus")):
        facts(payload)  # type: ignore[arg-type]


def test_a_list_item_that_is_not_an_object_is_skipped() -> None:
    result = normalized(["not an object", graph_sku()])  # type: ignore[list-item]
    assert list(by_sku(result)) == [SPB]
    assert result.skipped == (
        SkippedRecord(
            "subscribedSkus", 0, f"subscribedSkus[0] for tenant {CONTOSO} is not an object."
        ),
    )


def test_hostile_text_is_stored_safe_and_bounded() -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07Evil\u202eCorp\x00\ud800" + "A" * 4000
    part = facts([graph_sku(), graph_sku(POWER_BI_PRO, hostile)])[POWER_BI_PRO]["sku_part_number"]
    assert len(part) == MAX_TEXT_LENGTH
    assert part.endswith("\u2026")
    assert part.startswith("\ufffd[2J\ufffd]0;pwned\ufffdEvil\u202eCorp\ufffd\ufffd")
    part.encode("utf-8")  # no lone surrogate left: DuckDB can store it


def test_a_unit_sum_beyond_int64_refuses_the_tenant() -> None:
    big = 2**63 - 1
    first = graph_sku(enabled=big, accountId="a", id="a")
    second = graph_sku(enabled=1, accountId="b", id="b")
    with pytest.raises(MalformedPayload, match="sums beyond"):
        facts([first, second])


def test_hostile_customer_records_are_skipped_and_the_others_kept() -> None:
    result = customers_frame(
        PARTNER,
        [{"id": "x" * 10_000}, pc_customer(CONTOSO, "Contoso")],
        [{"displayName": "rel", "status": "active"}, gdap(FABRIKAM, "active", "next tuesday")],
        [{"customerId": 7}, 5],
    )
    assert result.frame["tenant_id"].tolist() == [CONTOSO]
    reasons = " | ".join(record.reason for record in result.skipped)
    for field in (
        "customers[0].companyProfile.tenantId",
        "delegatedAdminRelationships[0].customer",
        "delegatedAdminRelationships[1].endDateTime",
        "contracts[0].customerId",
        "contracts[1]",
    ):
        assert field in reasons
    assert len(result.skipped) == 5
    # The relationship whose customer was read is keyed by it; the others name no tenant.
    assert [record.record_key for record in result.skipped] == [None, None, FABRIKAM, None, None]
    assert "x" * 100 not in reasons  # never echoes the payload
    with pytest.raises(MalformedPayload, match="partner_tenant_id"):
        customers_frame("partner", [], [], [])
