"""The consent sensor: raises a flag once when a tenant loses access, clears it when it returns."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg

from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.sensors import consent_sensor, refresh_token_sensor

from .conftest import Pipeline, PipelineFactory
from .test_sync_graph import HEALTHY_A, HEALTHY_B, scenario


def tick(pipeline: Pipeline, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=defs.resources
    )
    return consent_sensor(context)


def open_flags(pipeline: Pipeline) -> list[tuple[str | None, str]]:
    return [(flag.tenant_id, flag.status) for flag in pipeline.warehouse.open_consent_flags()]


def test_sensor_raises_once_and_clears_when_access_returns(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(scenario())
    assert pipeline.sync().success
    first = tick(pipeline, None)
    assert isinstance(first, dg.SensorResult)
    assert open_flags(pipeline) == []

    pipeline.sim.control.revoke_consent(HEALTHY_B)
    assert pipeline.sync().success
    raised = tick(pipeline, first.cursor)
    assert isinstance(raised, dg.SensorResult)
    assert open_flags(pipeline) == [(HEALTHY_B, "consent_revoked")]
    (evaluation,) = raised.asset_events
    assert isinstance(evaluation, dg.AssetCheckEvaluation)
    assert evaluation.passed is False
    assert evaluation.check_name == "consent_granted"

    # Nothing new: the same cursor skips; a new sync with the same failure does not repeat it.
    assert isinstance(tick(pipeline, raised.cursor), dg.SkipReason)
    assert pipeline.sync().success
    repeated = tick(pipeline, raised.cursor)
    assert isinstance(repeated, dg.SensorResult)
    assert repeated.asset_events == []
    assert open_flags(pipeline) == [(HEALTHY_B, "consent_revoked")]
    flags_ever = pipeline.query("SELECT count(*) FROM consent_flags")[0][0]
    assert flags_ever == 1

    pipeline.sim.control.restore_consent(HEALTHY_B)
    assert pipeline.sync().success
    cleared = tick(pipeline, repeated.cursor)
    assert isinstance(cleared, dg.SensorResult)
    assert open_flags(pipeline) == []
    (evaluation,) = cleared.asset_events
    assert evaluation.passed is True
    assert pipeline.query(
        "SELECT tenant_id, status, cleared_at IS NOT NULL FROM consent_flags"
    ) == [(HEALTHY_B, "consent_revoked", True)]


def test_sensor_flags_partner_level_loss_of_consent(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(scenario())
    assert pipeline.sync().success
    pipeline.sim.control.set_partner_refresh_token_state("expired")
    pipeline.token_cache.unlink()
    assert not pipeline.sync().success

    result = tick(pipeline, None)
    assert isinstance(result, dg.SensorResult)
    flags = pipeline.warehouse.open_consent_flags()
    assert [(flag.tenant_id, flag.status) for flag in flags] == [(None, "refresh_token_expired")]
    assert "sync365 consent" in (flags[0].message or "")
    assert HEALTHY_A not in {flag.tenant_id for flag in flags}


def age_refresh_token(token_cache: Path, days: float) -> None:
    """Pretend the cached refresh token was last issued `days` ago (MSAL's own timestamp)."""
    cache = json.loads(token_cache.read_text())
    issued = int(time.time() - days * 86400)
    for entry in cache["RefreshToken"].values():
        entry["last_modification_time"] = str(issued)
    token_cache.write_text(json.dumps(cache))


def token_tick(pipeline: Pipeline, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=defs.resources
    )
    result = refresh_token_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_refresh_token_sensor_warns_once_before_the_90_day_limit(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(scenario())
    assert pipeline.sync().success
    fresh = token_tick(pipeline, None)
    assert fresh.asset_events == []

    age_refresh_token(pipeline.token_cache, days=70)
    warned = token_tick(pipeline, fresh.cursor)
    (observation,) = warned.asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.metadata["refresh_token"].value == "expiring"
    assert "sync365 sync" in observation.metadata["message"].value
    assert token_tick(pipeline, warned.cursor).asset_events == [], "no repeat"

    age_refresh_token(pipeline.token_cache, days=95)
    expired = token_tick(pipeline, warned.cursor)
    (observation,) = expired.asset_events
    assert observation.metadata["refresh_token"].value == "expired"
    assert "sync365 consent" in observation.metadata["message"].value


def test_a_departed_customers_flag_is_cleared_not_left_open(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(scenario())
    pipeline.sim.control.revoke_consent(HEALTHY_B)
    assert pipeline.sync().success
    raised = tick(pipeline, None)
    assert isinstance(raised, dg.SensorResult)
    assert open_flags(pipeline) == [(HEALTHY_B, "consent_revoked")]

    pipeline.sim.control.remove_customer(HEALTHY_B)
    assert pipeline.sync().success
    after = tick(pipeline, raised.cursor)

    assert isinstance(after, dg.SensorResult)
    assert open_flags(pipeline) == []
    (evaluation,) = after.asset_events
    assert evaluation.passed is True
