"""One redaction function for every message the pipeline stores, logs or prints.

Two nets, so that a secret is caught even where nobody thought of it:
- every secret the process holds (client secrets, refresh and access tokens, the webhook URL) is
  registered here once, when it is read or received, and its every occurrence is replaced;
- anything token-shaped (JWTs, bearer credentials, `client_secret=`/`refresh_token=`-style
  fields, long opaque runs of token characters) is replaced even when it was never registered,
  e.g. a token that a hostile service echoes back in an error.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would blank out ordinary words

_CREDENTIAL_NAMES = r"(?:client_secret|refresh_token|access_token|id_token|assertion|password)"
# Each shape keeps its `keep` group (the label in front of the credential) and loses the rest.
_TOKEN_SHAPES = re.compile(
    "|".join(
        [
            # A JWT (access and id tokens): three base64url parts, the first two JSON objects.
            r"(?P<jwt>eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)",
            # An Authorization header value.
            r"(?i:(?P<scheme>\b(?:bearer|basic)\s+)[^\s\"',;&]{8,})",
            # A credential in a form body or query (`name=value`) or in JSON (`"name": "value"`).
            rf"(?i:(?P<field>\b{_CREDENTIAL_NAMES}=)[^\s&\"',;]+)",
            rf"(?i:(?P<json>\b{_CREDENTIAL_NAMES}[\"']?\s*:\s*[\"'])[^\"']+)",
            # A long opaque run of token characters mixing upper and lower case and digits
            # (refresh tokens, client secrets, signatures); GUIDs, domains, words and URL paths
            # do not mix all three or are shorter.
            r"(?<![A-Za-z0-9._~-])(?=[A-Za-z0-9._~-]*[0-9])(?=[A-Za-z0-9._~-]*[a-z])"
            r"(?=[A-Za-z0-9._~-]*[A-Z])[A-Za-z0-9._~-]{40,}",
        ]
    )
)


def _keep_label(match: re.Match[str]) -> str:
    label = match.group("scheme") or match.group("field") or match.group("json") or ""
    return label + REDACTED


class Redactor:
    """The secrets one process holds, and the function that removes them from text.

    A sync registers an access token per tenant, so thousands of secrets: they are indexed by
    their first `MIN_SECRET_LENGTH` characters and found in one scan of the text, instead of one
    alternation regex that would be recompiled (in time that grows with every secret) whenever a
    secret arrives between two messages.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_prefix: dict[str, list[str]] = {}

    def register(self, value: str | None) -> None:
        """Remember a secret so that `redact` removes it wherever it appears."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            bucket = self._by_prefix.setdefault(value[:MIN_SECRET_LENGTH], [])
            if value not in bucket:
                bucket.append(value)
                bucket.sort(key=len, reverse=True)  # a secret containing another goes whole

    def redact(self, text: object) -> str:
        """`text` as a string with every registered secret and token-shaped run replaced."""
        result = text if isinstance(text, str) else str(text)
        if self._by_prefix:
            result = self._without_secrets(result)
        return _TOKEN_SHAPES.sub(_keep_label, result)

    def _without_secrets(self, text: str) -> str:
        parts: list[str] = []
        start = position = 0
        last = len(text) - MIN_SECRET_LENGTH
        with self._lock:
            while position <= last:
                bucket = self._by_prefix.get(text[position : position + MIN_SECRET_LENGTH])
                found = next((s for s in bucket or () if text.startswith(s, position)), None)
                if found is None:
                    position += 1
                    continue
                parts += [text[start:position], REDACTED]
                start = position = position + len(found)
        return "".join(parts) + text[start:] if parts else text


# The process's one redactor: `Secret` values and tokens register here as they are read.
_PROCESS = Redactor()
register_secret = _PROCESS.register
redact = _PROCESS.redact


class RedactingFilter(logging.Filter):
    """Replaces a log record's message (its arguments merged in) and exception text with their
    redaction, so that a handler only ever formats redacted text. Never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # arguments that do not fit the message: the handler reports it
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _RedactingRecordFactory:
    """The log record factory that was in place, its records passed through `RedactingFilter`."""

    def __init__(self, make_record: Callable[..., logging.LogRecord]) -> None:
        self._make_record = make_record
        self._filter = RedactingFilter()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._make_record(*args, **kwargs)
        self._filter.filter(record)
        return record


def redact_every_log_record() -> None:
    """Pass every log record this process makes through `RedactingFilter`; idempotent.

    A filter on a logger sees only the records logged at that very logger, and Dagster builds a
    log manager (and its handlers) per run and step, out of our reach. The record factory is the
    one place every record passes: our `sync365_pipeline.*` loggers, `dagster`, a step's
    `context.log` (its message is redacted before Dagster stores it in the event log), and the
    console logger, which logs Dagster's final line (step errors included) as a new record.
    """
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(current))
