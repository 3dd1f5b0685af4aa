"""The consent sensor: raises a flag once when a tenant loses access, clears it when it returns.
The refresh-token sensor: warns once per change of the token's age.

The sensors' logic runs on a seeded warehouse (`seeded`); two tests run a real sync first, so
what a sync records is what the sensor reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import duckdb

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.defs.assets import partner_token
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.sensors import consent_sensor, refresh_token_sensor
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.scenarios import (
    ENDED_GDAP,
    ENDING_GDAP,
    HEALTHY_A,
    HEALTHY_B,
    expiring_access_scenario,
    pipeline_scenario,
)

from .conftest import PipelineFactory, SeededWarehouse

OK = TenantStatus.OK
REVOKED = (TenantStatus.CONSENT_REVOKED, "AADSTS65001")


def tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of the consent sensor over the configured warehouse."""
    return consent_sensor(dg.build_sensor_context(cursor=cursor, resources=defs.resources))


def open_flags(warehouse: Warehouse) -> list[tuple[str | None, str]]:
    return [(flag.tenant_id, flag.status) for flag in warehouse.open_consent_flags()]


def every_flag(warehouse: Warehouse) -> list[tuple[str | None, str, bool]]:
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        return con.execute(
            "SELECT tenant_id, status, cleared_at IS NOT NULL FROM consent_flags"
        ).fetchall()


def test_sensor_raises_once_and_clears_when_access_returns(seeded: SeededWarehouse) -> None:
    seeded.customers(HEALTHY_A, HEALTHY_B)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: OK})
    first = tick(None)
    assert isinstance(first, dg.SensorResult)
    assert first.asset_events == []
    assert open_flags(seeded.warehouse) == []

    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    raised = tick(first.cursor)
    assert isinstance(raised, dg.SensorResult)
    assert open_flags(seeded.warehouse) == [(HEALTHY_B, "consent_revoked")]
    (evaluation,) = raised.asset_events
    assert isinstance(evaluation, dg.AssetCheckEvaluation)
    assert evaluation.passed is False
    assert evaluation.check_name == "consent_granted"

    # Nothing new: the same cursor skips; a new sync with the same failure does not repeat it.
    assert isinstance(tick(raised.cursor), dg.SkipReason)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    repeated = tick(raised.cursor)
    assert isinstance(repeated, dg.SensorResult)
    assert repeated.asset_events == []
    assert open_flags(seeded.warehouse) == [(HEALTHY_B, "consent_revoked")]
    assert len(every_flag(seeded.warehouse)) == 1

    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: OK})
    cleared = tick(repeated.cursor)
    assert isinstance(cleared, dg.SensorResult)
    assert open_flags(seeded.warehouse) == []
    (evaluation,) = cleared.asset_events
    assert evaluation.passed is True
    assert every_flag(seeded.warehouse) == [(HEALTHY_B, "consent_revoked", True)]


def test_sensor_flags_partner_level_loss_of_consent(seeded: SeededWarehouse) -> None:
    seeded.customers(HEALTHY_A)
    seeded.partner_status("ok")
    seeded.tenant_statuses({HEALTHY_A: OK})
    seeded.partner_status("refresh_token_expired", "AADSTS700082")

    result = tick(None)

    assert isinstance(result, dg.SensorResult)
    assert open_flags(seeded.warehouse) == [(None, "refresh_token_expired")]
    (evaluation,) = result.asset_events
    assert evaluation.passed is False


def test_a_temporary_partner_level_fault_raises_no_flag(seeded: SeededWarehouse) -> None:
    seeded.customers(HEALTHY_A)
    seeded.partner_status("error", "HTTP 503")
    seeded.partner_status("throttled", "HTTP 429")

    result = tick(None)

    assert isinstance(result, dg.SensorResult)
    assert result.asset_events == []
    assert open_flags(seeded.warehouse) == []


def test_a_departed_customers_flag_is_cleared_not_left_open(seeded: SeededWarehouse) -> None:
    seeded.customers(HEALTHY_A, HEALTHY_B)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    raised = tick(None)
    assert isinstance(raised, dg.SensorResult)
    assert open_flags(seeded.warehouse) == [(HEALTHY_B, "consent_revoked")]

    seeded.customers(HEALTHY_A)  # Beta Logistics left; it is no longer synced
    seeded.tenant_statuses({HEALTHY_A: OK})
    after = tick(raised.cursor)

    assert isinstance(after, dg.SensorResult)
    assert open_flags(seeded.warehouse) == []
    (evaluation,) = after.asset_events
    assert evaluation.passed is True


def test_a_real_sync_then_the_sensor_flags_the_customer_that_lost_consent(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    pipeline.sim.control.revoke_consent(HEALTHY_B)
    assert pipeline.sync().success

    result = tick(None)

    assert isinstance(result, dg.SensorResult)
    (flag,) = pipeline.warehouse.open_consent_flags()
    assert (flag.tenant_id, flag.status, flag.error_code) == (
        HEALTHY_B,
        "consent_revoked",
        "AADSTS65001",
    )
    assert flag.partner_tenant_id == pipeline.partner_tenant_id


def test_a_real_failed_sign_in_then_the_sensor_flags_the_partner_with_the_remedy(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario(partner={"refresh_token_state": "expired"}))
    assert not pipeline.sync().success

    result = tick(None)

    assert isinstance(result, dg.SensorResult)
    flags = pipeline.warehouse.open_consent_flags()
    assert [(flag.tenant_id, flag.status) for flag in flags] == [(None, "refresh_token_expired")]
    assert "sync365 consent" in (flags[0].message or "")


def age_refresh_token(token_cache: Path, days: float) -> None:
    """Pretend the cached refresh token was last issued `days` ago (MSAL's own timestamp)."""
    cache = json.loads(token_cache.read_text())
    issued = int(time.time() - days * 86400)
    for entry in cache["RefreshToken"].values():
        entry["last_modification_time"] = str(issued)
    token_cache.write_text(json.dumps(cache))


def token_tick(cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources=defs.resources)
    result = refresh_token_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_refresh_token_sensor_warns_once_before_the_90_day_limit(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    # Before any sync (a fresh install, each `sync365 dev` session): the configured token is
    # imported by the first sync, nothing to warn about.
    before = token_tick(None)
    assert before.asset_events == []
    assert json.loads(before.cursor or "{}") == {"default": "not_imported"}
    # Only the sign-in: it leaves the rotated refresh token in the cache, as every sync does.
    signed_in = dg.materialize(
        [partner_token], instance=pipeline.instance, resources=defs.resources
    )
    assert signed_in.success
    fresh = token_tick(before.cursor)
    assert fresh.asset_events == []

    age_refresh_token(pipeline.token_cache, days=70)
    warned = token_tick(fresh.cursor)
    (observation,) = warned.asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.metadata["refresh_token"].value == "expiring"
    assert "sync365 sync" in observation.metadata["message"].value
    assert token_tick(warned.cursor).asset_events == [], "no repeat"

    age_refresh_token(pipeline.token_cache, days=95)
    expired = token_tick(warned.cursor)
    (observation,) = expired.asset_events
    assert observation.metadata["refresh_token"].value == "expired"
    assert "sync365 consent" in observation.metadata["message"].value


def test_after_a_dagster_sync_the_sensor_raises_expiry_flags_which_do_not_fail_the_check(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(expiring_access_scenario())
    assert pipeline.sync().success

    result = tick(None)

    assert isinstance(result, dg.SensorResult)
    assert {flag.key for flag in pipeline.warehouse.open_consent_flags()} == {
        (pipeline.partner_tenant_id, ENDING_GDAP, "gdap_expiring"),
        (pipeline.partner_tenant_id, ENDED_GDAP, "gdap_expiring"),
        (pipeline.partner_tenant_id, None, "client_secret_expiring"),
    }
    (evaluation,) = result.asset_events
    assert evaluation.passed is True, "nothing lost access yet: the check warns of losses only"
    assert "gdap_expiring" in evaluation.metadata["open_flags"].value
    again = tick(None)
    assert isinstance(again, dg.SensorResult)
    assert again.asset_events == []
