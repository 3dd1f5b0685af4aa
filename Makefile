# Every target creates .venv and installs the project on first use; later runs skip that
# until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
DEV_PORT ?= 3000
SOAK_KILLS ?= 60

.PHONY: help install postgres-server chromium lint format test soak demo dev bench dictionary clean

help:
	@echo "make demo   - run the pipeline end to end against the built-in Microsoft cloud simulator"
	@echo "make dev    - the Dagster UI on 127.0.0.1:$(DEV_PORT) over the simulator (Ctrl-C stops it)"
	@echo "make test   - lint, then run every test"
	@echo "make soak   - the kill loop with $(SOAK_KILLS) kills (make test runs 14)"
	@echo "make lint   - ruff check, ruff format --check, and the import layers (lint-imports)"
	@echo "make format - ruff format + ruff check --fix"
	@echo "make bench  - run the benchmarks under bench/"
	@echo "make dictionary - regenerate docs/data-dictionary.md from the warehouse's comments"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,analyst]'
	touch $(STAMP)

install: $(STAMP)

# The Postgres deployment's tests start a server of their own from Debian's `postgresql`
# package (sync365_pipeline_tests/deployment/): installed here when it is missing and we are
# root; otherwise those tests skip, or fail under CI=true.
POSTGRES_INITDB ?= /usr/lib/postgresql/*/bin/initdb
postgres-server:
	@if ls $(POSTGRES_INITDB) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	else \
		echo "No PostgreSQL server here (Debian: apt-get install postgresql):" \
			"the Postgres deployment tests will skip, or fail under CI=true."; \
	fi

# The HTML report's test opens it in headless Chromium (Debian's `chromium`): installed here when
# it is missing and we are root; otherwise that test skips, or fails under CI=true.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "No Chromium here (Debian: apt-get install chromium):" \
			"the HTML report's browser test will skip, or fail under CI=true."; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint postgres-server chromium
	$(BIN)/pytest

# SIGKILLs at seeded moments of real syncs, many more than make test's (test_kill_loop.py).
soak: $(STAMP)
	KILL_LOOP_KILLS=$(SOAK_KILLS) $(BIN)/pytest -n 0 sync365_pipeline_tests/commands/test_kill_loop.py

# Its own simulator, DAGSTER_HOME, warehouse and token cache under data/demo/, fresh each time.
demo: $(STAMP)
	$(BIN)/sync365 demo

# Its own DAGSTER_HOME, warehouse and token cache under data/dev/ (history kept between sessions).
dev: $(STAMP)
	$(BIN)/sync365 dev --port $(DEV_PORT)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The tables', views' and columns' comments (sync365_pipeline/warehouse/comments.py), as a
# document; a test fails while it differs from what the schema says.
dictionary: $(STAMP)
	$(BIN)/python -m sync365_pipeline.warehouse.dictionary docs/data-dictionary.md

clean:
	rm -rf $(VENV) data/*.duckdb data/*.wal data/*.json data/*.pem data/dagster_home data/demo data/dev
