# make run      set up .venv and serve the API on http://127.0.0.1:8000
# make test     set up .venv and run the whole test suite
# make install  set up .venv alone
# make bench    set up .venv and compare the WSGI and ASGI servers under load

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/damba serve

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/compare_servers.py
