"""Text from the network made safe to store and to show.

Customer names, SKU names and Microsoft's messages come from outside: they may hold terminal
escape sequences (which a terminal obeys), other control characters, or lone surrogates (which
no UTF-8 file, DuckDB included, can store). Each becomes U+FFFD, the replacement character.
"""

from __future__ import annotations

import re

# C0 and C1 control characters and lone surrogates; `keep` may exempt newlines and tabs.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_KEEPING_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def safe_text(text: str) -> str:
    """One line of text that can be stored as UTF-8 and printed without effect on a terminal."""
    return _UNSAFE.sub("\ufffd", text)


def printable(text: str) -> str:
    """Like `safe_text`, keeping newlines and tabs: for multi-line output such as tables."""
    return _UNSAFE_KEEPING_LINES.sub("\ufffd", text)
