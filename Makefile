# Strom's build and test entry points. CI runs `make test` (see .ci/run) on a
# fresh clone, possibly on a new machine, so every tool the tests need is
# installed by `make deps`.

SHELL         := bash
.SHELLFLAGS   := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO  ?= go
BIN := bin/strom
# Limit for each package's test binary: test/cluster, the longest, takes
# 22-23 minutes under -race on 2 cores (the fault tests' short forms; 1,352
# s on a fresh CI machine, 1,383 s on a loaded one), so the limit leaves
# room; the long forms are in `make chaos` and `make crash`.
TEST_TIMEOUT ?= 40m
# How long `make fuzz` spends on each fuzz target.
FUZZTIME ?= 60s

# Debian packages the compatibility tests (test/compat) and the browser
# test (test/browser) drive. Debian's confluent-kafka loads only under
# Debian's own interpreter, not a pyenv one.
APT_PACKAGES := kcat python3-confluent-kafka chromium iproute2
DEB_PYTHON   := /usr/bin/python3
NODE_DIR     := test/compat/node
# npm ci writes this file last, so it marks a complete install of the lock.
NODE_STAMP   := $(NODE_DIR)/node_modules/.package-lock.json
# The console's front end (web/: esbuild, TypeScript, uPlot) and the
# browser test's driver (test/browser: playwright-core, which drives
# Debian's chromium and downloads no browser of its own).
WEB_DIR       := web
WEB_STAMP     := $(WEB_DIR)/node_modules/.package-lock.json
BROWSER_DIR   := test/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.package-lock.json
# kafka-node's optional snappy addon is compiled at install time. Point
# node-gyp at the headers of the node we run, so that it never tries to
# download them (there is no network but the package registries).
NODE_PREFIX   = $(shell node -p 'require("path").resolve(process.execPath, "../..")' 2>/dev/null)
NPM_ENV       = $(if $(wildcard $(NODE_PREFIX)/include/node/node.h),npm_config_nodedir=$(NODE_PREFIX))

# We are root on the project's machines; elsewhere use sudo when it exists.
SUDO := $(shell if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300

.PHONY: build run cluster deps apt-deps node-deps web vet verify-kmsg test fuzz crash chaos bench bench-go

# build: the broker binary.
build:
	$(GO) build -o $(BIN) ./cmd/strom

# run: build, then start a broker in the foreground with the demo
# generator, so that http://localhost:8080 shows a live chart at once.
run: build
	./$(BIN) serve --demo

# cluster: build, then start a three-node cluster on this machine in the
# foreground, from config/cluster/server{1,2,3}.properties: Kafka on
# localhost:9092/9192/9292, controllers on 9093/9193/9293, data in
# ./data-cluster/N, node 1's console on http://127.0.0.1:8080 (the others'
# off). Ctrl-C stops all three: the terminal sends it to every node, each
# shuts down cleanly, and make waits for them (a SIGTERM to the recipe's
# shell is passed on to them; a node that exits alone leaves the others
# running).
cluster: build
	@mkdir -p data-cluster
	@echo "cluster: nodes 1-3 on localhost:9092,localhost:9192,localhost:9292; console http://127.0.0.1:8080; Ctrl-C stops"
	@pids=(); \
	trap '' INT; \
	trap 'kill -TERM "$${pids[@]}" 2>/dev/null || true' TERM; \
	./$(BIN) serve --config config/cluster/server1.properties --http-addr 127.0.0.1:8080 & pids+=($$!); \
	./$(BIN) serve --config config/cluster/server2.properties --http-addr - & pids+=($$!); \
	./$(BIN) serve --config config/cluster/server3.properties --http-addr - & pids+=($$!); \
	while [ -n "$$(jobs -pr)" ]; do wait || true; done; echo "cluster: stopped"

# deps: install what the tests need; well under a second when everything
# is already there.
deps: apt-deps node-deps

# apt-deps: kcat and confluent-kafka from Debian, with a single
# `apt-get update`, and only when one of them is missing. Node.js and npm come
# with the machine; Debian's are installed only if they are absent.
apt-deps:
	@missing=""; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	$(DEB_PYTHON) -c 'import confluent_kafka' >/dev/null 2>&1 || missing="$$missing python3-confluent-kafka"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "deps: missing$$missing; installing from Debian"; \
		$(APT) update; \
		$(APT) install -y --no-install-recommends $(APT_PACKAGES) $$(command -v npm >/dev/null 2>&1 || echo nodejs npm); \
	fi

# node-deps: the Node.js packages exactly as locked (the compatibility
# clients, the front end's build tools, the browser test's driver), each
# reinstalled only when its lock or package.json is newer than its last
# install.
node-deps: $(NODE_STAMP) $(WEB_STAMP) $(BROWSER_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package-lock.json $(NODE_DIR)/package.json | apt-deps
	cd $(NODE_DIR) && $(NPM_ENV) npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	@touch $@

$(WEB_STAMP): $(WEB_DIR)/package-lock.json $(WEB_DIR)/package.json | apt-deps
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	@touch $@

$(BROWSER_STAMP): $(BROWSER_DIR)/package-lock.json $(BROWSER_DIR)/package.json | apt-deps
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	@touch $@

# web: type-check the console's front end and rebuild its bundle into
# internal/console/dist, which is committed and embedded (go build and
# make run never need Node). A test (TestBundleFresh) fails while the
# committed bundle differs from what web/ builds.
web: $(WEB_STAMP)
	cd $(WEB_DIR) && node_modules/.bin/tsc --noEmit -p . && node build.mjs

# vet: static checks over every package.
vet:
	$(GO) vet ./...

# verify-kmsg: third_party/kmsg must be upstream kmsg at the version go.mod
# requires plus third_party/kmsg-patch.pl, nothing else (see its PATCHES.md).
# Downloads that version through the Go module proxy, patches a copy, diffs.
verify-kmsg:
	GO=$(GO) bash third_party/kmsg-verify.sh

# test: what CI runs. Installs deps, vets, checks the kmsg copy, then runs
# every test with the race detector; go test prints one summary line per
# package.
test: deps vet verify-kmsg
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -run '$(ALLOC_TESTS)' ./internal/record/ ./internal/kafka/server/ ./internal/bufpool/ ./internal/partition/

# ALLOC_TESTS assert what a hot path allocates; sync.Pool drops items at
# random under the race detector, so they skip there and run again here,
# without it.
ALLOC_TESTS := Allocs|Allocates|ScratchReuse

# fuzz: run every Fuzz target of every package for FUZZTIME each. Targets are
# found with `go test -list`, so new ones are picked up by themselves.
# The inputs the fuzzer found interesting are copied from Go's cache into the
# package's testdata/fuzz/<target>/, so that plain `go test` (and so CI)
# replays the whole corpus; commit them.
fuzz:
	@cache=$$($(GO) env GOCACHE)/fuzz; \
	for pkg in $$($(GO) list ./...); do \
		listed=$$($(GO) test -list '^Fuzz' "$$pkg"); \
		dir=$$($(GO) list -f '{{.Dir}}' "$$pkg"); \
		for target in $$(grep '^Fuzz' <<<"$$listed" || true); do \
			echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
			if [ -d "$$cache/$$pkg/$$target" ]; then \
				mkdir -p "$$dir/testdata/fuzz/$$target"; \
				cp -n "$$cache/$$pkg/$$target"/* "$$dir/testdata/fuzz/$$target/" 2>/dev/null || true; \
			fi; \
		done; \
	done

# crash: the long forms of the crash tests (test/crash): 1,000 SIGKILLs of a
# broker under 16 idempotent acks=all producers, 200 SIGKILLs under consumer
# offset commits, 50 under transactional pipelines, and 1,000 power cuts of
# an in-process broker on an in-memory filesystem; make test runs 20, 8, 6
# and 20.
CRASH_CYCLES        ?= 1000
CRASH_COMMIT_CYCLES ?= 200
CRASH_TXN_CYCLES    ?= 50
POWERLOSS_CUTS      ?= 1000
crash:
	STROM_CRASH_CYCLES=$(CRASH_CYCLES) STROM_CRASH_COMMIT_CYCLES=$(CRASH_COMMIT_CYCLES) STROM_CRASH_TXN_CYCLES=$(CRASH_TXN_CYCLES) \
		STROM_POWERLOSS_CUTS=$(POWERLOSS_CUTS) \
		$(GO) test -count=1 -v -timeout 180m -run 'TestKillDuringAcksAllProduce|TestKillDuringOffsetCommits|TestKillDuringTransactions|TestPowerLossAtRandomPoints' ./test/crash

# chaos: the long forms of the cluster fault tests (test/cluster): 500
# SIGKILLs of random brokers under 16 acks=all producers (franz-go and
# librdkafka) and a consumer group, and 20 kills of a partition's leader;
# make test runs 20 and 2.
CHAOS_KILLS ?= 500
REPL_KILLS  ?= 20
chaos: apt-deps
	CI=true STROM_CHAOS_KILLS=$(CHAOS_KILLS) STROM_REPL_KILLS=$(REPL_KILLS) \
		$(GO) test -count=1 -v -timeout 600m -run 'TestKillRandomBrokers|TestReplicationSurvivesLeaderKill' ./test/cluster

# bench: the benchmark harness (bench/): Strom against kfake, a loopback TCP
# copy and the issue's limits, each broker in a process of its own; prints
# one line per figure and appends the run to bench/results/<date>.md. A few
# minutes on 2 cores. Flags go in BENCH_FLAGS, for example
# BENCH_FLAGS='-scenario startup,idle-rss' or BENCH_FLAGS=-smoke.
BENCH_FLAGS ?=
bench:
	$(GO) build -o bin/strombench ./bench/cmd/strombench
	./bin/strombench $(BENCH_FLAGS)

# bench-go: every Go benchmark (func Benchmark...) once, with allocation
# counts.
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
