"""Configuration from the environment and from an accounts file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync365_pipeline.core.settings import (
    AccountSettings,
    ConfigError,
    accounts_from_file,
    load_accounts,
    load_run_settings,
)

BASE = {
    "SYNC365_CLIENT_ID": "0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50",
    "SYNC365_CLIENT_SECRET": "s3cret-value",
    "SYNC365_PARTNER_TENANT_ID": "5b7a3c1e-0f4d-4c55-9d1a-2f8e6b0c9a11",
}


@pytest.mark.parametrize(
    ("cloud", "authority", "graph", "partner_center", "graph_scope_resource"),
    [
        (
            "global",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://api.partnercenter.microsoft.com",
            "https://graph.microsoft.com",
        ),
        (
            "usgov",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://api.partnercenter.microsoft.com",
            "https://graph.microsoft.us",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://partner.partnercenterapi.microsoftonline.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    ],
)
def test_cloud_sets_microsofts_documented_endpoints(
    cloud: str, authority: str, graph: str, partner_center: str, graph_scope_resource: str
) -> None:
    endpoints = AccountSettings.from_env({**BASE, "SYNC365_CLOUD": cloud}).endpoints

    assert endpoints.authority_host == authority
    assert endpoints.graph_url == graph
    assert endpoints.partner_center_url == partner_center
    assert endpoints.graph_resource == graph_scope_resource


def test_explicit_urls_override_the_cloud_but_keep_its_resource_ids() -> None:
    settings = AccountSettings.from_env(
        {**BASE, "SYNC365_CLOUD": "usgov", "SYNC365_GRAPH_URL": "https://127.0.0.1:8443/"}
    )

    assert settings.endpoints.graph_url == "https://127.0.0.1:8443"
    assert settings.endpoints.graph_resource == "https://graph.microsoft.us"
    assert settings.endpoints.authority_host == "https://login.microsoftonline.us"


def test_every_problem_is_reported_at_once_and_no_secret_is_shown() -> None:
    with pytest.raises(ConfigError) as raised:
        AccountSettings.from_env(
            {
                "SYNC365_CLIENT_SECRET": "s3cret-value",
                "SYNC365_CLOUD": "mars",
                "SYNC365_AUTHORITY_HOST": "http://login.example",
                "SYNC365_MAX_WORKERS": "lots",
                "SYNC365_CA_BUNDLE": "/no/such/ca.pem",
            }
        )
    message = str(raised.value)
    for expected in (
        "SYNC365_CLIENT_ID is not set",
        "SYNC365_PARTNER_TENANT_ID is not set",
        "SYNC365_CLOUD must be one of global, usgov, china",
        "SYNC365_AUTHORITY_HOST must be an https URL",
        "SYNC365_MAX_WORKERS must be a whole number",
        "SYNC365_CA_BUNDLE points at /no/such/ca.pem",
    ):
        assert expected in message
    assert "s3cret-value" not in message
    assert "s3cret-value" not in repr(AccountSettings.from_env(BASE))


def test_accounts_file_reads_secrets_from_where_it_says(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret\n")
    config = tmp_path / "sync365.toml"
    config.write_text(
        f'duckdb_path = "{tmp_path / "w.duckdb"}"\n'
        "[[accounts]]\n"
        'name = "gov"\n'
        f'tenant_id = "{BASE["SYNC365_PARTNER_TENANT_ID"]}"\n'
        f'client_id = "{BASE["SYNC365_CLIENT_ID"]}"\n'
        'client_secret_env = "GOV_SECRET"\n'
        'refresh_token_env = "GOV_RT"\n'
        'cloud = "usgov"\n'
        "[[accounts]]\n"
        'name = "direct"\n'
        'kind = "direct"\n'
        'tenant_id = "11111111-1111-4111-8111-111111111111"\n'
        f'client_id = "{BASE["SYNC365_CLIENT_ID"]}"\n'
        f'client_secret_file = "{secret_file}"\n'
    )
    env = {"SYNC365_CONFIG": str(config), "GOV_SECRET": "env-secret", "GOV_RT": "rt"}

    gov, direct = load_accounts(env)

    assert gov.credentials.client_secret.reveal() == "env-secret"
    assert gov.credentials.refresh_token is not None
    assert gov.endpoints.authority_host == "https://login.microsoftonline.us"
    assert gov.token_cache_path == Path("data/token_cache-gov.json")
    assert direct.kind == "direct"
    assert direct.credentials.client_secret.reveal() == "file-secret"
    assert direct.credentials.refresh_token is None
    assert load_run_settings(env).duckdb_path == tmp_path / "w.duckdb"


def test_accounts_file_rejects_duplicate_tenants_and_bad_toml(tmp_path: Path) -> None:
    config = tmp_path / "sync365.toml"
    entry = (
        "[[accounts]]\nname = '{name}'\ntenant_id = 'same'\n"
        f"client_id = '{BASE['SYNC365_CLIENT_ID']}'\nclient_secret_env = 'X'\n"
    )
    config.write_text(entry.format(name="a") + entry.format(name="b"))
    with pytest.raises(ConfigError, match="accounts share a tenant_id: same"):
        accounts_from_file(config, {"X": "x"})
    config.write_text("[[accounts]\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        accounts_from_file(config, {})
    with pytest.raises(ConfigError, match="does not exist"):
        accounts_from_file(tmp_path / "missing.toml", {})


def test_the_quality_checks_thresholds_have_defaults_and_refuse_nonsense() -> None:
    defaults = load_run_settings({})
    assert (defaults.min_reached_share, defaults.max_facts_age_days) == (0.9, 1)
    chosen = load_run_settings(
        {"SYNC365_MIN_REACHED_SHARE": "0.75", "SYNC365_MAX_FACTS_AGE_DAYS": "2"}
    )
    assert (chosen.min_reached_share, chosen.max_facts_age_days) == (0.75, 2)
    with pytest.raises(ConfigError, match="SYNC365_MIN_REACHED_SHARE must be a share"):
        load_run_settings({"SYNC365_MIN_REACHED_SHARE": "90%"})
