"""The redactor: no registered secret and nothing token-shaped survives; ordinary text does."""

from __future__ import annotations

import logging
import string
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync365_pipeline.core.redaction import (
    REDACTED,
    RedactingFilter,
    Redactor,
    redact,
    redact_every_log_record,
    register_secret,
)

SECRET_CHARS = string.ascii_letters + string.digits + "~._-"
secrets = st.text(alphabet=SECRET_CHARS, min_size=8, max_size=64)
any_text = st.text(max_size=200)
# What people read in our messages: words, GUIDs, domains, codes, URLs.
ordinary = st.lists(
    st.one_of(
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=30),
        st.uuids().map(str),
        st.from_regex(r"AADSTS[0-9]{5}", fullmatch=True),
        st.from_regex(r"[a-z]{3,12}\.onmicrosoft\.com", fullmatch=True),
        st.just("https://graph.microsoft.com/v1.0/subscribedSkus"),
    ),
    max_size=12,
).map(" ".join)


@given(secret=secrets, before=any_text, after=any_text)
@settings(max_examples=300)
def test_a_registered_secret_never_survives_wherever_it_stands(secret, before, after):
    redactor = Redactor()
    redactor.register(secret)
    assert secret not in redactor.redact(before + secret + after)


@given(text=any_text)
def test_redaction_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@given(text=ordinary)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_token_shapes_are_removed_even_when_never_registered():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJhYmMifQ.c2lnbmF0dXJl"
    refresh = "0.AXoAbC" + "dEf9" * 20
    text = (
        f"Authorization: Bearer {jwt} body client_secret=Abc8Q~x.y&refresh_token={refresh}"
        f' json {{"access_token": "{jwt}"}} opaque {refresh}'
    )
    redacted = redact(text)
    for secret in (jwt, refresh, "Abc8Q~x.y"):
        assert secret not in redacted
    assert "Authorization: Bearer [redacted]" in redacted
    assert "client_secret=[redacted]" in redacted
    assert redacted.count(REDACTED) == 5


def test_short_values_are_not_registered_so_words_survive():
    redactor = Redactor()
    redactor.register("abc")
    assert redactor.redact("abc abcdef") == "abc abcdef"


def test_non_strings_are_redacted_as_their_text():
    redactor = Redactor()
    redactor.register("registered-secret-value-1")
    assert redactor.redact(ValueError("boom registered-secret-value-1")) == f"boom {REDACTED}"


LOG_SECRET = "log-line-secret-value-0123456789"
TOKEN_SHAPED = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXBhcnQ"


def test_a_log_line_built_from_an_exception_text_comes_out_redacted(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    register_secret(LOG_SECRET)
    redact_every_log_record()
    installed = logging.getLogRecordFactory()
    redact_every_log_record()
    assert logging.getLogRecordFactory() is installed, "a second install wraps nothing twice"
    log = logging.getLogger("sync365_pipeline.tests.redaction")
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(to_stderr)
    caplog.set_level(logging.INFO)
    try:
        try:
            raise RuntimeError(f"the service said client_secret={LOG_SECRET} and {TOKEN_SHAPED}")
        except RuntimeError as exc:
            log.exception("Sync failed: %s", exc)
    finally:
        log.removeHandler(to_stderr)

    stderr = capsys.readouterr().err
    for text in (caplog.text, stderr):
        assert "Sync failed: the service said client_secret=" in text
        assert "RuntimeError" in text, "the exception text is there, redacted"
        assert LOG_SECRET not in text
        assert TOKEN_SHAPED not in text
        assert text.count(REDACTED) >= 4  # message and traceback, both values each


def test_the_filter_never_drops_a_record_nor_breaks_on_bad_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d apples", ("many",), None)
    assert RedactingFilter().filter(record)
    assert (record.msg, record.args) == ("%d apples", ("many",))
