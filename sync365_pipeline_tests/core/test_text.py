"""Text from the network, made safe to store and print."""

from __future__ import annotations

from sync365_pipeline.core.text import printable, safe_text


def test_text_from_the_network_is_made_safe_to_store_and_print():
    hostile = "Evil\x1b[2J\x1b]0;pwned\x07\x00\ud800 Corp\n\tnext"
    assert (
        safe_text(hostile) == "Evil\ufffd[2J\ufffd]0;pwned\ufffd\ufffd\ufffd Corp\ufffd\ufffdnext"
    )
    assert printable(hostile) == "Evil\ufffd[2J\ufffd]0;pwned\ufffd\ufffd\ufffd Corp\n\tnext"
    safe_text(hostile).encode("utf-8")
