# The two commands: `make run` (the whole stack on one port) and `make test` (all tests).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= $(abspath ../shared/data)
WEIGHTS_DIR ?= weights
REQUIREMENTS := constraints.txt requirements-dev.txt services/common/requirements.txt \
	services/classifier/requirements.txt services/detector/requirements.txt \
	services/web/requirements.txt

.PHONY: run test test-fast lint format weights venv system-deps clean help lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip check
	touch $@

venv: $(VENV)/.installed  ## create the virtual environment with every pinned dependency

system-deps:  ## install nginx, chromium, docker.io when missing (apt)
	scripts/install-system-deps.sh

weights: venv  ## official weights when online; loudly marked stand-ins otherwise
	$(PY) -m services.fetch_weights --dest $(WEIGHTS_DIR) --allow-standin \
		$(if $(wildcard $(SHARED_DATA)/darknet),--darknet-dir $(SHARED_DATA)/darknet)

run: venv weights  ## the whole stack behind nginx on one port (STACK_PORT, default 8080)
	scripts/install-system-deps.sh nginx
	WEIGHTS_DIR=$(abspath $(WEIGHTS_DIR)) $(PY) -m scripts.run_stack

test: venv system-deps  ## every test (what CI runs)
	$(PY) -m pytest -q

test-fast: venv  ## the unit tests only (no real servers)
	$(PY) -m pytest -q -m "not slow and not containers"

lint: venv  ## ruff lint + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv  ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:  ## remove the venv, generated weights and test output
	rm -rf $(VENV) $(WEIGHTS_DIR) test-artifacts results .pytest_cache .ruff_cache

lock: venv  ## re-pin constraints.txt from the current virtual environment
	(echo "# Every package of the development environment, transitive ones included, pinned."; \
	 echo "# Regenerate with \`make lock\` after changing a requirements file."; \
	 $(PY) -m pip freeze --exclude-editable) > constraints.txt
