"""Sensors: consent flags, and the refresh token's age."""

import json

import dagster as dg

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.defs.assets import customers, partner_token
from sync365_pipeline.defs.checks import CONSENT_CHECK, flags_markdown
from sync365_pipeline.defs.resources import (
    MicrosoftCloudResource,
    WarehouseResource,
    WebhookResource,
)
from sync365_pipeline.licensing.consent_flags import consent_changes
from sync365_pipeline.microsoft import TokenCacheCorrupt
from sync365_pipeline.microsoft.token_health import TokenAge, TokenHealth, refresh_token_health
from sync365_pipeline.warehouse import WarehouseLocked


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Flags each tenant (or partner) that lost consent or delegated access, once.",
)
def consent_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, webhook: WebhookResource
) -> dg.SensorResult | dg.SkipReason:
    """Raise a flag when a tenant enters an access-loss status; clear it when it is ok again.

    The cursor is the newest status timestamp already evaluated, so a tick without new sync
    results does nothing; the open flags in `consent_flags` make flags never repeat.
    """
    try:
        store = warehouse.open()
        marker = store.status_marker()
        if marker is None or marker == context.cursor:
            return dg.SkipReason("No new sync results since the last evaluation.")
        now = utcnow()
        changes = consent_changes(
            store.latest_tenant_statuses(),
            store.latest_partner_statuses(),
            store.open_consent_flags(),
            now,
            active_customers=store.active_customers(),
        )
        raised, cleared = store.apply_consent_changes(changes.raised, changes.cleared, now)
        still_open = store.open_consent_flags()
        if raised or cleared:
            store.publish_analyst_copy()  # analysts and `sync365 status` see flags at once
    except WarehouseLocked as exc:
        return dg.SkipReason(f"Warehouse busy, will retry next tick: {exc}")
    for flag in raised:
        context.log.warning(
            f"Access lost: partner {flag.partner_tenant_id} tenant {flag.tenant_id or '(partner)'} "
            f"-> {flag.status} ({flag.error_code}): {flag.message}"
        )
    notifier = webhook.notifier(context.log)
    if notifier is not None and (raised or cleared):
        notifier.notify(raised, cleared)  # logs a failure itself, never raises
    events = []
    if raised or cleared:
        events.append(
            dg.AssetCheckEvaluation(
                asset_key=customers.key,
                check_name=CONSENT_CHECK,
                passed=not still_open,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "raised": flags_markdown(raised),
                    "cleared": dg.MetadataValue.json([list(key) for key in cleared]),
                    "open_flags": flags_markdown(still_open),
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
