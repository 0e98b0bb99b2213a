# Leadflow: `make dev` runs the whole stack, `make test` runs every check.
# Both create or refresh the virtualenv themselves.

PYTHON ?= python3
VENV   ?= .venv
# Tests run on two workers (each with its own Temporal dev server and PostgreSQL): most
# tests wait on timers, processes and browsers, so two share the 2 cores well. A worker
# that runs out of tests takes some of the other's (worksteal), so one long file at the
# end does not leave a core idle; no fixture is shared wider than a worker's session.
TEST_WORKERS ?= 2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: dev test lint check-python venv chromium bench clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Leadflow needs Python 3.11 or newer (set PYTHON=...)")'

$(STAMP): pyproject.toml | check-python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

dev: venv
	$(BIN)/leadflow dev

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "browser tests need Chromium: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; }

test: lint chromium
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=15; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; \
	  exit $$status

# Each bench prints a report and, as its last line, one JSON object.
bench: venv
	$(BIN)/python bench/speed_to_lead.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/open_lifecycles.py
	$(BIN)/python bench/event_latency.py
	$(BIN)/python bench/crm_backends.py
	$(BIN)/python bench/import_load.py
	$(BIN)/python bench/kpis.py

clean:
	rm -rf $(VENV) .leadflow .mypy_cache .ruff_cache .pytest_cache
