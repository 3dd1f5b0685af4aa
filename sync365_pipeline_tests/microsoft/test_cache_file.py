"""The token cache file (0600, atomic, corrupt files named but never shown) and token facts."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time

import msal
import pytest

from sync365_pipeline.core.settings import Secret
from sync365_pipeline.microsoft.auth import (
    CUSTOMER_TOKENS_SECTION,
    AccessToken,
    CustomerTokens,
    TokenCacheFile,
    TokenFacts,
)
from sync365_pipeline.microsoft.errors import MalformedResponse, TokenCacheCorrupt


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cache_with_state(marker: str) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    cache.deserialize(json.dumps({"AppMetadata": {marker: {"client_id": marker}}}))
    return cache


def test_missing_file_is_an_empty_cache(tmp_path):
    cache = TokenCacheFile(tmp_path / "none.json").load()
    assert json.loads(cache.serialize()) == {}


def test_save_is_0600_and_replaces_a_0644_file(tmp_path):
    path = tmp_path / "data" / "token_cache.json"
    path.parent.mkdir()
    path.write_text("{}")
    os.chmod(path, 0o644)
    cache_file = TokenCacheFile(path)
    cache_file.load()
    assert mode(path) == 0o600  # fixed on load, before anything is written
    os.chmod(path, 0o644)
    cache_file.save(cache_with_state("one"))
    assert mode(path) == 0o600
    assert "one" in json.loads(path.read_text())["AppMetadata"]
    assert [p.name for p in path.parent.iterdir()] == ["token_cache.json"]  # no temp files left


def test_concurrent_saves_leave_one_whole_file(tmp_path):
    cache_file = TokenCacheFile(tmp_path / "cache.json")
    threads = [
        threading.Thread(target=cache_file.save, args=(cache_with_state(f"m{i}"),))
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reloaded = json.loads(cache_file.path.read_text())
    assert len(reloaded["AppMetadata"]) == 1
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    "content",
    [
        b"not json SECRETVALUE",
        b'["SECRETVALUE"]',
        b'{"RefreshToken": "SECRETVALUE"}',
        b"\xff\xfe SECRETVALUE",
    ],
)
def test_corrupt_cache_names_the_file_never_its_content(tmp_path, content):
    path = tmp_path / "token_cache.json"
    path.write_bytes(content)
    with pytest.raises(TokenCacheCorrupt) as caught:
        TokenCacheFile(path).load()
    message = str(caught.value)
    assert str(path) in message
    assert "SECRETVALUE" not in message
    assert "sync365 consent" in caught.value.remedy
    # The JSON error (which quotes content) is not chained into tracebacks.
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_token_facts_from_a_partner_center_token():
    token = jwt(
        {
            "aud": "https://api.partnercenter.microsoft.com",
            "tid": "df845f1a-7b35-40a2-ba78-6481de91f8ae",
            "exp": 1549092452,
            "amr": ["pwd", "mfa"],
            "oid": "4988e250-5aee-482a-9136-6d269cb755c0",
            "scp": "user_impersonation",
            "unique_name": "Adminagent.csp@testtestpartner.onmicrosoft.com",
        }
    )
    facts = TokenFacts.from_jwt(token)
    assert facts.mfa
    assert facts.account == "Adminagent.csp@testtestpartner.onmicrosoft.com"
    assert facts.scopes == ("user_impersonation",)
    assert facts.expires_at.year == 2019
    assert token not in repr(AccessToken(Secret(token), facts))


@pytest.mark.parametrize("token", ["opaque-token", "a.!!!.c", jwt({"aud": "x"})])
def test_unreadable_token_is_malformed_without_showing_it(token):
    with pytest.raises(MalformedResponse) as caught:
        TokenFacts.from_jwt(token)
    assert token not in str(caught.value)


def customer_tokens(tenant: str, expires_on: float) -> dict[str, dict[str, object]]:
    """A customer app's MSAL state: its access token, account and rotated refresh token."""
    return {
        "AccessToken": {
            f"at-{tenant}": {
                "credential_type": "AccessToken",
                "realm": tenant,
                "secret": f"access-token-of-{tenant}",
                "expires_on": str(int(expires_on)),
            }
        },
        "Account": {f"account-{tenant}": {"realm": tenant, "home_account_id": "uid.utid"}},
        "RefreshToken": {f"rt-{tenant}": {"secret": f"rotated-refresh-token-{tenant}"}},
    }


def test_customers_tokens_with_time_left_are_kept_apart_from_the_partners(tmp_path):
    now = time.time()
    kept = CustomerTokens()
    for tenant, expires_on in (("fresh", now + 3000), ("expiring", now + 120)):
        app_cache = msal.SerializableTokenCache()
        app_cache.deserialize(json.dumps(customer_tokens(tenant, expires_on)))
        app_cache.has_state_changed = True  # as after a token request
        kept.keep(tenant, app_cache)
    cache_file = TokenCacheFile(tmp_path / "cache.json")
    cache_file.save(cache_with_state("partner"), kept)

    state = json.loads(cache_file.path.read_text())
    assert set(state[CUSTOMER_TOKENS_SECTION]) == {"fresh"}, "MSAL would not use the other"
    assert "rotated-refresh-token-fresh" not in cache_file.path.read_text()
    partner, customers = cache_file.load_with_customers()
    assert CUSTOMER_TOKENS_SECTION not in json.loads(partner.serialize())
    restored = json.loads(customers.cache_for("FRESH").serialize())
    assert restored["AccessToken"]["at-fresh"]["secret"] == "access-token-of-fresh"
    assert json.loads(customers.cache_for("expiring").serialize()) == {}


def test_a_customer_section_of_the_wrong_shape_is_corrupt(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({CUSTOMER_TOKENS_SECTION: {"t": {"RefreshToken": {}}}}))
    with pytest.raises(TokenCacheCorrupt):
        TokenCacheFile(path).load()
