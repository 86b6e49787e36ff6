# Conure developer entry points. Every target does its own set-up on a fresh machine.
#   make run      start the platform in the background (embedded store under ./.conure-platform),
#                 wait for /health, print the API URL, the admin token and a curl example
#   make status | logs | stop | restart   the background platform
#   make dev-cluster  a local 3-member ConureDB cluster (2 voters + 1 arbiter; see README)
#   make test     check the layer rules, set up, build, run every test suite (what CI runs)
#   make check-layers  the import rules of src/ (scripts/check-layers.mjs; DESIGN.md §2)
#   make bench    benchmarks: prints tables and JSON, asserts nothing
#   make sim      long raft simulation sweep: make sim SEEDS=100000
#   make fault    fault-injection suite (PROFILE=short|long)
#   make k8s-up   a local single-node Kubernetes left running (STORE=etcd|conuredb); make k8s-down removes it
#   make test-k8s the local Kubernetes suite (test/k8s): builds binaries/images into $(CONURE_CACHE)
SHELL := /bin/bash
NODE ?= node
SEEDS ?= 100000
PROFILE ?= short
DATA_DIR ?= ./.conure
PLATFORM_DATA_DIR ?= ./.conure-platform
PLATFORM_PORT ?= 8000
PLATFORM_CLI = PLATFORM_DATA_DIR=$(PLATFORM_DATA_DIR) PORT=$(PLATFORM_PORT) $(NODE) dist/src/cli/conure-platform.js
CONURE_CACHE ?= /var/cache/conure
export CONURE_CACHE

.PHONY: all setup deps build check-layers run status logs stop restart dev-cluster test test-unit test-sim test-integration test-e2e test-examples test-k8s k8s-binaries k8s-images k8s-up k8s-down bench sim fault clean typecheck

all: build

deps:
	@scripts/setup.sh node

setup:
	@scripts/setup.sh all

build: deps
	@npx tsc -p tsconfig.json

typecheck: deps
	@npx tsc -p tsconfig.json --noEmit

# Plain node, no install or build: fails with a list of file:line, import and rule.
check-layers:
	@$(NODE) scripts/check-layers.mjs

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

# check-layers first: it takes a fraction of a second and fails before the long set-up.
test: check-layers setup build k8s-binaries
	@$(NODE) scripts/run-tests.mjs all

test-unit: build
	@$(NODE) scripts/run-tests.mjs unit

test-sim: build
	@$(NODE) scripts/run-tests.mjs sim

test-integration: build
	@$(NODE) scripts/run-tests.mjs integration

test-e2e: setup build
	@$(NODE) scripts/run-tests.mjs e2e

# examples/ (Presence registry, Time Service): real ConureDB/etcd clusters, sqlite3, helm, go.
test-examples: setup build
	@$(NODE) scripts/run-tests.mjs examples

# The local Kubernetes (docs/kubernetes.md, "The local Kubernetes"). Binaries and images are
# cached under $(CONURE_CACHE)/k8s, outside the repository.
# Not `setup`: its `pkill -x etcd` would also stop a running cluster's etcd store. helm comes
# from scripts/setup.sh only when it is missing.
k8s-binaries: deps
	@scripts/k8s/setup-host.sh
	@[ -x "$$(go env GOPATH)/bin/helm" ] || command -v helm >/dev/null || scripts/setup.sh all
	@scripts/k8s/build-binaries.sh >/dev/null

k8s-images: k8s-binaries build
	@$(NODE) dist/test/k8s/cli.js images

k8s-up: k8s-binaries build
	@$(NODE) dist/test/k8s/cli.js up --store $(or $(STORE),etcd)

k8s-down:
	@if [ -f dist/test/k8s/cli.js ]; then $(NODE) dist/test/k8s/cli.js down; else echo "build first (make build)"; fi

# STORE=etcd|conuredb runs one store; unset, both (one cluster after the other).
test-k8s: k8s-binaries build
	@STORE=$(STORE) $(NODE) scripts/run-tests.mjs k8s

bench: setup build
	@$(NODE) dist/bench/run.js $(BENCH)

sim: build
	$(NODE) dist/test/sim/sweep.js --seeds $(SEEDS)

fault: setup build
	$(NODE) dist/test/fault/run.js --profile $(PROFILE)

clean:
	rm -rf dist
