# lb: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= config.json
APT_PACKAGES := libuv1-dev libxxhash-dev zlib1g-dev pkg-config curl
# Release builds link the Swift runtime and Foundation statically: same speed, 6 MB less resident memory
# (only the pages used are mapped in), one self-contained binary. With the toolchain's lld they also pack
# relocations (RELR: the loader reads 16 KB instead of 2 MB of .rela.dyn at startup, and the binary stays
# position-independent) and export no symbols: together 2 MB less peak RSS. Without lld: the default linker.
LLD := $(shell command -v ld.lld 2>/dev/null)
RELEASE_FLAGS := -c release --static-swift-stdlib \
	$(if $(LLD),-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
RELEASE_BIN = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)
DEBUG_BIN = $(shell $(SWIFT) build --show-bin-path)
SHARED ?= ../shared

.PHONY: deps build run test test-tsan bench bench-close bench-core bench-idle bench-accesslog fuzz clean

# Installs the C libraries when pkg-config cannot find them (Debian; root or sudo).
deps:
	@if ! pkg-config --exists libuv libxxhash zlib 2>/dev/null || ! command -v curl >/dev/null; then \
		echo "installing: $(APT_PACKAGES)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(APT_PACKAGES) >/dev/null; \
	fi

build: deps
	$(SWIFT) build $(RELEASE_FLAGS)

# Three demo backends on 8001-8003 and the balancer on :8080 (admin on 127.0.0.1:8081), as in config.json.
run: build
	@bin=$(RELEASE_BIN); pids=(); \
	trap 'kill $${pids[@]} 2>/dev/null; wait 2>/dev/null' EXIT INT TERM; \
	for i in 1 2 3; do $$bin/lb-demo-backend --port 800$$i --name backend-$$i & pids+=($$!); done; \
	$$bin/lb-server --config $(CONFIG) & pids+=($$!); \
	sleep 0.5; \
	echo; echo "lb is running: curl localhost:8080/anything   admin: curl localhost:8081/api/servers"; \
	echo "Ctrl-C stops it (kill -HUP $${pids[3]} reloads $(CONFIG))."; \
	wait $${pids[3]}

# The whole suite: unit tests of LBCore and LBServer, and integration tests that run the real binaries.
test: deps
	$(SWIFT) build
	@set -o pipefail; LB_BIN_DIR=$(DEBUG_BIN) $(SWIFT) test --disable-swift-testing 2>&1 | tee .build/test.log; s1=$$?; \
	echo "== the integration suite again, with 2 workers"; \
	LB_TEST_WORKERS=2 LB_BIN_DIR=$(DEBUG_BIN) $(SWIFT) test --skip-build --disable-swift-testing --filter IntegrationTests \
		2>&1 | tee .build/test-workers.log; s2=$$?; \
	t=0; f=0; for log in .build/test.log .build/test-workers.log; do \
		line=$$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" $$log | tail -1); \
		t=$$((t + $$(echo "$$line" | awk '{print $$2}'))); f=$$((f + $$(echo "$$line" | awk '{print $$5}'))); done; \
	echo; echo "tests: $$((t - f)) passed, $$f failed"; [ $$s1 = 0 ] && [ $$s2 = 0 ]

# The lock-free publication test under ThreadSanitizer.
test-tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter LBCoreTests

# HAProxy, nginx and lb side by side on loopback (needs ../shared/bench/peers.sh).
bench: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" -d 10 --rounds 3
	bench/accesslog_overhead.sh "$(RELEASE_BIN)/lb-server" -d 8 --rounds 3

bench-close: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" -d 10 --rounds 3 --close

# Throughput with the access log on against off, in one run.
bench-accesslog: build
	bench/accesslog_overhead.sh "$(RELEASE_BIN)/lb-server" -d 8 --rounds 3

# Memory per idle keep-alive client connection (10,000 connections).
bench-idle: build
	python3 bench/idle_connections.py --bin "$(RELEASE_BIN)"

bench-core: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product lb-bench-core
	$(RELEASE_BIN)/lb-bench-core

# libFuzzer on the request and response parsers for FUZZ_SECONDS (Fuzz/ is its own package, so the normal
# build never sees fuzzer flags). New inputs go to fuzz-corpus-out/, crashes to artifacts/. ld.gold warns once per
# ASan helper symbol ("Cannot export local symbol"): harmless, filtered.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
fuzz: deps
	cd Fuzz && $(SWIFT) build -Xswiftc -sanitize=fuzzer,address --product ParserFuzz 2>&1 | grep -v 'Cannot export local symbol'; test $${PIPESTATUS[0]} = 0
	mkdir -p fuzz-corpus-out artifacts
	SWIFT_BACKTRACE=enable=no $$(cd Fuzz && $(SWIFT) build --show-bin-path)/ParserFuzz fuzz-corpus-out Fuzz/corpus -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=artifacts/ -dict=Fuzz/http.dict -print_final_stats=1 $(FUZZ_FLAGS)

clean:
	rm -rf .build .build-*
