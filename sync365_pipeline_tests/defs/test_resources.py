"""The resources hand out clients built from the one settings model: with an accounts file, the
session of each account uses the `max_workers` and CA bundle of every source, by precedence."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from requests.adapters import HTTPAdapter

from sync365_pipeline.defs.resources import MicrosoftCloudResource

PARTNER = "5b7a3c1e-0f4d-4c55-9d1a-2f8e6b0c9a11"
CLIENT_ID = "0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50"
SECRET = "resource-test-secret-value"
GRAPH = "https://graph.microsoft.com/v1.0/organization"


class RecordingAdapter(HTTPAdapter):
    """Answers every request with `{}` and records the `verify` each one was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.verify: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.verify.append(kwargs["verify"])
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response._content_consumed = True
        response.url = request.url or ""
        response.request = request
        return response


@dataclass(frozen=True)
class Built:
    """What an account's client actually uses."""

    max_workers: int
    pool_size: int
    trusted: str  # the CA file its requests are verified with


def built_client(resource: MicrosoftCloudResource) -> Built:
    (account,) = resource.accounts()
    with resource.connect(account) as cloud:
        adapter = cloud.session.get_adapter(GRAPH)
        pool_size = adapter.poolmanager.connection_pool_kw["maxsize"]
        recorder = RecordingAdapter()
        cloud.session.mount("https://", recorder)
        cloud.session.get(GRAPH)
        (verify,) = recorder.verify
        trusted = Path(verify).read_text() if isinstance(verify, str) else ""
    return Built(account.max_workers, pool_size, trusted)


def ca(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}-ca.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{name}-ca\n-----END CERTIFICATE-----\n")
    return path


@pytest.fixture
def accounts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An accounts file with one partner whose entry names its own CA; the environment has no
    other SYNC365_* variable."""
    for name in [name for name in os.environ if name.startswith("SYNC365_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CONTOSO_SECRET", SECRET)
    path = tmp_path / "sync365.toml"
    path.write_text(
        "max_workers = 32\n"
        "[[accounts]]\n"
        'name = "contoso"\n'
        f'tenant_id = "{PARTNER}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        'client_secret_env = "CONTOSO_SECRET"\n'
        f'token_cache = "{tmp_path / "token_cache.json"}"\n'
        f'ca_bundle = "{ca(tmp_path, "entry")}"\n'
    )
    monkeypatch.setenv("SYNC365_CONFIG", str(path))
    return path


@pytest.mark.parametrize(
    ("source", "max_workers"),
    [("accounts file", 32), ("SYNC365_MAX_WORKERS", 64), ("resource config", 48)],
)
def test_accounts_file_mode_honours_max_workers_from_every_source(
    accounts_file: Path, monkeypatch: pytest.MonkeyPatch, source: str, max_workers: int
) -> None:
    if source != "accounts file":
        monkeypatch.setenv("SYNC365_MAX_WORKERS", "64")
    resource = MicrosoftCloudResource(max_workers=48 if source == "resource config" else None)

    built = built_client(resource)

    assert built.max_workers == max_workers, "the tenant fetch's pool"
    assert built.pool_size == max_workers, "the session's connections"


@pytest.mark.parametrize(
    ("source", "trusted"),
    [
        ("accounts file", "entry"),
        ("SYNC365_CA_BUNDLE", "environment"),
        ("resource config", "resource"),
    ],
)
def test_accounts_file_mode_honours_the_ca_bundle_from_every_source(
    accounts_file: Path, monkeypatch: pytest.MonkeyPatch, source: str, trusted: str
) -> None:
    tmp_path = accounts_file.parent
    if source != "accounts file":
        monkeypatch.setenv("SYNC365_CA_BUNDLE", str(ca(tmp_path, "environment")))
    resource_ca = ca(tmp_path, "resource") if source == "resource config" else None
    resource = MicrosoftCloudResource(ca_bundle=str(resource_ca) if resource_ca else None)

    built = built_client(resource)

    assert built.trusted.rstrip().endswith(f"{trusted}-ca\n-----END CERTIFICATE-----")
    others = {"entry", "environment", "resource"} - {trusted}
    assert not [name for name in others if f"\n{name}-ca\n" in built.trusted]


def test_a_secret_set_with_envvar_reaches_the_account_but_no_snapshot_or_storage(
    accounts_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SYNC365_CONFIG")
    monkeypatch.setenv("MY_PARTNER_SECRET", SECRET)
    resource = MicrosoftCloudResource(
        tenant_id=PARTNER, client_id=CLIENT_ID, client_secret=dg.EnvVar("MY_PARTNER_SECRET")
    )

    @dg.asset
    def signed_in(microsoft: MicrosoftCloudResource) -> dg.MaterializeResult:
        (account,) = microsoft.accounts()
        assert account.credentials.client_secret.reveal() == SECRET
        return dg.MaterializeResult(metadata={"account": repr(account)})

    defs = dg.Definitions(assets=[signed_in], resources={"microsoft": resource})
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
        run_config = instance.get_run_by_id(result.run_id).run_config  # type: ignore[union-attr]

    assert result.success
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "MY_PARTNER_SECRET" in snapshot, "the snapshot names the variable"
    assert SECRET not in snapshot
    assert SECRET not in json.dumps(run_config)
    stored = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    assert SECRET.encode() not in stored
