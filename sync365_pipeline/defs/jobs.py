"""Jobs and the daily schedule.

A daily sync is two runs: `discovery` (partner sign-in + customer list, which registers new tenants)
then, when it succeeds, `license_sync` over every registered tenant in ONE run. Dagster cannot
widen a run's partition range mid-run, hence the split.
"""

import dagster as dg

from sync365_pipeline.defs.assets import customers, license_facts, partner_token, subscribed_skus

discovery_job = dg.define_asset_job(
    "discovery",
    selection=[partner_token, customers],
    description="Partner sign-in and customer discovery; on success `license_sync` follows.",
)
license_sync_job = dg.define_asset_job(
    "license_sync",
    selection=[subscribed_skus, license_facts],
    description="Subscribed SKUs and license facts for every registered tenant, in one run.",
)

daily_sync_schedule = dg.ScheduleDefinition(
    name="daily_sync",
    job=discovery_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 05:00 UTC: discovery, then the license sync of all tenants.",
)
