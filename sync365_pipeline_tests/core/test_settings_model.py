"""The settings model without a server: one set of validators for every source, and one
precedence (Dagster resource config > SYNC365_* environment > accounts file > default) in both
modes, single account and accounts file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync365_pipeline.core.settings import (
    ConfigError,
    ResourceConfig,
    load_accounts,
    load_run_settings,
)

PARTNER = "5b7a3c1e-0f4d-4c55-9d1a-2f8e6b0c9a11"
CLIENT_ID = "0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50"
SECRET = "s3cret-value-never-shown"
SINGLE_ACCOUNT = {
    "SYNC365_CLIENT_ID": CLIENT_ID,
    "SYNC365_CLIENT_SECRET": SECRET,
    "SYNC365_PARTNER_TENANT_ID": PARTNER,
}


def accounts_file(tmp_path: Path, top: str = "", *entries: str) -> Path:
    """An accounts file with `top` level keys and the given entries (default: one partner)."""
    path = tmp_path / "sync365.toml"
    tables = entries or (entry("contoso", PARTNER),)
    path.write_text(top + "\n" + "\n".join(tables))
    return path


def entry(name: str, tenant_id: str, extra: str = "") -> str:
    return (
        f'[[accounts]]\nname = "{name}"\ntenant_id = "{tenant_id}"\nclient_id = "{CLIENT_ID}"\n'
        f'client_secret_env = "SECRET"\n{extra}'
    )


def ca(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}-ca.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n")
    return path


def microsoft(**values: object) -> ResourceConfig:
    return ResourceConfig("microsoft", values)


@pytest.mark.parametrize(
    ("sources", "duckdb_path"),
    [
        ((), "data/sync365.duckdb"),
        (("file",), "file.duckdb"),
        (("file", "environment"), "env.duckdb"),
        (("file", "environment", "resource"), "resource.duckdb"),
        (("environment", "resource"), "resource.duckdb"),
    ],
)
def test_run_settings_come_from_resource_config_then_environment_then_file_then_default(
    tmp_path: Path, sources: tuple[str, ...], duckdb_path: str
) -> None:
    env = {"SECRET": SECRET}
    if "file" in sources:
        env["SYNC365_CONFIG"] = str(accounts_file(tmp_path, 'duckdb_path = "file.duckdb"\n'))
    if "environment" in sources:
        env["SYNC365_DUCKDB_PATH"] = "env.duckdb"
    resource = ResourceConfig("warehouse", {"duckdb_path": "resource.duckdb"})

    settings = load_run_settings(env, resource if "resource" in sources else None)

    assert settings.duckdb_path == Path(duckdb_path)


@pytest.mark.parametrize("mode", ["single account", "accounts file"])
@pytest.mark.parametrize("source", ["environment", "resource config"])
def test_the_runs_max_workers_and_ca_bundle_apply_to_every_account_in_both_modes(
    tmp_path: Path, mode: str, source: str
) -> None:
    bundle = ca(tmp_path, "corporate")
    env = {**SINGLE_ACCOUNT, "SECRET": SECRET}
    if mode == "accounts file":
        second = entry("fabrikam", "11111111-1111-4111-8111-111111111111")
        env["SYNC365_CONFIG"] = str(accounts_file(tmp_path, "", entry("contoso", PARTNER), second))
    resource = None
    if source == "environment":
        env |= {"SYNC365_MAX_WORKERS": "64", "SYNC365_CA_BUNDLE": str(bundle)}
    else:
        resource = microsoft(max_workers=64, ca_bundle=str(bundle))

    accounts = load_accounts(env, resource)

    assert len(accounts) == (2 if mode == "accounts file" else 1)
    assert {(account.max_workers, account.ca_bundle) for account in accounts} == {(64, bundle)}


def test_an_entrys_own_ca_bundle_is_a_file_value_below_environment_and_resource_config(
    tmp_path: Path,
) -> None:
    own = {name: ca(tmp_path, name) for name in ("contoso", "fabrikam")}
    config = accounts_file(
        tmp_path,
        "",
        entry("contoso", PARTNER, f'ca_bundle = "{own["contoso"]}"\n'),
        entry(
            "fabrikam", "11111111-1111-4111-8111-111111111111", f'ca_bundle = "{own["fabrikam"]}"'
        ),
    )
    env = {"SYNC365_CONFIG": str(config), "SECRET": SECRET}
    env_ca, resource_ca = ca(tmp_path, "environment"), ca(tmp_path, "resource")

    from_file = {account.name: account.ca_bundle for account in load_accounts(env)}
    env["SYNC365_CA_BUNDLE"] = str(env_ca)
    from_env = {account.ca_bundle for account in load_accounts(env)}
    from_resource = {
        account.ca_bundle for account in load_accounts(env, microsoft(ca_bundle=str(resource_ca)))
    }

    assert from_file == own
    assert from_env == {env_ca}
    assert from_resource == {resource_ca}


def test_single_account_keys_come_from_resource_config_then_environment_then_default() -> None:
    env = {**SINGLE_ACCOUNT, "SYNC365_GRAPH_URL": "https://env.example/", "SYNC365_CLOUD": "usgov"}

    (from_env,) = load_accounts(env)
    (from_resource,) = load_accounts(
        env, microsoft(graph_url="https://resource.example", client_secret="resource-secret")
    )

    assert from_env.endpoints.graph_url == "https://env.example"
    assert from_env.endpoints.authority_host == "https://login.microsoftonline.us"
    assert from_env.token_cache_path == Path("data/token_cache.json")
    assert from_resource.endpoints.graph_url == "https://resource.example"
    assert from_resource.credentials.client_secret.reveal() == "resource-secret"
    assert from_resource.endpoints.graph_resource == "https://graph.microsoft.us"


def test_blank_values_leave_the_setting_to_the_next_source(tmp_path: Path) -> None:
    config = accounts_file(tmp_path, "max_workers = 8\n")
    env = {"SYNC365_CONFIG": str(config), "SECRET": SECRET, "SYNC365_MAX_WORKERS": " "}

    (account,) = load_accounts(env, microsoft(max_workers=None, ca_bundle=""))

    assert account.max_workers == 8
    assert account.ca_bundle is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("resource config", "max_workers on the microsoft resource must be a whole number"),
        ("environment", "SYNC365_MAX_WORKERS must be a whole number from 1 to 256, not '0'."),
        ("accounts file", "- max_workers must be a whole number from 1 to 256, not 0."),
    ],
)
def test_a_bad_value_is_named_by_where_it_was_set_and_how_to_fix_it(
    tmp_path: Path, source: str, expected: str
) -> None:
    top = "max_workers = 0\n" if source == "accounts file" else ""
    env = {"SYNC365_CONFIG": str(accounts_file(tmp_path, top)), "SECRET": SECRET}
    if source == "environment":
        env["SYNC365_MAX_WORKERS"] = "0"
    resource = microsoft(max_workers=0) if source == "resource config" else None

    with pytest.raises(ConfigError) as raised:
        load_accounts(env, resource)

    message = str(raised.value)
    assert expected in message
    assert f"Fix them in {tmp_path / 'sync365.toml'} or the environment it names" in message
    assert SECRET not in message


def test_every_problem_of_an_accounts_file_is_named_by_its_key_at_once(tmp_path: Path) -> None:
    config = accounts_file(
        tmp_path,
        "max_worker = 3\n",
        entry("contoso", PARTNER, 'cloud = "mars"\nclientid = "x"\n'),
        '[[accounts]]\nname = "bad name"\ntenant_id = "t"\nclient_id = "not-a-guid"\n'
        'client_secret_file = "/no/such/secret"\n',
    )
    env = {"SYNC365_CONFIG": str(config), "SECRET": SECRET, "SYNC365_LOCK_TIMEOUT": "soon"}

    with pytest.raises(ConfigError) as raised:
        load_accounts(env)

    message = str(raised.value)
    for expected in (
        "max_worker is not a known key (a typo?); the keys are: duckdb_path, max_workers",
        "accounts.0.clientid is not a known key",
        "accounts.0.cloud must be one of global, usgov, china, not 'mars'.",
        "accounts.1.name may hold only letters, digits",
        "accounts.1.client_id must be an application (client) id (a GUID), not 'not-a-guid'.",
        "accounts.1.client_secret_file: cannot read /no/such/secret",
        "SYNC365_LOCK_TIMEOUT must be seconds from 0 to 3600, not 'soon'.",
    ):
        assert expected in message
    assert "is not set" not in message, "a secret that cannot be read is reported once"


def test_with_an_accounts_file_the_single_account_variables_are_not_read(tmp_path: Path) -> None:
    env = {
        "SYNC365_CONFIG": str(accounts_file(tmp_path)),
        "SECRET": SECRET,
        "SYNC365_CLIENT_ID": "not-a-guid",
        "SYNC365_CLOUD": "mars",
    }

    (account,) = load_accounts(env)

    assert (account.name, account.client_id, account.cloud) == ("contoso", CLIENT_ID, "global")
    assert account.token_cache_path == Path("data/token_cache-contoso.json")


def test_resource_config_may_name_the_accounts_file(tmp_path: Path) -> None:
    config = accounts_file(tmp_path)

    (account,) = load_accounts({"SECRET": SECRET}, microsoft(config_file=str(config)))
    with pytest.raises(ConfigError) as raised:
        load_accounts({}, microsoft(config_file=str(tmp_path / "missing.toml")))

    assert account.name == "contoso"
    assert str(raised.value) == (
        f"config_file on the microsoft resource names {tmp_path / 'missing.toml'}, "
        "which does not exist."
    )


def test_the_warehouse_and_webhook_settings_need_no_credentials(tmp_path: Path) -> None:
    env = {"SYNC365_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "SYNC365_LOCK_TIMEOUT": "2.5"}

    settings = load_run_settings(env, ResourceConfig("webhook", {"webhook_url": "https://x/s3"}))

    assert (settings.duckdb_path, settings.lock_timeout_s) == (tmp_path / "w.duckdb", 2.5)
    assert settings.webhook_url is not None
    assert settings.webhook_url.reveal() == "https://x/s3"
    with pytest.raises(ConfigError, match="SYNC365_CLIENT_ID is not set"):
        load_accounts(env)


def test_secrets_never_show_in_a_repr_or_a_dump() -> None:
    env = {**SINGLE_ACCOUNT, "SYNC365_REFRESH_TOKEN": "1.refresh-secret"}
    (account,) = load_accounts(env)
    run = load_run_settings({"SYNC365_WEBHOOK_URL": "https://hooks.example/services/T/B/secret"})

    shown = [repr(account), str(account.model_dump()), account.model_dump_json()]
    shown += [repr(run), run.model_dump_json()]

    for text in shown:
        assert SECRET not in text
        assert "refresh-secret" not in text
        assert "services/T/B/secret" not in text
    assert account.credentials.refresh_token is not None
    assert account.credentials.refresh_token.reveal() == "1.refresh-secret"


@pytest.mark.parametrize(
    ("key", "variable"), [("auto_consent", "SYNC365_AUTO_CONSENT"), ("users", "SYNC365_USERS")]
)
def test_a_switch_is_on_by_default_and_set_per_run_or_per_account(
    tmp_path: Path, key: str, variable: str
) -> None:
    """auto_consent and users (personal data): the file's top level sets every account, an
    entry its own, and the environment and the resource config beat both."""
    fabrikam = "11111111-1111-4111-8111-111111111111"
    config = accounts_file(
        tmp_path,
        f"{key} = false\n",
        entry("contoso", PARTNER),
        entry("fabrikam", fabrikam, f"{key} = true\n"),
    )
    env = {"SYNC365_CONFIG": str(config), "SECRET": SECRET}

    def switched_on(environ: dict[str, str], resource: ResourceConfig | None = None) -> set[str]:
        return {
            account.name for account in load_accounts(environ, resource) if getattr(account, key)
        }

    assert getattr(load_accounts({**SINGLE_ACCOUNT})[0], key) is True
    assert getattr(load_accounts({**SINGLE_ACCOUNT, variable: "false"})[0], key) is False
    assert switched_on(env) == {"fabrikam"}
    assert switched_on({**env, variable: "no"}) == set()
    assert switched_on({**env, variable: "no"}, microsoft(**{key: True})) == {
        "contoso",
        "fabrikam",
    }
    assert getattr(load_run_settings(env), key) is False
    with pytest.raises(ConfigError, match=f"{variable} must be true or false, not 'maybe'"):
        load_accounts({**SINGLE_ACCOUNT, variable: "maybe"})
