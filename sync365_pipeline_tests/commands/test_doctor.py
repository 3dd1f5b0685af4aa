"""`sync365 doctor`: every check in its passing and its failing state, against the simulator."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import duckdb
import pytest
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.commands.doctor import check_dagster_home, check_gdap, check_warehouse
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.access_seed import Access, write_access
from sync365_pipeline_tests.conftest import HoldDuckDB
from sync365_pipeline_tests.samples import OTHER_PARTNER
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, HEALTHY_C, pipeline_scenario

Env = dict[str, str | None]


@pytest.fixture(autouse=True)
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytest's tmp_path lives under /tmp; give doctor another "system temp" so that a
    DAGSTER_HOME in tmp_path counts as persistent."""
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def environment(sim: SimulatorServer, tmp_path: Path, **overrides: str | None) -> Env:
    """The simulator's settings; every other SYNC365_*/DAGSTER_* variable of this shell unset."""
    env: Env = {k: None for k in os.environ if k.startswith(("SYNC365_", "DAGSTER_"))}
    env |= sim.environment()
    env["SYNC365_TOKEN_CACHE"] = str(tmp_path / "token_cache.json")
    env["SYNC365_DUCKDB_PATH"] = str(tmp_path / "sync365.duckdb")
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    return env | overrides


def sign_in(env: Env) -> None:
    """What a sync leaves behind: the rotated refresh token in the cache file."""
    settings = AccountSettings.from_env({k: v for k, v in env.items() if v is not None})
    with MicrosoftCloud.from_settings(settings) as cloud:
        cloud.tokens.partner_center_token()


def doctor(env: Env) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["doctor"], env=env)
    return result.exit_code, result.output


def line(output: str, name: str) -> str:
    """The check's line and its indented detail and fix; '' when the check did not run."""
    lines = output.splitlines()
    for index, text in enumerate(lines):
        if text[2:6] in ("PASS", "WARN", "FAIL") and text[8:].startswith(name):
            block = [text]
            for extra in lines[index + 1 :]:
                if not extra.startswith("        "):
                    break
                block.append(extra)
            return "\n".join(block)
    return ""


@pytest.fixture
def account(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> Callable[..., tuple[SimulatorServer, Env]]:
    def start(
        scenario_: dict[str, Any] | None = None, **overrides: str | None
    ) -> tuple[SimulatorServer, Env]:
        sim = simulator_factory(scenario_ or pipeline_scenario(HEALTHY_A))
        return sim, environment(sim, tmp_path, **overrides)

    return start


def test_healthy_demo_passes_every_check_and_warns_of_gdap_ending_in_25_days(
    demo_simulator: SimulatorServer, tmp_path: Path
) -> None:
    env = environment(demo_simulator, tmp_path)
    sign_in(env)

    code, output = doctor(env)

    assert code == 0, output
    for name in (
        "configuration",
        "endpoint 127.0.0.1",
        "client secret",
        "refresh token age",
        "refresh token redeemable",
        "MFA claim",
        "Partner Center customers",
        "DuckDB",
        "DAGSTER_HOME",
    ):
        assert line(output, name).startswith("  PASS"), name
    assert "16 customers" in line(output, "Partner Center customers")
    gdap = line(output, "GDAP relationships")
    assert gdap.startswith("  WARN")
    assert "Tailspin Logistics Ltd" in gdap
    assert "(in 25 days)" in gdap
    cache = json.loads((tmp_path / "token_cache.json").read_text())
    secrets = [entry["secret"] for entry in cache["RefreshToken"].values()]
    for secret in [*secrets, demo_simulator.environment()["SYNC365_CLIENT_SECRET"]]:
        assert secret not in output


def test_doctor_never_rewrites_the_token_cache(
    account: Callable[..., tuple[SimulatorServer, Env]], tmp_path: Path
) -> None:
    _, env = account()
    sign_in(env)
    before = (tmp_path / "token_cache.json").read_bytes()

    doctor(env)

    assert (tmp_path / "token_cache.json").read_bytes() == before


def test_gdap_relationships_all_far_from_their_end_pass(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(pipeline_scenario(HEALTHY_A))
    sign_in(env)

    _, output = doctor(env)

    assert line(output, "GDAP relationships").startswith("  PASS")
    assert "none ends within 30 days" in output


def test_gdap_relationship_ending_soon_warns_with_its_customer(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(pipeline_scenario(HEALTHY_A, HEALTHY_B))
    sign_in(env)

    code, output = doctor(env)

    assert code == 0, "a warning is not a failure"
    gdap = line(output, "GDAP relationships")
    assert gdap.startswith("  WARN")
    assert "Beta Logistics" in gdap
    assert "Alpha Dental" not in gdap
    assert "auto-extend" in gdap


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SYNC365_CLIENT_ID": None}, "SYNC365_CLIENT_ID is not set"),
        ({"SYNC365_AUTHORITY_HOST": "http://127.0.0.1:1"}, "must be an https URL"),
    ],
)
def test_missing_or_malformed_configuration_fails(
    account: Callable[..., tuple[SimulatorServer, Env]],
    overrides: dict[str, str | None],
    expected: str,
) -> None:
    _, env = account(**overrides)

    code, output = doctor(env)

    assert code == 1
    assert line(output, "configuration").startswith("  FAIL")
    assert expected in output
    assert line(output, "DuckDB").startswith("  PASS"), "local checks still run"


def test_unreachable_endpoint_fails_and_skips_the_sign_in_checks(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    _, env = account(SYNC365_GRAPH_URL=f"https://127.0.0.1:{closed_port}")

    code, output = doctor(env)

    assert code == 1
    graph = line(output, f"endpoint 127.0.0.1:{closed_port} (Microsoft Graph)")
    assert graph.startswith("  FAIL")
    assert "refused the connection" in graph
    assert "fix: Check SYNC365_GRAPH_URL" in graph
    identity = line(output, "endpoint 127.0.0.1")
    assert identity.startswith("  PASS"), "the identity platform itself is reachable"
    assert line(output, "client secret") == ""


def test_untrusted_certificate_fails_naming_the_ca_setting(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(SYNC365_CA_BUNDLE=certifi.where())  # public CAs only: not the simulator's

    code, output = doctor(env)

    assert code == 1
    endpoint = line(output, "endpoint 127.0.0.1")
    assert endpoint.startswith("  FAIL")
    assert "TLS certificate of 127.0.0.1" in endpoint
    assert "failed verification" in endpoint
    assert "SYNC365_CA_BUNDLE" in endpoint


def test_wrong_client_secret_fails(account: Callable[..., tuple[SimulatorServer, Env]]) -> None:
    _, env = account(SYNC365_CLIENT_SECRET="a-secret-value-that-was-rotated")

    code, output = doctor(env)

    assert code == 1
    secret = line(output, "client secret")
    assert secret.startswith("  FAIL")
    assert "AADSTS7000215" in secret
    assert "secret VALUE" in secret
    assert line(output, "refresh token redeemable") == ""
    assert "a-secret-value-that-was-rotated" not in output


def test_expired_refresh_token_fails_with_the_reconsent_remedy(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    sim, env = account(SYNC365_REFRESH_TOKEN=None)
    sign_in({**env, "SYNC365_REFRESH_TOKEN": sim.environment()["SYNC365_REFRESH_TOKEN"]})
    sim.control.set_partner_refresh_token_state("expired")

    code, output = doctor(env)

    assert code == 1
    redeem = line(output, "refresh token redeemable")
    assert redeem.startswith("  FAIL")
    assert "AADSTS700082" in redeem
    assert "sync365 consent" in redeem
    assert line(output, "MFA claim") == ""


@pytest.mark.parametrize(
    ("idle_days", "label", "expected"),
    [
        (10, "PASS", "80 days left"),
        (70, "WARN", "expires in 20 days unless a sync runs"),
        (95, "FAIL", "past Entra ID's 90-day inactivity limit"),
    ],
)
def test_refresh_token_age_from_its_recorded_last_use(
    account: Callable[..., tuple[SimulatorServer, Env]],
    tmp_path: Path,
    idle_days: int,
    label: str,
    expected: str,
) -> None:
    _, env = account()
    sign_in(env)
    cache_path = tmp_path / "token_cache.json"
    cache = json.loads(cache_path.read_text())
    for entry in cache["RefreshToken"].values():
        entry["last_modification_time"] = str(int(time.time()) - idle_days * 86400)
    cache_path.write_text(json.dumps(cache))

    code, output = doctor(env)

    age = line(output, "refresh token age")
    assert age.startswith(f"  {label}")
    assert expected in age
    assert code == (1 if label == "FAIL" else 0)


def test_a_configured_refresh_token_no_sync_imported_yet_is_neither_pass_nor_fail(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account()  # SYNC365_REFRESH_TOKEN set, no sign-in yet: the token cache is empty

    code, output = doctor(env)

    age = line(output, "refresh token age")
    assert age.startswith("  WARN"), output
    assert "imported at the next sync" in age
    assert line(output, "refresh token redeemable").startswith("  PASS")
    assert code == 0, output


def test_no_refresh_token_at_all_fails(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(SYNC365_REFRESH_TOKEN=None)

    code, output = doctor(env)

    assert code == 1
    assert line(output, "refresh token age").startswith("  FAIL")
    redeem = line(output, "refresh token redeemable")
    assert redeem.startswith("  FAIL")
    assert "sync365 consent" in redeem


def test_sign_in_without_mfa_fails_naming_the_likely_causes(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(pipeline_scenario(HEALTHY_A, partner={"mfa": False}))

    code, output = doctor(env)

    assert code == 1
    assert line(output, "refresh token redeemable").startswith("  PASS")
    mfa = line(output, "MFA claim")
    assert mfa.startswith("  FAIL")
    for cause in ("trusted (whitelisted) IP", "Duo", "per-user MFA is off"):
        assert cause in mfa
    assert line(output, "Partner Center customers") == ""


def test_warehouse_locked_by_another_process_fails(
    account: Callable[..., tuple[SimulatorServer, Env]], hold_duckdb: HoldDuckDB, tmp_path: Path
) -> None:
    _, env = account()
    hold_duckdb(tmp_path / "sync365.duckdb", read_only=False)  # as a running sync would

    code, output = doctor(env)

    assert code == 1
    duckdb_line = line(output, "DuckDB")
    assert duckdb_line.startswith("  FAIL")
    assert "is locked by process" in duckdb_line


def test_warehouse_states(tmp_path: Path) -> None:
    path = tmp_path / "sync365.duckdb"
    assert check_warehouse(path).detail == "not created yet; the first sync creates it"
    duckdb.connect(str(path)).close()
    assert check_warehouse(path).ok is True
    path.chmod(0o400)
    if os.access(path, os.W_OK):  # root ignores file modes
        pytest.skip("running as root: file modes are not enforced")
    assert check_warehouse(path).ok is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "not set"),
        ("relative/dagster_home", "not an absolute path"),
        ("{temp}/dagster_home", "under the temporary folder"),
    ],
)
def test_dagster_home_unset_relative_or_temporary_fails(
    system_temp: Path, value: str | None, expected: str
) -> None:
    check = check_dagster_home(value.format(temp=system_temp) if value else None)

    assert check.ok is False
    assert expected in check.detail
    assert "export DAGSTER_HOME=" in check.fix


def test_dagster_home_outside_temp_passes(tmp_path: Path) -> None:
    assert check_dagster_home(str(tmp_path / "dagster_home")).ok is True


def test_direct_tenant_is_checked_with_client_credentials_only(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> None:
    sim = simulator_factory(pipeline_scenario(HEALTHY_A))
    settings = sim.environment()
    config = tmp_path / "accounts.toml"
    config.write_text(
        f'[[accounts]]\nname = "shop"\nkind = "direct"\n'
        f'tenant_id = "{settings["SYNC365_PARTNER_TENANT_ID"]}"\n'
        f'client_id = "{settings["SYNC365_CLIENT_ID"]}"\n'
        'client_secret_env = "SHOP_SECRET"\n'
        f'authority_host = "{sim.url}"\ngraph_url = "{sim.url}"\n'
        f'ca_bundle = "{sim.ca_path}"\n'
    )
    env = environment(sim, tmp_path, SYNC365_CONFIG=str(config))
    env["SHOP_SECRET"] = settings["SYNC365_CLIENT_SECRET"]

    code, output = doctor(env)

    assert code == 0, output
    assert "Account shop (direct tenant" in output
    assert line(output, "client secret").startswith("  PASS")
    assert "Partner Center" not in output
    assert line(output, "refresh token age") == ""


def test_gdap_relationships_ending_together_are_listed() -> None:
    """Relationships created together end at the same moment; the listing must not trip on it."""
    end = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    relationships = [
        {"status": "active", "endDateTime": end, "displayName": name, "customer": {}}
        for name in ("first", "second")
    ]

    class Graph:
        def delegated_admin_relationships(self) -> list[dict[str, object]]:
            return relationships

    check = check_gdap(Graph().delegated_admin_relationships)

    assert check.ok is None
    assert "first" in check.detail
    assert "second" in check.detail


def access_block(output: str) -> list[str]:
    """The customer access check's lines, its dates as YYYY-MM-DD."""
    return re.sub(r"\d{4}-\d{2}-\d{2}", "YYYY-MM-DD", line(output, "customer access")).splitlines()


def test_customer_access_audit_of_the_demo_finds_each_customer_that_needs_a_human(
    demo_simulator: SimulatorServer, tmp_path: Path
) -> None:
    """Live, with no sync: Oakridge's assignments grant no licence-reading role, Pinecrest ends
    in 9 days without auto-extend, Litware has ended; Tailspin ends in 25 days but extends."""
    env = environment(demo_simulator, tmp_path)
    sign_in(env)
    before = Counter(demo_simulator.control.request_counts()["by_route"])

    code, output = doctor(env)

    assert code == 0, output
    assert access_block(output) == [
        "  WARN  customer access: 15 GDAP customers, 14 active relationships audited; 3 finding(s) "
        "(no sync yet: consent unknown):",
        "        - Litware Architects: GDAP ended on YYYY-MM-DD",
        "          fix: Request a new GDAP relationship in Partner Center and have the customer "
        "approve it;",
        "               an ended relationship cannot be extended.",
        "        - Oakridge Accounting Group: no licence-reading GDAP role (has Exchange "
        "Administrator)",
        "          fix: Add Directory Readers or Global Reader to the relationship's access "
        "assignment in",
        "               Partner Center (Customers > Admin relationships); the pipeline cannot "
        "grant roles.",
        "        - Pinecrest Hotels: GDAP ends in 9 days (YYYY-MM-DD) without auto-extend",
        "          fix: Extend the relationship or turn on auto-extend in Partner Center "
        "(Customers > Admin",
        "               relationships); after its end the sync loses the customer.",
    ]
    assert max(map(len, access_block(output)[1:])) <= 100, "findings fit 100 columns"
    asked = Counter(demo_simulator.control.request_counts()["by_route"]) - before
    assert asked["graph.accessAssignments"] == 14, "one call per active relationship"
    assert asked["graph.delegatedAdminRelationships"] == 1, "both GDAP checks share one listing"


def test_customer_access_adds_the_consents_the_last_sync_could_not_grant(
    account: Callable[..., tuple[SimulatorServer, Env]], tmp_path: Path
) -> None:
    sim, env = account(pipeline_scenario(HEALTHY_A, HEALTHY_C))
    sign_in(env)
    partner = sim.environment()["SYNC365_PARTNER_TENANT_ID"]
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()
    listing = [
        {"customerId": HEALTHY_A, "displayName": "Alpha Dental"},
        {"customerId": HEALTHY_C, "displayName": "Gamma Realty"},
    ]
    for owner in (partner, OTHER_PARTNER):
        warehouse.upsert_customers(
            owner, customers_frame(owner, [], [], listing).frame, datetime.now(UTC)
        )
    checked = datetime.now(UTC) - timedelta(hours=1)
    write_access(
        warehouse,
        [Access(HEALTHY_A, checked, "disabled"), Access(HEALTHY_C, checked, "failed")],
        partner,
    )
    write_access(warehouse, [Access(HEALTHY_A, checked, "failed")], OTHER_PARTNER)

    _, output = doctor(env)

    block = access_block(output)
    assert block[0] == (
        "  WARN  customer access: 1 GDAP customers, 1 active relationships audited; 2 finding(s):"
    )
    assert [text for text in block if text.startswith("        - ")] == [
        "        - Alpha Dental: no app consent (auto-consent is off)",
        "        - Gamma Realty: no app consent: granting it failed",
    ]
    assert "SYNC365_AUTO_CONSENT=true" in "\n".join(block)
    assert "Admin Agent" in "\n".join(block)


def test_customer_access_passes_when_every_customer_reads_and_none_ends_soon(
    account: Callable[..., tuple[SimulatorServer, Env]],
) -> None:
    _, env = account(pipeline_scenario(HEALTHY_A))
    sign_in(env)

    _, output = doctor(env)

    assert access_block(output) == [
        "  PASS  customer access: 1 GDAP customers, 1 active relationships audited; each can read "
        "licences and none ends soon (no sync yet: consent unknown)"
    ]
