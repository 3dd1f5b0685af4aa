"""Asset checks: what the data engineer sees pass or fail on the assets."""

from collections.abc import Sequence

import dagster as dg
import pandas as pd

from sync365_pipeline.defs.assets import customers
from sync365_pipeline.defs.resources import WarehouseResource
from sync365_pipeline.warehouse import ConsentFlag

CONSENT_CHECK = "consent_granted"


@dg.asset_check(asset=customers, name=CONSENT_CHECK, blocking=False)
def consent_granted(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Fails (as a warning) while any customer or the partner itself has lost access."""
    flags = warehouse.open().open_consent_flags()
    return dg.AssetCheckResult(
        passed=not flags,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"open_flags": flags_markdown(flags)},
    )


def flags_markdown(flags: Sequence[ConsentFlag]) -> dg.MetadataValue:
    if not flags:
        return dg.MetadataValue.md("_no open flags_")
    columns = ["partner_tenant_id", "tenant_id", "status", "error_code", "raised_at"]
    frame = pd.DataFrame([{name: getattr(flag, name) for name in columns} for flag in flags])
    return dg.MetadataValue.md(frame.to_markdown(index=False))
