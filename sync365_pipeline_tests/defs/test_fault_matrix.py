"""The fault matrix: one sync over customers that each meet a different hostile answer.

Every customer's failure becomes that customer's status (the others land), no secret the
simulator issued reaches the warehouse, Dagster's storage or the output, and nothing is sent to
the origin a redirect points at."""

from __future__ import annotations

import copy
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sync365_pipeline.simulator.scenario import HOSTILE_TEXT
from sync365_pipeline_tests.scenarios import HEALTHY_A, PARTNER, pipeline_scenario
from sync365_pipeline_tests.secrets_scan import bytes_under, secrets_found

from .conftest import PipelineFactory

DEADLINE_S = 2


class Trap:
    """A loopback listener that records every connection made to it (it should get none)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/collect"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    self.received.append(connection.recv(65536))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.close()


def customer(index: int, faults: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of Alpha Dental under a tenant id and name of its own, with `faults`."""
    (template,) = [c for c in pipeline_scenario()["customers"] if c["tenant_id"] == HEALTHY_A]
    tenant = f"f{index:07d}-0000-4000-8000-000000000000"
    return {
        **copy.deepcopy(template),
        "tenant_id": tenant,
        "display_name": f"Faulty {index}",
        "default_domain": f"faulty{index}.onmicrosoft.com",
        "faults": faults,
    }


# (faults, expected status, expected error code or None); each customer meets one row.
MATRIX = [
    ([{"type": "redirect", "location": "TRAP"}], "error", "HTTP 307"),
    (
        [{"type": "redirect", "location": "TRAP", "service": "identity", "status": 308}],
        "error",
        "HTTP 308",
    ),
    ([{"type": "reset"}], "error", "ConnectionReset"),
    ([{"type": "trickle", "interval_ms": 1000, "chunk_bytes": 1}], "error", "DeadlineExceeded"),
    ([{"type": "deep_json"}], "error", "HTTP 200"),
    ([{"type": "echo"}], "error", None),
    ([{"type": "odd_body", "body": []}], "error", "MalformedTokenResponse"),
    ([{"type": "odd_body", "body": {"access_token": 42, "expires_in": "soon"}}], "error", None),
    ([{"type": "bad_record"}], "ok", "SkippedRecords"),
    ([{"type": "huge_numbers"}], "ok", None),
]


def test_every_hostile_answer_is_one_customers_status_and_the_rest_land(
    pipeline_factory: PipelineFactory,
    trap: Trap,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    scenario = pipeline_scenario(HEALTHY_A, settings={"record_issued_tokens": True})
    scenario["partner"]["faults"] = [{"type": "hostile_text", "service": "partner_center"}]
    for index, (faults, _, _) in enumerate(MATRIX):
        for fault in faults:
            if fault.get("location") == "TRAP":
                fault["location"] = trap.url
        scenario["customers"].append(customer(index, faults))
    monkeypatch.setenv("SYNC365_RESPONSE_DEADLINE", str(DEADLINE_S))
    pipeline = pipeline_factory(scenario)
    dagster_home = tmp_path / "persistent_dagster_home"  # sqlite storage, as `sync365 sync`
    dagster_home.mkdir()

    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        pipeline.instance = instance
        outcome = pipeline.sync()

    assert outcome.success, outcome.failure
    statuses = {
        tenant: (status, code, message)
        for tenant, status, code, message in pipeline.query(
            "SELECT tenant_id, status, error_code, message FROM latest_tenant_status"
        )
    }
    assert statuses[HEALTHY_A][:2] == ("ok", None)
    for index, (_, status, code) in enumerate(MATRIX):
        tenant = customer(index, [])["tenant_id"]
        assert statuses[tenant][0] == status, (index, statuses[tenant])
        if code is not None:
            assert statuses[tenant][1] == code, (index, statuses[tenant])
    landed = dict(pipeline.query("SELECT DISTINCT tenant_id, source FROM license_facts"))
    ok = {tenant for tenant, (status, _, _) in statuses.items() if status == "ok"}
    assert {tenant for tenant, source in landed.items() if source == "graph"} == ok
    # Partner Center (untouched by these faults) stands in for each reseller customer that
    # Graph or its token failed for; its status still says why Graph failed.
    fell_back = {tenant for tenant, source in landed.items() if source == "partner_center"}
    assert fell_back == set(statuses) - ok
    assert all("came from Partner Center" in statuses[tenant][2] for tenant in fell_back)
    assert trap.received == [], "a redirect was followed to another origin"

    names = [row[0] for row in pipeline.query("SELECT display_name FROM customers")]
    assert names, "the customers with hostile names were still discovered"
    for name in names:
        assert "\x1b" not in name
        assert "\x00" not in name
        name.encode("utf-8")
    assert HOSTILE_TEXT not in names

    # Every secret the simulator issued (client secret, refresh and access tokens, id tokens)
    # is in none of the files the sync wrote, nor in what it logged or printed.
    issued = pipeline.sim.control.issued_secrets()
    assert len(issued) > 2 + len(MATRIX), "tokens for the partner and most customers"
    assert bytes_under(dagster_home), "Dagster wrote its storage where we look"
    captured = capsys.readouterr()
    assert (
        secrets_found(
            issued,
            duckdb_files=[pipeline.warehouse.path, pipeline.warehouse.analyst_copy_path],
            trees=[dagster_home],
            texts=[caplog.text, captured.out, captured.err],
        )
        == []
    )


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"type": "echo"}, None),
        ({"type": "odd_body", "body": []}, "MalformedTokenResponse"),
        ({"type": "odd_body", "body": {"access_token": ["x"], "token_type": 7}}, None),
        ({"type": "deep_json", "service": "identity"}, None),
    ],
)
def test_a_hostile_answer_to_the_partners_sign_in_is_recorded_with_a_remedy_and_no_secret(
    pipeline_factory: PipelineFactory, fault: dict[str, Any], code: str | None
) -> None:
    scenario = pipeline_scenario(HEALTHY_A)
    scenario["partner"]["faults"] = [fault]
    pipeline = pipeline_factory(scenario)

    outcome = pipeline.sync()

    assert not outcome.success
    ((status, error_code, message),) = pipeline.query(
        "SELECT status, error_code, message FROM partner_status"
    )
    assert status != "ok"
    if code is not None:
        assert error_code == code
    assert "then rerun" in message or "next run" in message, message
    for secret in (PARTNER["client_secret"], PARTNER["refresh_token"]):
        assert secret not in message
        assert secret not in (outcome.failure or "")
