"""The HTML report opened as a person opens it: in a browser (headless Chromium, Debian's
`chromium`, which `make test` installs when it is missing and we are root). It loads from a
local file with nothing fetched, lays out every customer and its trend chart, and paints a page
that is not blank."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from sync365_pipeline.licensing.report import build_report, render
from sync365_pipeline_tests.history import DAY1, History

WIDTH, HEIGHT = 1280, 2000


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "no chromium here (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"{reason}; CI=true, where the report must be opened, not skipped")
        pytest.skip(reason)
    return found


def headless(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run on `page`, offline: its own profile, no sandbox (root)."""
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={page.parent / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (enough to tell a blank page)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    data, offset = b"", 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        if kind == b"IDAT":
            data += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(data)


@pytest.mark.e2e
def test_the_html_report_opens_in_chromium_with_every_customer_and_chart(
    history: History, tmp_path: Path
) -> None:
    browser = chromium()
    report = build_report(history.warehouse.readable(), DAY1)
    page = tmp_path / "report.html"
    page.write_text(render(report, "html"), encoding="utf-8")

    dom = headless(browser, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    for customer in report.customers:
        assert customer.customer in dom.stdout
    charts = sum(1 for customer in report.customers if customer.trend)
    assert dom.stdout.count("<svg") == charts > 0

    shot = tmp_path / "report.png"
    painted = headless(browser, page, f"--screenshot={shot}")
    assert painted.returncode == 0, painted.stderr
    width, height, scanlines = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(set(scanlines)) > 16, "the page painted blank"
