"""Fixtures for warehouse tests: a fresh, migrated DuckDB file per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync365_pipeline.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "data" / "sync365.duckdb", lock_timeout_s=5.0)
    store.migrate()
    return store
