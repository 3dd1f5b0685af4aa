"""`sync365 sync` raises and clears the flags itself, with no Dagster daemon: a GDAP relationship
or the app's client secret that ends soon is flagged and posted once, cleared once renewed; the
consent sensor ticking after such a sync finds nothing new and posts nothing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.sensors import consent_sensor
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import (
    ENDED_GDAP,
    ENDING_GDAP,
    PARTNER,
    expiring_access_scenario,
)
from sync365_pipeline_tests.webhooks import Receiver

from .processes import run_sync365, simulator_env

pytestmark = pytest.mark.e2e

GDAP = "gdap_expiring"
SECRET = "client_secret_expiring"
EXPIRING = {
    (PARTNER["tenant_id"], ENDING_GDAP, GDAP),  # ends in 9 days without auto-extend
    (PARTNER["tenant_id"], ENDED_GDAP, GDAP),  # ended; Beta Logistics extends itself: no flag
    (PARTNER["tenant_id"], None, SECRET),  # the secret in use ends in 20 days
}


def sensor_tick(warehouse: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """One consent sensor tick over the synced warehouse, its webhook the receiver; it must
    find nothing to do."""
    monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("SYNC365_WEBHOOK_URL", receiver.url)
    posts = len(receiver.posts)
    result = consent_sensor(dg.build_sensor_context(cursor=None, resources=defs.resources))
    assert isinstance(result, dg.SensorResult), "a sync's results are news to a new cursor"
    assert result.asset_events == []
    assert len(receiver.posts) == posts


def test_sync_raises_expiry_flags_once_and_clears_them_when_renewed(
    simulator_factory: SimulatorFactory,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = simulator_factory(expiring_access_scenario())
    env = simulator_env(sim, tmp_path) | {"SYNC365_WEBHOOK_URL": receiver.url}
    warehouse = Warehouse(tmp_path / "sync365.duckdb")

    first = run_sync365(["sync"], env, tmp_path)

    assert first.returncode == 0, first.stderr
    raised = warehouse.open_consent_flags()
    assert {flag.key for flag in raised} == EXPIRING
    (post,) = receiver.posts
    assert {(f["tenant_id"], f["kind"]) for f in post["json"]["raised"]} == {
        (tenant, kind) for _, tenant, kind in EXPIRING
    }
    flag_lines = [line for line in first.stdout.splitlines() if "ending: " in line]
    assert len(flag_lines) == 3
    assert any(
        line.startswith("- GDAP relationship ending: Epsilon Clinic:") for line in flag_lines
    )
    assert any("Zeta Foods: The GDAP relationship ended on" in line for line in flag_lines)
    assert any(
        "Client secret ending:" in line and "SYNC365_CLIENT_SECRET" in line for line in flag_lines
    )
    assert not any(ENDING_GDAP in line or ENDED_GDAP in line for line in flag_lines), "named"
    assert env["SYNC365_CLIENT_SECRET"] not in first.stdout + first.stderr + str(post)

    second = run_sync365(["sync"], env, tmp_path)

    assert second.returncode == 0, second.stderr
    assert "Flags raised and cleared" not in second.stdout
    assert len(receiver.posts) == 1, "a flag still open is not posted again"
    assert [flag.flag_id for flag in warehouse.open_consent_flags()] == [
        flag.flag_id for flag in raised
    ]
    sensor_tick(warehouse.path, receiver, monkeypatch)

    sim.control.update_gdap_relationship(ENDING_GDAP, ends_in_days=730)  # extended
    sim.control.update_gdap_relationship(ENDED_GDAP, ends_in_days=300, auto_extend_duration="P180D")
    sim.control.set_password_credentials(  # a new secret added, now the configured one
        [
            {"display_name": "sync365 next", "ends_in_days": 700},
            {"display_name": "sync365 current", "hint": "Pq4", "ends_in_days": 20},
        ]
    )
    third = run_sync365(["sync"], env, tmp_path)

    assert third.returncode == 0, third.stderr
    assert warehouse.open_consent_flags() == []
    assert len(receiver.posts) == 2
    cleared = receiver.posts[1]["json"]
    assert cleared["raised"] == []
    assert {(f["tenant_id"], f["kind"]) for f in cleared["cleared"]} == {
        (tenant, kind) for _, tenant, kind in EXPIRING
    }
    assert (
        "GDAP relationship no longer ending (renewed, extended or departed): Epsilon Clinic."
        in (third.stdout)
    )
    sensor_tick(warehouse.path, receiver, monkeypatch)
