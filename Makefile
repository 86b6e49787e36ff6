# Conure developer entry points. Every target does its own set-up on a fresh machine.
#   make run      start the platform in the background (embedded store under ./.conure-platform),
#                 wait for /health, print the API URL, the admin token and a curl example
#   make status | logs | stop | restart   the background platform
#   make dev-cluster  a local 3-member ConureDB cluster (2 voters + 1 arbiter; see README)
#   make test     set up, build, run every test suite (what CI runs)
#   make bench    benchmarks: prints tables and JSON, asserts nothing
#   make sim      long raft simulation sweep: make sim SEEDS=100000
#   make fault    fault-injection suite (PROFILE=short|long)
SHELL := /bin/bash
NODE ?= node
SEEDS ?= 100000
PROFILE ?= short
DATA_DIR ?= ./.conure
PLATFORM_DATA_DIR ?= ./.conure-platform
PLATFORM_PORT ?= 8000
PLATFORM_CLI = PLATFORM_DATA_DIR=$(PLATFORM_DATA_DIR) PORT=$(PLATFORM_PORT) $(NODE) dist/src/cli/conure-platform.js

.PHONY: all setup deps build run status logs stop restart dev-cluster test test-unit test-sim test-integration test-e2e bench sim fault clean typecheck

all: build

deps:
	@scripts/setup.sh node

setup:
	@scripts/setup.sh all

build: deps
	@npx tsc -p tsconfig.json

typecheck: deps
	@npx tsc -p tsconfig.json --noEmit

run: build
	@$(PLATFORM_CLI) daemon start

status:
	@$(PLATFORM_CLI) daemon status || true

logs:
	@$(PLATFORM_CLI) daemon logs

stop:
	@$(PLATFORM_CLI) daemon stop

restart: build
	@$(PLATFORM_CLI) daemon stop
	@$(PLATFORM_CLI) daemon start

dev-cluster: build
	$(NODE) dist/src/cli/conurectl.js dev cluster --voters 2 --arbiter auto --base-port 8081 --data-dir $(DATA_DIR)

test: setup build
	@$(NODE) scripts/run-tests.mjs all

test-unit: build
	@$(NODE) scripts/run-tests.mjs unit

test-sim: build
	@$(NODE) scripts/run-tests.mjs sim

test-integration: build
	@$(NODE) scripts/run-tests.mjs integration

test-e2e: setup build
	@$(NODE) scripts/run-tests.mjs e2e

bench: setup build
	@$(NODE) dist/bench/run.js $(BENCH)

sim: build
	$(NODE) dist/test/sim/sweep.js --seeds $(SEEDS)

fault: setup build
	$(NODE) dist/test/fault/run.js --profile $(PROFILE)

clean:
	rm -rf dist
