# kassebro: `make run` (Airflow UI + demo vendors + ledger sandbox) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run demo test test-integration test-soak bench soak lint format lock clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create the virtualenv and install everything pinned

run: setup  ## Airflow with its UI on :8080, the demo vendors and the five ledger sandboxes; Ctrl-C stops
	$(BIN)/kassebro run

demo: setup  ## post every demo vendor's days without the UI and print a table
	$(BIN)/kassebro demo run

test: setup  ## lint and the whole suite except the PostgreSQL tier
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-integration: setup  ## the pipeline with PostgreSQL as Airflow's metadata DB and as the journal
	$(BIN)/python -m pytest -q -m integration tests/integration

test-soak: setup  ## the short fault soak (about 100 runs, a few minutes); .ci/run runs it
	$(BIN)/python -m pytest -q -m soak tests/unit/test_soak.py

soak: setup  ## the fault soak: 1,000 runs against the five sandboxes; figures go to docs/reliability.md
	$(BIN)/python -m soak.run --runs 1000 --seconds 3600 --parallel 3 --report docs/reliability.md

bench: setup  ## benchmarks; figures go to docs/benchmarks.md
	$(BIN)/python -m benchmarks.run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:  ## re-pin requirements.txt from the current virtualenv
	$(BIN)/pip freeze --exclude-editable | grep -v -i -E "^(pytest|pytest-timeout|hypothesis|ruff|iniconfig|pluggy)==" > requirements.lock.tmp
	mv requirements.lock.tmp requirements.txt

clean:
	rm -rf .kassebro .bench
