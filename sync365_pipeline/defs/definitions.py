"""Entry point for `dagster dev -w workspace.yaml` and `sync365 sync`."""

from __future__ import annotations

import dagster as dg

from sync365_pipeline.core.redaction import redact_every_log_record
from sync365_pipeline.defs.assets import customers, license_facts, partner_token, subscribed_skus
from sync365_pipeline.defs.checks import QUALITY_CHECKS, consent_granted, tenants_synced
from sync365_pipeline.defs.jobs import (
    daily_sync_schedule,
    discovery_job,
    full_sync_job,
    license_sync_job,
    rerun_failed_tenants_job,
)
from sync365_pipeline.defs.loggers import cli_console
from sync365_pipeline.defs.resources import (
    MicrosoftCloudResource,
    WarehouseResource,
    WebhookResource,
)
from sync365_pipeline.defs.sensors import consent_sensor, refresh_token_sensor

# Every process that loads our code (code server, run worker, `sync365 sync`) logs redacted.
redact_every_log_record()

defs = dg.Definitions(
    assets=[partner_token, customers, subscribed_skus, license_facts],
    asset_checks=[consent_granted, tenants_synced, *QUALITY_CHECKS],
    jobs=[full_sync_job, discovery_job, license_sync_job, rerun_failed_tenants_job],
    schedules=[daily_sync_schedule],
    sensors=[consent_sensor, refresh_token_sensor],
    loggers={"console": dg.colored_console_logger, "cli_console": cli_console},
    resources={
        "microsoft": MicrosoftCloudResource(),
        "warehouse": WarehouseResource(),
        "webhook": WebhookResource(),
    },
)
