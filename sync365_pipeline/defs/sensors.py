"""Sensors: consent and expiry flags, and the refresh token's age."""

import json

import dagster as dg

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.defs.assets import customers, partner_token
from sync365_pipeline.defs.checks import CONSENT_CHECK, access_lost, flags_markdown
from sync365_pipeline.defs.resources import (
    MicrosoftCloudResource,
    WarehouseResource,
    WebhookResource,
)
from sync365_pipeline.licensing.accounts import account_names
from sync365_pipeline.licensing.consent_flags import evaluate_flags
from sync365_pipeline.licensing.notify import change_lines
from sync365_pipeline.microsoft import TokenCacheCorrupt
from sync365_pipeline.microsoft.token_health import TokenAge, TokenHealth, refresh_token_health
from sync365_pipeline.warehouse import WarehouseLocked


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Flags, once each, a tenant (or partner) that lost access, and a GDAP relationship or "
        "client secret that ends soon; `sync365 sync` applies the same flags itself."
    ),
)
def consent_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    webhook: WebhookResource,
    microsoft: MicrosoftCloudResource,
) -> dg.SensorResult | dg.SkipReason:
    """Evaluate the flags (`evaluate_flags`) after each sync that Dagster ran, and report the
    changes on the `consent_granted` check.

    The cursor is the newest status timestamp already evaluated, so a tick without new sync
    results does nothing; the open flags in `consent_flags` make flags never repeat, so a
    tick after a `sync365 sync` that applied them itself finds nothing to raise or post.
    """
    notifier = webhook.notifier(context.log)
    try:
        store = warehouse.open()
        marker = store.status_marker()
        if marker is None or marker == context.cursor:
            return dg.SkipReason("No new sync results since the last evaluation.")
        changes = evaluate_flags(store, utcnow(), notifier, _account_names(microsoft))
        still_open = store.open_consent_flags() if changes else []
    except WarehouseLocked as exc:
        return dg.SkipReason(f"Warehouse busy, will retry next tick: {exc}")
    for line in change_lines(changes):
        context.log.warning(line)
    events = []
    if changes:
        events.append(
            dg.AssetCheckEvaluation(
                asset_key=customers.key,
                check_name=CONSENT_CHECK,
                passed=not access_lost(still_open),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "raised": flags_markdown(changes.raised, changes.names),
                    "cleared": dg.MetadataValue.json(
                        [
                            [partner, tenant, kind, changes.name_of(partner, tenant)]
                            for partner, tenant, kind in changes.cleared
                        ]
                    ),
                    "open_flags": flags_markdown(still_open, changes.names),
                },
            )
        )
    return dg.SensorResult(asset_events=events, cursor=marker)


@dg.sensor(
    minimum_interval_seconds=6 * 3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Warns before a partner's refresh token dies of 90 days' inactivity.",
)
def refresh_token_sensor(
    context: dg.SensorEvaluationContext, microsoft: MicrosoftCloudResource
) -> dg.SensorResult | dg.SkipReason:
    """Warn once per change of state (ok -> expiring -> expired) for each partner account.

    Each sync rotates the token, so a warning means syncs stopped (the schedule is off, or the
    runs fail for another reason); the remedy says what keeps the token alive.
    """
    try:
        accounts = microsoft.accounts()
    except dg.Failure as exc:
        return dg.SkipReason(exc.description)
    previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, str] = {}
    events = []
    for settings in accounts:
        if settings.kind != "partner":
            continue
        try:
            health = refresh_token_health(settings)
        except TokenCacheCorrupt as exc:
            health = TokenHealth(TokenAge.UNKNOWN, exc.problem, exc.remedy)
        current[settings.name] = health.age.value
        if health.needs_attention and previous.get(settings.name) != health.age.value:
            context.log.warning(f"Account {settings.name}: {health.message} {health.remedy}")
            events.append(
                dg.AssetObservation(
                    asset_key=partner_token.key,
                    metadata={
                        "account": settings.name,
                        "refresh_token": health.age.value,
                        "days_left": health.days_left if health.days_left is not None else -1,
                        "message": f"{health.message} {health.remedy}",
                    },
                )
            )
    return dg.SensorResult(asset_events=events, cursor=json.dumps(current, sort_keys=True))


def _account_names(microsoft: MicrosoftCloudResource) -> dict[str, str]:
    """{partner tenant id: account name} of the configured accounts; none when the
    configuration cannot be read (the flags still name the partner by its tenant id)."""
    try:
        return account_names(microsoft.accounts())
    except dg.Failure:
        return {}
