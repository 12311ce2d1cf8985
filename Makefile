# make run      set up .venv and serve the API on http://127.0.0.1:8000
# make test     set up .venv and run the whole test suite
# make install  set up .venv alone
# make bench    set up .venv and compare the WSGI and ASGI servers under load
# make load     headless Locust run against LOAD_HOST (start `make run PROFILE=load` first)
# make load-ui  the Locust web UI on http://127.0.0.1:8089, aimed at LOAD_HOST
# make demo     serve, load and report in one go, then stop everything it started

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The load run's target and size; override on the command line, for example
# `make load USERS=500 RUN_TIME=5m`.
LOAD_HOST ?= http://127.0.0.1:8000
USERS ?= 200
SPAWN_RATE ?= 20
RUN_TIME ?= 1m
# Evaluated once, so every line of a recipe names the same folder.
NOW := $(shell date -u +%Y%m%d-%H%M%S)
LOAD_OUT ?= reports-out/locust-$(NOW)
# `make run PROFILE=load` serves with the limits a load run needs.
PROFILE ?= default

.PHONY: install run test bench load load-ui demo

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/damba serve --profile $(PROFILE)

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/compare_servers.py

load: install
	mkdir -p $(LOAD_OUT)
	$(BIN)/locust -f locustfile.py --headless --host $(LOAD_HOST) \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(RUN_TIME) \
		--stop-timeout 30 --csv $(LOAD_OUT)/locust --only-summary
	@echo "Locust's CSV files are in $(LOAD_OUT); add them to the report with"
	@echo "  damba report --locust-csv $(LOAD_OUT)/locust"

load-ui: install
	@echo "Locust web UI on http://127.0.0.1:8089, aimed at $(LOAD_HOST)"
	$(BIN)/locust -f locustfile.py --host $(LOAD_HOST) \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--web-host 127.0.0.1 --web-port 8089 --stop-timeout 30

demo: install
	$(BIN)/python scripts/demo.py --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(RUN_TIME)
