# The two commands a newcomer runs: `make run` and `make test`.
SHELL := /bin/bash
# The first interpreter that runs and is 3.11 or newer (a pyenv shim may exist and still not run).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test bench lint typecheck install clean promtool

# Development secrets for `make run` and `make demo` when none are set, so the demo can sign its
# deliveries in the first minute. `hookyard preflight` says loudly when these are in use.
run demo: export GITHUB_WEBHOOK_SECRET ?= dev-github-secret
run demo: export SLACK_SIGNING_SECRET ?= dev-slack-secret
run demo: export LINEAR_WEBHOOK_SECRET ?= dev-linear-secret
run demo: export HOOKYARD_INGEST_TOKEN ?= dev-ingest-token
run: export HOOKYARD_LOG_FORMAT ?= console

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Hookyard needs Python 3.11 or newer on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

## make run: install, migrate (creating the database), and run web + worker + scheduler from the Procfile.
# preflight fails on services it cannot log in to, and only warns about a database that is missing
# or has migrations pending: migrate, next, creates and migrates it.
run: $(STAMP)
	@$(BIN)/hookyard preflight
	@$(BIN)/hookyard migrate
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

## make test: the whole suite against real PostgreSQL and RabbitMQ, each run in its own database and vhost.
test: $(STAMP) promtool
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

# promtool checks and unit-tests ops/prometheus/alerts.yml (tests/unit/test_alert_rules.py). Debian
# ships it only in the prometheus package, server included; no smaller package has it.
promtool:
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq --no-install-recommends prometheus \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; }; } >/dev/null; } \
		|| echo "the alert-rule tests need promtool: sudo apt-get install --no-install-recommends prometheus" >&2

## make demo: post signed sample deliveries of every source to the fleet `make run` started.
demo: $(STAMP)
	@$(BIN)/hookyard demo

## make bench: every scenario of `hookyard bench` (about 30 minutes), appended to bench/results/.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } \
		|| { echo "hookyard bench needs wrk: sudo apt-get install wrk" >&2; exit 1; }
	$(BIN)/hookyard bench all $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
