"""Several accounts in one warehouse: two partners (two simulators) and a direct tenant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.core.settings import ConfigError, accounts_from_file
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.defs.sensors import consent_sensor
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.scenarios import (
    DIRECT_TENANT,
    HEALTHY_A,
    HEALTHY_B,
    HEALTHY_C,
    SECOND_CUSTOMER,
    second_partner_scenario,
    with_direct_tenant_scenario,
)


def account_entry(
    name: str, sim: SimulatorServer, tmp_path: Path, *, kind: str = "partner", tenant: str = ""
) -> str:
    env = sim.environment()
    lines = [
        "[[accounts]]",
        f'name = "{name}"',
        f'kind = "{kind}"',
        f'tenant_id = "{tenant or env["SYNC365_PARTNER_TENANT_ID"]}"',
        f'client_id = "{env["SYNC365_CLIENT_ID"]}"',
        f'client_secret_env = "{name.upper()}_SECRET"',
        f'token_cache = "{tmp_path / f"cache-{name}.json"}"',
        f'authority_host = "{sim.url}"',
        f'graph_url = "{sim.url}"',
        f'partner_center_url = "{sim.url}"',
        f'ca_bundle = "{sim.ca_path}"',
    ]
    if kind == "partner":
        lines.append(f'refresh_token_env = "{name.upper()}_REFRESH_TOKEN"')
    return "\n".join(lines) + "\n"


@pytest.fixture
def two_partners_and_a_direct_tenant(
    simulator_factory: Callable[[Any], SimulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[SimulatorServer, SimulatorServer, Path]:
    first = simulator_factory(with_direct_tenant_scenario())
    second = simulator_factory(second_partner_scenario())
    duckdb_path = use_accounts_file(
        monkeypatch,
        tmp_path,
        {"contoso": first, "adventureworks": second},
        account_entry("direct", first, tmp_path, kind="direct", tenant=DIRECT_TENANT),
    )
    env = first.environment()
    monkeypatch.setenv("DIRECT_SECRET", env["SYNC365_CLIENT_SECRET"])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return first, second, duckdb_path


def use_accounts_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    partners: dict[str, SimulatorServer],
    *more_entries: str,
) -> Path:
    """Configure the pipeline by an accounts file with one partner account per simulator (its
    secrets in `<NAME>_SECRET` and `<NAME>_REFRESH_TOKEN`) and `more_entries`; returns the
    warehouse path it names."""
    duckdb_path = tmp_path / "sync365.duckdb"
    config = tmp_path / "sync365.toml"
    entries = [account_entry(name, sim, tmp_path) for name, sim in partners.items()]
    config.write_text(f'duckdb_path = "{duckdb_path}"\n\n' + "\n".join([*entries, *more_entries]))
    for name, sim in partners.items():
        env = sim.environment()
        monkeypatch.setenv(f"{name.upper()}_SECRET", env["SYNC365_CLIENT_SECRET"])
        monkeypatch.setenv(f"{name.upper()}_REFRESH_TOKEN", env["SYNC365_REFRESH_TOKEN"])
    for variable in ("SYNC365_CLIENT_ID", "SYNC365_DUCKDB_PATH", "SYNC365_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SYNC365_CONFIG", str(config))
    return duckdb_path


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_accounts_sync_into_one_warehouse_kept_apart_by_partner(
    two_partners_and_a_direct_tenant: tuple[SimulatorServer, SimulatorServer, Path],
) -> None:
    first, second, duckdb_path = two_partners_and_a_direct_tenant
    first_partner = first.environment()["SYNC365_PARTNER_TENANT_ID"]
    second_partner = second.environment()["SYNC365_PARTNER_TENANT_ID"]
    first.control.revoke_consent(HEALTHY_B)

    with dg.instance_for_test() as instance:
        outcome = run_full_sync(defs, instance)
    assert outcome.success, outcome.failure

    customers = dict(rows(duckdb_path, "SELECT tenant_id, partner_tenant_id FROM customers"))
    assert customers == {
        HEALTHY_A: first_partner,
        HEALTHY_B: first_partner,
        HEALTHY_C: first_partner,
        SECOND_CUSTOMER: second_partner,
        DIRECT_TENANT: DIRECT_TENANT,
    }
    facts_by_partner = dict(
        rows(
            duckdb_path,
            "SELECT partner_tenant_id, list(DISTINCT tenant_id ORDER BY tenant_id) "
            "FROM license_facts GROUP BY 1",
        )
    )
    assert facts_by_partner == {
        first_partner: sorted([HEALTHY_A, HEALTHY_B, HEALTHY_C]),
        second_partner: [SECOND_CUSTOMER],
        DIRECT_TENANT: [DIRECT_TENANT],
    }
    sources = rows(
        duckdb_path, f"SELECT DISTINCT source FROM license_facts WHERE tenant_id = '{HEALTHY_B}'"
    )
    assert sources == [("partner_center",)], "Graph refused it; Partner Center stood in"
    statuses = {
        (partner, tenant): status
        for partner, tenant, status in rows(
            duckdb_path, "SELECT partner_tenant_id, tenant_id, status FROM latest_tenant_status"
        )
    }
    assert statuses[(first_partner, HEALTHY_B)] == "consent_revoked"
    assert statuses[(second_partner, SECOND_CUSTOMER)] == "ok"
    assert statuses[(DIRECT_TENANT, DIRECT_TENANT)] == "ok"
    direct = rows(
        duckdb_path,
        f"SELECT relationship, display_name FROM customers WHERE tenant_id = '{DIRECT_TENANT}'",
    )
    assert direct == [("direct", "Direct Manufacturing")]
    direct_units = rows(
        duckdb_path,
        "SELECT sku_part_number, enabled_units, consumed_units FROM license_facts "
        f"WHERE tenant_id = '{DIRECT_TENANT}'",
    )
    assert direct_units == [("SPE_E5", 35, 33)]


def test_one_broken_account_does_not_stop_the_others(
    two_partners_and_a_direct_tenant: tuple[SimulatorServer, SimulatorServer, Path],
) -> None:
    _, second, duckdb_path = two_partners_and_a_direct_tenant
    second.control.set_partner_refresh_token_state("revoked")

    result = CliRunner().invoke(main, ["sync"])

    assert result.exit_code == 1, result.output
    assert "AADSTS50173" in result.output
    tenants = {tenant for (tenant,) in rows(duckdb_path, "SELECT tenant_id FROM license_facts")}
    assert tenants == {HEALTHY_A, HEALTHY_B, HEALTHY_C, DIRECT_TENANT}
    failed = rows(
        duckdb_path,
        "SELECT DISTINCT status FROM partner_status WHERE partner_tenant_id = "
        f"'{second.environment()['SYNC365_PARTNER_TENANT_ID']}'",
    )
    assert failed == [("refresh_token_revoked",)], "every step that tried recorded the failure"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('cloud = "mars"\nclient_secret_env = "X"\n', "accounts.0.cloud"),
        ('client_secret_env = "X"\nclient_secret_file = "/nope"\n', "client_secret_env or"),
        ('client_secret_env = "X"\nrefresh_tokn_env = "Y"\n', "accounts.0.refresh_tokn_env"),
        ('client_secret_env = "SECRET_THAT_IS_NOT_SET"\n', "SECRET_THAT_IS_NOT_SET is not set"),
    ],
)
def test_accounts_file_errors_name_the_field(tmp_path: Path, body: str, expected: str) -> None:
    config = tmp_path / "sync365.toml"
    config.write_text(
        '[[accounts]]\nname = "a"\ntenant_id = "t"\n'
        'client_id = "0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50"\n' + body
    )
    with pytest.raises(ConfigError) as raised:
        accounts_from_file(config, {})
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        # Without consent the app has no service principal there: Entra answers AADSTS700016.
        ("consent_revoked", "invalid_client", "AADSTS700016"),
        ("tenant_gone", "tenant_gone", "AADSTS90002"),
    ],
)
def test_direct_tenant_that_refuses_its_app_is_an_account_failure(
    two_partners_and_a_direct_tenant: tuple[SimulatorServer, SimulatorServer, Path],
    fault: str,
    status: str,
    code: str,
) -> None:
    first, _, duckdb_path = two_partners_and_a_direct_tenant
    first.control.set_fault(DIRECT_TENANT, {"type": fault})

    result = CliRunner().invoke(main, ["sync"])

    assert result.exit_code == 1, result.output
    assert code in result.output
    statuses = rows(
        duckdb_path,
        "SELECT DISTINCT status, error_code FROM partner_status "
        f"WHERE partner_tenant_id = '{DIRECT_TENANT}'",
    )
    assert statuses == [(status, code)]
    synced = {tenant for (tenant,) in rows(duckdb_path, "SELECT tenant_id FROM license_facts")}
    assert SECOND_CUSTOMER in synced
    assert DIRECT_TENANT not in synced


def test_an_outage_of_one_account_is_recorded_without_a_consent_flag(
    two_partners_and_a_direct_tenant: tuple[SimulatorServer, SimulatorServer, Path],
) -> None:
    _, second, duckdb_path = two_partners_and_a_direct_tenant
    second_partner = second.environment()["SYNC365_PARTNER_TENANT_ID"]
    outage = {"type": "server_error", "status": 503, "retry_after": 0, "service": "partner_center"}
    second.control.set_fault(second_partner, outage)  # Retry-After 0: the retries do not wait

    result = CliRunner().invoke(main, ["sync"])

    assert result.exit_code == 1, result.output
    assert "temporary" in result.output
    synced = {tenant for (tenant,) in rows(duckdb_path, "SELECT tenant_id FROM license_facts")}
    assert synced == {HEALTHY_A, HEALTHY_B, HEALTHY_C, DIRECT_TENANT}
    statuses = rows(
        duckdb_path,
        f"SELECT DISTINCT status FROM partner_status WHERE partner_tenant_id = '{second_partner}'",
    )
    assert ("error",) in statuses
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=defs.resources)
        consent_sensor(context)
    assert rows(duckdb_path, "SELECT count(*) FROM consent_flags") == [(0,)]
