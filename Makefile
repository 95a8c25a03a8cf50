# The two commands a newcomer runs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.12 || command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Hookyard needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

## make run: install, migrate (creating the database), and run web + worker + scheduler from the Procfile.
run: $(STAMP)
	@$(BIN)/hookyard preflight
	@$(BIN)/hookyard migrate
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

## make test: the whole suite against real PostgreSQL and RabbitMQ, each run in its own database and vhost.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
