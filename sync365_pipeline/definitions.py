"""Entry point for `dagster dev -w workspace.yaml` and `sync365 sync`."""

from __future__ import annotations

import dagster as dg

from sync365_pipeline.defs.assets import customers, license_facts, partner_token, subscribed_skus
from sync365_pipeline.defs.automation import (
    consent_granted,
    consent_sensor,
    daily_sync_schedule,
    discovery_job,
    license_sync_after_discovery,
    license_sync_job,
    refresh_token_sensor,
)
from sync365_pipeline.defs.resources import MicrosoftCloudResource, WarehouseResource

defs = dg.Definitions(
    assets=[partner_token, customers, subscribed_skus, license_facts],
    asset_checks=[consent_granted],
    jobs=[discovery_job, license_sync_job],
    schedules=[daily_sync_schedule],
    sensors=[license_sync_after_discovery, consent_sensor, refresh_token_sensor],
    resources={"microsoft": MicrosoftCloudResource(), "warehouse": WarehouseResource()},
)
