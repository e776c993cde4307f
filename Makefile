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
	@echo "make up-multicluster - two linked kind clusters (west, east), the trust stack and both stacks"

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
	$(BIN)/mypy trust/__main__.py

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

# --- Two linked clusters on a laptop (README: Multicluster) ------------------------------------
# Two kind clusters on kind's one Docker network with distinct CIDRs, the trust stack, then the
# documented bring-up: west without links, east linked to west, west linked back. Each cluster's
# gateway is a NodePort on its node's Docker address; API servers are reached by node name.
MC_ORG ?= organization
MC_MODE ?= gateway
MC_CLUSTERS := west east
MC_CIDRS_west := 10.10.0.0/16 10.11.0.0/16
MC_CIDRS_east := 10.20.0.0/16 10.21.0.0/16
.PHONY: up-multicluster down-multicluster

define mc_config
	pulumi config set --stack $(1) kubeContext kind-$(1)
	pulumi config set --stack $(1) enableMulticluster true
	pulumi config set --stack $(1) --path multicluster.clusterName $(1)
	pulumi config set --stack $(1) --path multicluster.trustStack $(MC_ORG)/meshstack-trust/trust
	pulumi config set --stack $(1) --path multicluster.apiServerAddress https://$(1)-control-plane:6443
	pulumi config set --stack $(1) --path multicluster.podCidr $(word 1,$(MC_CIDRS_$(1)))
	pulumi config set --stack $(1) --path multicluster.serviceCidr $(word 2,$(MC_CIDRS_$(1)))
	pulumi config set --stack $(1) --path multicluster.gateway.serviceType NodePort
	pulumi config set --stack $(1) --path multicluster.gateway.address \
	  "$$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $(1)-control-plane)"
	pulumi config set --stack $(1) --path 'multicluster.placement[0].workload' voting
	pulumi config set --stack $(1) --path 'multicluster.placement[0].cluster' west
endef

define mc_link
	pulumi config set --stack $(1) --path 'multicluster.links[0].stack' $(MC_ORG)/meshstack/$(2)
	pulumi config set --stack $(1) --path 'multicluster.links[0].mode' $(MC_MODE)
endef

up-multicluster: venv
	@command -v kind >/dev/null || { echo "kind is not installed: https://kind.sigs.k8s.io"; exit 1; }
	@command -v pulumi >/dev/null || { echo "pulumi is not installed: https://www.pulumi.com/docs/install/"; exit 1; }
	@mkdir -p .pulumi-state
	for c in $(MC_CLUSTERS); do \
	  kind get clusters 2>/dev/null | grep -qx $$c || kind create cluster --name $$c --config kind-multicluster-$$c.yaml; \
	done
	cd trust && (pulumi stack select trust 2>/dev/null || pulumi stack init trust) && pulumi up --stack trust --yes
	for c in $(MC_CLUSTERS); do pulumi stack select $$c 2>/dev/null || pulumi stack init $$c; done
	$(call mc_config,west)
	$(call mc_config,east)
	pulumi up --stack west --yes
	$(call mc_link,east,west)
	pulumi up --stack east --yes
	$(call mc_link,west,east)
	pulumi up --stack west --yes

down-multicluster: venv
	for c in east west; do pulumi destroy --stack $$c --yes --exclude-protected; done
	for c in $(MC_CLUSTERS); do kind delete cluster --name $$c; done
