# meshstack — one entry point for tests and deployments. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
CLUSTER ?= meshstack
# Local state inside the repository unless the caller chose a backend.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
# The local backend encrypts secrets with a passphrase; this one is for laptops only.
export PULUMI_CONFIG_PASSPHRASE ?= meshstack-local
# The pinned charts, laid out as published (`<dir>/<chart>/Chart.yaml`), for the chart contract
# suite. A checkout beside `shared/charts` uses that folder; elsewhere `make charts` pulls the
# same versions from the chart repositories. Unset (no folder), the suite skips with its reason.
export MESHSTACK_CHARTS_DIR ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/charts)))

.PHONY: help venv lint test up preview down cluster stack bench contract clean

help:
	@echo "make test     - install into .venv, run ruff, mypy and pytest (no cluster needed)"
	@echo "make up       - stack '$(STACK)' with local state, then pulumi up; the kind cluster '$(CLUSTER)'"
	@echo "                is created first only for a stack pinned to context kind-$(CLUSTER) (dev)"
	@echo "make preview  - pulumi preview for stack '$(STACK)'"
	@echo "make down     - pulumi destroy for stack '$(STACK)', keeping its protected trust anchor"
	@echo "make lint     - ruff and mypy only"
	@echo "make bench    - write bench/results.md"
	@echo "make contract - the chart suites alone (make test runs them too when the charts are at hand)"
	@echo "make charts   - pull every pinned chart into CHARTS_OUT (default .charts) with helm"

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

venv: $(BIN)/activate

# pyproject's mypy `exclude` keeps the type check `pulumi up` runs to the program, so the tests,
# the policy pack and the bench are named file by file: mypy checks what its command line names.
TYPED_EXTRAS = $(shell find tests policy bench -name '*.py' -not -path 'bench/.work/*' | sort)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy __main__.py components $(TYPED_EXTRAS)
	$(BIN)/mypy examples/consumer/__main__.py

test: lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/run.py

# The chart suites alone, contract and wiring (make test runs them too when MESHSTACK_CHARTS_DIR is set).
contract: venv
	$(BIN)/pytest -m contract

# The kind cluster belongs to the stacks that deploy to it: those whose Pulumi.<stack>.yaml sets
# kubeContext to kind-$(CLUSTER) (dev). For any other stack make never runs kind, so it neither
# creates a cluster nor switches the current context; the stack deploys to the context it names.
STACK_CONTEXT = $(shell awk '$$1 == "meshstack:kubeContext:" { gsub(/["\047]/, "", $$2); print $$2 }' Pulumi.$(STACK).yaml 2>/dev/null)
KIND_CLUSTER = $(if $(filter kind-$(CLUSTER),$(STACK_CONTEXT)),cluster)

cluster:
	@command -v kind >/dev/null || { echo "kind is not installed: https://kind.sigs.k8s.io"; exit 1; }
	@kind get clusters 2>/dev/null | grep -qx $(CLUSTER) || kind create cluster --name $(CLUSTER) --config kind.yaml

stack: venv
	@command -v pulumi >/dev/null || { echo "pulumi is not installed: https://www.pulumi.com/docs/install/"; exit 1; }
	@mkdir -p .pulumi-state
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

preview: $(KIND_CLUSTER) stack
	pulumi preview --stack $(STACK) --policy-pack policy --policy-pack-config policy/config.$(STACK).json

up: $(KIND_CLUSTER) stack
	pulumi up --stack $(STACK) --yes --policy-pack policy --policy-pack-config policy/config.$(STACK).json

# The generated trust anchor is protected (README: Rotate the trust anchor): destroy the rest and
# keep it in state, so the stack deployed again keeps its mesh identity.
down: stack
	pulumi destroy --stack $(STACK) --yes --exclude-protected

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The pinned charts (components/versions.py) pulled from their repositories with `helm pull`,
# laid out as the chart contract suite reads them; a chart already there at its version is kept.
# Then: MESHSTACK_CHARTS_DIR=$PWD/.charts make test
CHARTS_OUT ?= .charts
.PHONY: charts
charts: venv
	$(BIN)/python -m tests.pull_charts $(CHARTS_OUT)
