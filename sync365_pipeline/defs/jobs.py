"""Jobs and the daily schedule.

A daily sync is ONE run of `full_sync`: sign-in, discovery, every active tenant, the facts.
Per-tenant outcomes live in DuckDB and in the `tenants_synced` check, so the run costs Dagster a
handful of events however many tenants it covers. `license_sync` fetches a chosen set of tenants
(its config names them), `rerun_failed_tenants` exactly those whose latest attempt failed.
"""

from typing import Any

import dagster as dg

from sync365_pipeline.defs.assets import customers, license_facts, partner_token, subscribed_skus
from sync365_pipeline.licensing.selection import TenantSelection


def selection_config(selection: TenantSelection) -> dict[str, Any]:
    """The run config that makes `license_sync` fetch `selection` (the launchpad's YAML)."""
    chosen = {"tenants": list(selection.tenants), "failed_only": selection.failed_only}
    return {"ops": {"subscribed_skus": {"ops": {"plan_tenant_chunks": {"config": chosen}}}}}


full_sync_job = dg.define_asset_job(
    "full_sync",
    selection=[partner_token, customers, subscribed_skus, license_facts],
    description="The daily sync in one run: sign-in, customers, every active tenant, facts.",
)
discovery_job = dg.define_asset_job(
    "discovery",
    selection=[partner_token, customers],
    description="Partner sign-in and customer discovery only.",
)
license_sync_job = dg.define_asset_job(
    "license_sync",
    selection=[subscribed_skus, license_facts],
    description=(
        "Subscribed SKUs and license facts for the tenants named in the config "
        "(`plan_tenant_chunks: tenants`, by id, customer name or domain), or every active one."
    ),
)
rerun_failed_tenants_job = dg.define_asset_job(
    "rerun_failed_tenants",
    selection=[subscribed_skus, license_facts],
    config=selection_config(TenantSelection(failed_only=True)),
    description=(
        "Fetch again exactly the tenants whose latest attempt failed (the ones the "
        "`tenants_synced` check names), and write their facts."
    ),
)

daily_sync_schedule = dg.ScheduleDefinition(
    name="daily_sync",
    job=full_sync_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 05:00 UTC: the whole sync of every account, in one run.",
)
