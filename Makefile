# kassebro: `make run` (Airflow UI + demo vendors + ledger sandbox) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup chromium run run-distributed demo test test-browser test-integration test-soak bench bench-night soak lint format lock clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) chromium  ## create the virtualenv and install everything pinned, and Chromium

# Debian's Chromium for the browser tests (Playwright drives it; its own browser downloads are never used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "make setup: Chromium is missing and installing it needs root: run 'apt-get install -y chromium' as root, or install sudo" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "make setup: Chromium is missing and there is no apt-get: install Chromium as /usr/bin/chromium (or set KASSEBRO_CHROMIUM)" >&2; exit 1; }; \
	  echo "make setup: installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

run: setup  ## Airflow with its UI on :8080, the demo vendors and the five ledger sandboxes; Ctrl-C stops
	$(BIN)/kassebro run

# docker-compose's topology natively: this machine's PostgreSQL (metadata DB, journal, Celery results)
# and Redis (broker); api-server, scheduler, dag-processor, triggerer and two Celery workers as
# processes of their own (docs/operations.md, "Distributed (Celery)"). KASSEBRO_PG and
# KASSEBRO_CELERY_BROKER point elsewhere; `.venv/bin/kassebro run-distributed --help` for the rest.
run-distributed: setup  ## the demo on the CeleryExecutor with two workers (PostgreSQL, Redis); Ctrl-C stops
	$(BIN)/kassebro run-distributed

demo: setup  ## post every demo vendor's days without the UI and print a table
	$(BIN)/kassebro demo run

# one pytest process per core (pytest-xdist), each test file whole in one of them: a file's tests
# share their fixtures (sandboxes, an Airflow DB), and each process has its own session home
test: setup  ## lint and the whole suite except the PostgreSQL tier
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --dist loadfile

test-browser: setup  ## the morning view in headless Chromium against Airflow's API server and the sandboxes (~1.5 min)
	$(BIN)/python -m pytest -q -m browser tests/browser

test-integration: setup  ## the pipeline with PostgreSQL as Airflow's metadata DB and as the journal
	$(BIN)/python -m pytest -q -m integration tests/integration

test-soak: setup  ## the short fault soak (about 100 runs) and 200 random days of the booking properties; .ci/run runs it
	$(BIN)/python -m pytest -q -m soak tests/unit/test_soak.py tests/unit/test_booking_properties.py

soak: setup  ## the fault soak: 1,000 runs against the five sandboxes; figures go to docs/reliability.md
	$(BIN)/python -m soak.run --runs 1000 --seconds 3600 --parallel 3 --report docs/reliability.md

bench: setup  ## benchmarks; figures go to docs/benchmarks.md
	$(BIN)/python -m benchmarks.run

# a night of 100, 300 and 1,000 generated shops on the LocalExecutor and on Celery with two workers,
# each against Airflow's floor (DAGs of the same shape doing nothing); long: about an hour per 1,000
bench-night: setup  ## the night window for N shops; figures go to docs/benchmarks.md
	$(BIN)/python -m benchmarks.night $(if $(VENDORS),--vendors $(VENDORS)) $(if $(EXECUTORS),--executors $(EXECUTORS)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY))

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:  ## re-pin requirements.txt from the current virtualenv
	$(BIN)/pip freeze --exclude-editable | grep -v -i -E "^(pytest|pytest-timeout|pytest-xdist|execnet|hypothesis|ruff|iniconfig|pluggy|playwright)==" > requirements.lock.tmp
	mv requirements.lock.tmp requirements.txt

clean:
	rm -rf .kassebro .kassebro-dist .bench
