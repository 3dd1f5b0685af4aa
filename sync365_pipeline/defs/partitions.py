"""Customer tenants as dynamic partitions: the `customers` asset registers them itself."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

tenant_partitions = dg.DynamicPartitionsDefinition(name="tenants")


def all_tenants_range_tags(tenant_ids: Sequence[str]) -> dict[str, str]:
    """Run tags that make one run cover every registered tenant (single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": tenant_ids[0],
        "dagster/asset_partition_range_end": tenant_ids[-1],
    }
