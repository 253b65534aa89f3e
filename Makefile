# achieveit-sync: every target sets up what it needs (virtual environments, pinned installs).
# Python 3.13 (the Lambda runtime) is found by scripts/find-python.sh; override with PYTHON=.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV := .venv
TOOLS_VENV := .tools-venv
SCAN_VENV := .scan-venv
PY := $(VENV)/bin/python
PYTHON_313 = $(shell scripts/find-python.sh)
PYTEST_ARGS ?=

.PHONY: help install tools scan-tools lint format types unit integration test template-check scan build lock clean sandbox demo soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt shared/requirements.txt pyproject.toml
	@test -n "$(PYTHON_313)" || { echo "Python 3.13 not found (see scripts/find-python.sh)"; exit 1; }
	$(PYTHON_313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(TOOLS_VENV)/.installed: requirements-tools.txt
	@test -n "$(PYTHON_313)" || { echo "Python 3.13 not found (see scripts/find-python.sh)"; exit 1; }
	$(PYTHON_313) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt
	@test -n "$(PYTHON_313)" || { echo "Python 3.13 not found (see scripts/find-python.sh)"; exit 1; }
	$(PYTHON_313) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	@touch $@

install: $(VENV)/.installed ## create .venv with the pinned development dependencies

tools: $(TOOLS_VENV)/.installed ## create .tools-venv with aws-sam-cli and cfn-lint

scan-tools: $(SCAN_VENV)/.installed ## create .scan-venv with checkov (it pins its own boto3 too)

lint: install ## ruff: lint and formatting
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

types: install ## mypy (strict) on the package and the sandbox
	$(VENV)/bin/mypy

template-check: tools ## sam validate --lint and cfn-lint on template.yaml (offline)
	$(TOOLS_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(TOOLS_VENV)/bin/cfn-lint template.yaml

# Offline: --skip-download keeps checkov from fetching guidelines. Every finding is fixed or
# skipped in template.yaml (Metadata: checkov: skip) with a one-line reason; any new finding
# fails the build.
scan: scan-tools ## checkov over template.yaml (CloudFormation and SAM checks)
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

unit: install ## unit tests only (no sockets)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: install ## integration tests (moto and the sandbox on 127.0.0.1)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test: lint types template-check scan build ## everything CI runs: lint, types, template checks, checkov, sam build, all tests
	$(PY) -m pytest $(PYTEST_ARGS)

build: tools ## sam build (the layer from shared/, the functions); needs the package registry
	PATH="$(dir $(PYTHON_313)):$$PATH" $(TOOLS_VENV)/bin/sam build --template template.yaml

soak: install ## the stress suites at full size (200 files up to 100k rows); figures in .stress/
	rm -f .stress/figures.jsonl
	STRESS_SCALE=soak $(PY) -m pytest tests/stress -q --timeout 3600 $(PYTEST_ARGS)

demo: install ## the whole system on local stand-ins, end to end (KEEP=1 keeps it running)
	$(PY) -m achieveit_sandbox.demo $(if $(KEEP),--keep) $(if $(OUTPUT),--output $(OUTPUT))

sandbox: install ## run the AchieveIt sandbox in the foreground
	$(VENV)/bin/achieveit-sync sandbox

lock: ## re-resolve and re-pin every requirements file (needs the package registry)
	scripts/lock.sh

clean: ## remove virtual environments, caches and build output
	rm -rf $(VENV) $(TOOLS_VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
