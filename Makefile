# antirelou: everyday commands. `make run` and `make test` are all a newcomer needs.
VENV ?= .venv
BIN := $(VENV)/bin
# The distribution's Python when it is 3.11 or later and can make a virtualenv (Debian:
# python3-venv), else the first python3 on the PATH. Debian builds its Python with PGO and
# LTO; a Python built without --enable-optimizations (pyenv's default) replays a raid 4-9 %
# slower (docs/raids.md). `make install PYTHON=...` picks another.
SYSTEM_PYTHON := $(shell /usr/bin/python3 -c 'import ensurepip, sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3)
PYTHON ?= $(or $(SYSTEM_PYTHON),python3)

.PHONY: install run test test-postgres lint format bench bench-load bench-forged bench-raids bench-dashboard bench-evidence bench-sends screenshots clean

$(BIN)/antirelou: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/antirelou

## Run the service with its built-in defaults: SQLite in ./var, a sandbox line, http://127.0.0.1:8000
run: install
	$(BIN)/antirelou serve

## Run the test suite (SQLite; PostgreSQL too when TEST_POSTGRES_URL is set)
test: install
	$(BIN)/pytest

## Start a throwaway PostgreSQL (Debian's postgresql package) and run the suite on both databases
test-postgres: install
	TEST_POSTGRES_URL=$$(scripts/start-postgres.sh) TEST_REQUIRE_POSTGRES=1 $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

## The core webhook benchmark (signed Twilio webhooks against `antirelou serve`)
bench: install
	$(BIN)/python benchmarks/webhook.py

## Rising rates of signed webhooks against a minimal endpoint, and a forged flood (issue 7)
bench-load: install
	$(BIN)/python benchmarks/load.py

## CPU per forged webhook, every provider, with and without the signature gate (in-process)
bench-forged: install
	$(BIN)/python benchmarks/forged.py

## Every scenario replayed under every_text, once_per_sender and antirelou
bench-raids: install
	$(BIN)/python benchmarks/raids.py

bench-dashboard: install
	$(BIN)/python benchmarks/dashboard.py

bench-evidence: install
	$(BIN)/python benchmarks/evidence.py

## One worker's replies per second when the provider takes 250 ms to answer
bench-sends: install
	$(BIN)/python benchmarks/sends.py

## Re-make the README's screenshots (needs Debian's chromium)
screenshots: install
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
