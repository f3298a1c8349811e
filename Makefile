# lb: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= config.json
APT_PACKAGES := libuv1-dev libxxhash-dev zlib1g-dev libssl-dev libnghttp2-dev libc-ares-dev openssl pkg-config curl
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

.PHONY: deps test-deps build run test test-summary test-tsan test-asan bench bench-close bench-tls bench-scale bench-h2 bench-core bench-idle bench-many-servers soak bench-accesslog fuzz fuzz-tls fuzz-h2 clean

# Installs the C libraries when pkg-config cannot find them (Debian; root or sudo).
deps:
	@if ! pkg-config --exists libuv libxxhash zlib openssl libnghttp2 libcares 2>/dev/null || ! command -v curl >/dev/null; then \
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

# Tools some integration tests use; without them those tests skip rather than fail, except that the tests asking for
# them through `requiredTool` (the testssl.sh scan, the certificate reload, HTTPS client and HTTP/2 conformance
# tests) fail when CI is set, as .ci/run sets it: CI must not pass by skipping. .ci/run installs the same packages
# (python3-yaml is added here only when python3 lacks the module; python3-h2 when neither python3 nor Debian's
# /usr/bin/python3 has it, and python3-dnslib likewise). test-deps installs what is missing when it runs as root or with
# password-less sudo, and otherwise says which tests will skip.
# `make test INSTALL_TEST_DEPS=0` never installs anything.
INSTALL_TEST_DEPS ?= 1
test-deps: deps
	@missing=""; \
	command -v ab >/dev/null || missing="$$missing apache2-utils"; \
	command -v testssl >/dev/null || command -v testssl.sh >/dev/null || missing="$$missing testssl.sh"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v h2load >/dev/null && command -v nghttp >/dev/null || missing="$$missing nghttp2-client"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
		|| missing="$$missing chromium"; \
	if ! command -v python3 >/dev/null; then missing="$$missing python3 python3-requests python3-yaml python3-h2 python3-dnslib"; else \
		python3 -c 'import requests' 2>/dev/null || missing="$$missing python3-requests"; \
		python3 -c 'import yaml' 2>/dev/null || missing="$$missing python3-yaml"; \
		python3 -c 'import h2' 2>/dev/null || /usr/bin/python3 -c 'import h2' 2>/dev/null || missing="$$missing python3-h2"; \
		python3 -c 'import dnslib' 2>/dev/null || /usr/bin/python3 -c 'import dnslib' 2>/dev/null \
			|| missing="$$missing python3-dnslib"; fi; \
	if [ -n "$$missing" ] && [ "$(INSTALL_TEST_DEPS)" = 1 ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
		if [ "$$SUDO" = no ]; then echo "test-deps: not root and no password-less sudo; not installing:$$missing"; \
		else echo "test-deps: installing:$$missing"; \
			$$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
				>/dev/null || echo "test-deps: apt-get install failed; the tests that need these packages will skip"; fi; \
	fi; \
	command -v ab >/dev/null || echo "test-deps: no ab (apache2-utils): the ApacheBench tests will skip"; \
	command -v testssl >/dev/null || command -v testssl.sh >/dev/null \
		|| echo "test-deps: no testssl.sh: the scan of an HTTPS listener will skip (and fail under CI)"; \
	command -v wrk >/dev/null || echo "test-deps: no wrk: HTTPSClientTests' wrk test will skip (and fail under CI)"; \
	command -v h2load >/dev/null || echo "test-deps: no h2load (nghttp2-client): the HTTP/2 load and flood tests will skip (and fail under CI)"; \
	command -v promtool >/dev/null || echo "test-deps: no promtool (prometheus): the /metrics lint will skip"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
		|| echo "test-deps: no chromium: the dashboard browser test will skip"; \
	if ! command -v python3 >/dev/null; then echo "test-deps: no python3: the Python client, desync corpus and one harness test will skip"; else \
		python3 -c 'import requests' 2>/dev/null || echo "test-deps: python3 has no requests module: the Python requests tests will skip"; \
		python3 -c 'import yaml' 2>/dev/null || echo "test-deps: python3 has no yaml module (PyYAML): the desync corpus tests will skip"; \
		python3 -c 'import h2' 2>/dev/null || /usr/bin/python3 -c 'import h2' 2>/dev/null \
			|| echo "test-deps: no python3 h2 module (python3-h2): the HTTP/2 conformance tests will skip (and fail under CI)"; \
		python3 -c 'import dnslib' 2>/dev/null || /usr/bin/python3 -c 'import dnslib' 2>/dev/null \
			|| echo "test-deps: no python3 dnslib module (python3-dnslib): the DNS source tests will skip (and fail under CI)"; fi

# The whole suite: unit tests of LBCore, LBHTTP and LBServer, and integration tests that run the real binaries;
# then the integration tests again with 2 workers. The closing line counts every test of both runs.
test: test-deps
	$(SWIFT) build
	@set -o pipefail; LB_BIN_DIR=$(DEBUG_BIN) $(SWIFT) test --disable-swift-testing 2>&1 | tee .build/test.log; s1=$$?; \
	echo "== the integration suite again, with 2 workers"; \
	LB_TEST_WORKERS=2 LB_BIN_DIR=$(DEBUG_BIN) $(SWIFT) test --skip-build --disable-swift-testing --filter IntegrationTests \
		2>&1 | tee .build/test-workers.log; s2=$$?; \
	echo; $(TEST_SUMMARY) .build/test.log .build/test-workers.log; [ $$s1 = 0 ] && [ $$s2 = 0 ]

# The closing lines of `make test` again, from its logs (or from TEST_LOGS).
TEST_LOGS ?= .build/test.log .build/test-workers.log
test-summary:
	@$(TEST_SUMMARY) $(TEST_LOGS)

# Reads XCTest logs and prints each skipped test with its reason, each failed test, then
# `tests: N passed, N failed, N skipped` over all the logs. It counts the per-test result lines
# (`Test Case 'Suite.test' passed|failed|skipped (...)`), not XCTest's `Executed N tests, with M failures` summaries:
# M counts failed assertions (one test can fail several), the summary reads `with K tests skipped and M failures`
# when tests skip, and a crashed run prints none. A test that started and never finished (the process died)
# counts as failed. Where a log has the `All tests` / `Selected tests` summary, its test count is checked against
# the lines counted. Result lines need not start a line: a test's output without a final newline runs into them.
TEST_SUMMARY = awk ' \
	BEGIN { q = "\047"; result = "Test Case " q "[^" q "]+" q " (started|passed \\(|failed \\(|skipped \\()" } \
	FNR == 1 { total = "" } \
	{ line = $$0; \
	  while (match(line, result)) { \
	    m = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH); \
	    name = substr(m, 12); sub(q ".*", "", name); key = FILENAME SUBSEP name; \
	    if (m ~ /started$$/) { open[key] = 1; continue } \
	    delete open[key]; counted[FILENAME]++; \
	    if (m ~ /passed \($$/) passed++; \
	    else if (m ~ /failed \($$/) { failed++; failures = failures "failed: " name " (" FILENAME ")\n" } \
	    else skipped++ } } \
	/ : Test skipped/ { why = $$0; sub(/^.* : Test skipped( - )?/, "", why); who = $$0; sub(/ : Test skipped.*$$/, "", who); \
	  sub(/^.*: /, "", who); k = who ": " (why == "" ? "(no reason given)" : why); \
	  if (!(k in seen)) { seen[k] = 1; skips = skips "skipped: " k "\n" } } \
	/Test Suite .(All|Selected) tests. (passed|failed) at/ { total = FILENAME } \
	total == FILENAME && match($$0, /Executed [0-9]+ tests?,/) { \
	  executed[FILENAME] = substr($$0, RSTART + 9, RLENGTH - 9) + 0; total = "" } \
	END { for (key in open) { split(key, part, SUBSEP); failed++; \
	        failures = failures "failed: " part[2] " started and never finished (" part[1] ")\n" } \
	      for (f in executed) if (executed[f] != counted[f] + 0) \
	        printf "note: %s: XCTest reports %d tests executed, %d result lines counted\n", f, executed[f], counted[f]; \
	      printf "%s%s", skips, failures; \
	      printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped } \
	'

# Prints every sanitizer report file in directory $(1), then their count; false if there is one.
SANITIZER_REPORTS = reports=$$(ls $(1)); \
	for r in $$reports; do echo "== $(1)/$$r"; cat $(1)/$$r; done; \
	echo "sanitizer reports: $$(echo $$reports | wc -w) (in $(1))"; [ -z "$$reports" ]

# The whole suite against AddressSanitizer + LeakSanitizer builds (a release check, not part of `make test` or CI:
# about 15 minutes on 2 cores once built, up to 40 when other jobs share them). The unit tests run instrumented, and the integration tests start instrumented lb-server
# and lb-demo-backend binaries (built into .build-asan, apart from the normal build), then run once more with 2
# workers. Every instrumented process, the test runner and each child, writes any report to
# $(ASAN_REPORTS)/asan.PID instead of its stderr (a child's stderr is a log file the harness deletes), and a report
# ends the process (halt_on_error). Leaks are checked when a process exits normally, which lb-server and
# lb-demo-backend do on the SIGTERM every test ends them with (LB_TEST_TERMINATE_GRACE gives them 10 s before
# SIGKILL). The target fails if a test failed or any report file exists, and prints the reports.
# Tests/sanitizers/lsan.supp lists the leak reports that are not lb's, each with its reason. LB_TEST_SANITIZER
# tells the tests not to hold the instrumented binaries to RSS and latency bounds. The Swift backtracer is off so
# that ASan's own signal handlers print a crash. ld.gold warns once per ASan helper symbol ("Cannot export local
# symbol"): harmless, filtered.
ASAN_SCRATCH := .build-asan
ASAN_REPORTS := $(ASAN_SCRATCH)/reports
ASAN_FLAGS := --sanitize=address --scratch-path $(ASAN_SCRATCH)
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$(CURDIR)/$(ASAN_REPORTS)/asan \
	LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/sanitizers/lsan.supp:print_suppressions=0 \
	SWIFT_BACKTRACE=enable=no LB_TEST_TERMINATE_GRACE=10 LB_TEST_SANITIZER=address
test-asan: test-deps
	@set -o pipefail; $(SWIFT) build --build-tests $(ASAN_FLAGS) 2>&1 | grep -v 'Cannot export local symbol'
	@set -o pipefail; rm -rf $(ASAN_REPORTS); mkdir -p $(ASAN_REPORTS); start=$$(date +%s); \
	bin=$$($(SWIFT) build $(ASAN_FLAGS) --show-bin-path); \
	$(ASAN_ENV) LB_BIN_DIR=$$bin $(SWIFT) test --skip-build $(ASAN_FLAGS) --disable-swift-testing 2>&1 \
		| tee $(ASAN_SCRATCH)/test.log; s1=$$?; \
	echo "== the integration suite again under ASan, with 2 workers"; \
	$(ASAN_ENV) LB_TEST_WORKERS=2 LB_BIN_DIR=$$bin $(SWIFT) test --skip-build $(ASAN_FLAGS) --disable-swift-testing \
		--filter IntegrationTests 2>&1 | tee $(ASAN_SCRATCH)/test-workers.log; s2=$$?; \
	echo; $(TEST_SUMMARY) $(ASAN_SCRATCH)/test.log $(ASAN_SCRATCH)/test-workers.log; \
	echo "test-asan: $$(( ($$(date +%s) - start) / 60 )) min of tests"; \
	$(call SANITIZER_REPORTS,$(ASAN_REPORTS)) && [ $$s1 = 0 ] && [ $$s2 = 0 ]

# ThreadSanitizer on the multi-worker paths: the unit tests of the routing core (lock-free publication) and of
# LBServer (the health checker's cross-thread counting, the client address limit, a failed start's worker threads),
# then a ThreadSanitizer lb-server with 2 workers under the integration tests that drive the stats inbox (every
# /api/stats and /metrics collects each worker's counters through its inbox), snapshot publication under load
# (admin changes, SIGHUP reloads, failover) and graceful shutdown (health-check handles included). Reports go to
# $(TSAN_REPORTS)/tsan.PID; the target fails if a test failed or any report exists.
TSAN_SCRATCH := .build-tsan
TSAN_REPORTS := $(TSAN_SCRATCH)/reports
TSAN_FLAGS := --sanitize=thread --scratch-path $(TSAN_SCRATCH)
TSAN_ENV = TSAN_OPTIONS=halt_on_error=0:log_path=$(CURDIR)/$(TSAN_REPORTS)/tsan SWIFT_BACKTRACE=enable=no \
	LB_TEST_TERMINATE_GRACE=10 LB_TEST_SANITIZER=thread
TSAN_INTEGRATION := IntegrationTests.(ObservabilityTests|StatsSwitchTests|AdminAPITests|AdminAPILoadTests|FailoverUnderLoadTests|BusyPollTests|HealthCheckTests)
test-tsan: deps
	@set -o pipefail; $(SWIFT) build --build-tests $(TSAN_FLAGS) 2>&1 | grep -v 'Cannot export local symbol'
	@set -o pipefail; rm -rf $(TSAN_REPORTS); mkdir -p $(TSAN_REPORTS); \
	bin=$$($(SWIFT) build $(TSAN_FLAGS) --show-bin-path); \
	$(TSAN_ENV) $(SWIFT) test --skip-build $(TSAN_FLAGS) --disable-swift-testing --filter 'LBCoreTests|LBServerTests' \
		2>&1 | tee $(TSAN_SCRATCH)/test.log; s1=$$?; \
	echo "== multi-worker integration tests against a ThreadSanitizer lb-server, 2 workers"; \
	$(TSAN_ENV) LB_TEST_WORKERS=2 LB_BIN_DIR=$$bin $(SWIFT) test --skip-build $(TSAN_FLAGS) --disable-swift-testing \
		--filter '$(TSAN_INTEGRATION)' 2>&1 | tee $(TSAN_SCRATCH)/test-workers.log; s2=$$?; \
	echo; $(TEST_SUMMARY) $(TSAN_SCRATCH)/test.log $(TSAN_SCRATCH)/test-workers.log; \
	$(call SANITIZER_REPORTS,$(TSAN_REPORTS)) && [ $$s1 = 0 ] && [ $$s2 = 0 ]

# HAProxy, nginx and lb side by side on loopback (needs ../shared/bench/peers.sh).
bench: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" --label lb -d 10 --rounds 3
	bench/accesslog_overhead.sh "$(RELEASE_BIN)/lb-server" -d 8 --rounds 3

bench-close: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" --label lb -d 10 --rounds 3 --close

# HTTPS: HAProxy, nginx and lb terminating TLS 1.3 on the same OpenSSL, keep-alive and then a handshake per
# request (peers.sh passes --tls-cert/--tls-key).
bench-tls: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" --label lb -d 10 --rounds 3 --tls
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" --label lb -d 10 --rounds 3 --tls --close

# lb against HAProxy and nginx over clients {4, 64, 1000, 5000} x bodies {512 B, 64 KiB, 1 MiB} x {keep-alive, a new
# connection per request}: peers.sh per cell, one table of ratios at the end (bench/scale_matrix.py; about 55 min).
# BENCH_SCALE_SMOKE=1: one cell of 2 s, to check that the script and the tools work (its figures mean nothing).
# BENCH_SCALE_FLAGS passes more flags, e.g. BENCH_SCALE_FLAGS="--clients 1000 --modes keepalive -d 5".
BENCH_SCALE_SMOKE ?= 0
BENCH_SCALE_FLAGS ?=
bench-scale: build
	python3 bench/scale_matrix.py "$(RELEASE_BIN)/lb-server" --peers $(SHARED)/bench/peers.sh \
		$(if $(filter 1,$(BENCH_SCALE_SMOKE)),--smoke) $(BENCH_SCALE_FLAGS)

# HTTP/2 from clients: HAProxy, nginx and lb terminating TLS with ALPN h2, h2load driving 10 streams per connection,
# HTTP/1.1 to the same backends. BENCH_SECONDS and BENCH_ROUNDS shorten it (a smoke run: 2 and 1).
BENCH_SECONDS ?= 10
BENCH_ROUNDS ?= 3
bench-h2: build
	$(SHARED)/bench/peers.sh --candidate "$(RELEASE_BIN)/lb-server" --label lb -d $(BENCH_SECONDS) --rounds $(BENCH_ROUNDS) --h2

# Throughput with the access log on against off, in one run.
bench-accesslog: build
	bench/accesslog_overhead.sh "$(RELEASE_BIN)/lb-server" -d 8 --rounds 3

# Soak (bench/soak.py): mixed traffic (keep-alive and new connections, uploads, downloads, upgraded tunnels, a
# few hostile clients) while backends are killed and restarted, servers added, drained and removed and the
# config reloaded; prints RSS, descriptors and open connections over time and the failed requests, and fails
# on a failure, on RSS growing more than 2 MB after warm-up, or on connections or descriptors left open.
# DURATION=20m is the release check; takes DURATION plus about 20 s.
DURATION ?= 20m
soak: build
	python3 bench/soak.py --bin "$(RELEASE_BIN)" --duration $(DURATION)

# lb with 1,000 servers against 3 in one run (bench/many_servers.py): throughput, CPU per request, p99, the
# health checker's CPU and p99 while admin changes rebuild the routing table; then HAProxy and nginx over the
# same servers, for how much of the drop any proxy shows on this host. About 4.5 minutes;
# BENCH_MANY_FLAGS= runs lb alone (about 1.5).
BENCH_MANY_FLAGS ?= --peers
bench-many-servers: build
	python3 bench/many_servers.py "$(RELEASE_BIN)/lb-server" $(BENCH_MANY_FLAGS)

# Memory per idle client connection of lb, HAProxy (1 thread) and nginx (1 worker) in the same run
# (bench/idle_connections.py): each proxy in turn gets 9,000 connections, each having served one request, then idle;
# resident memory added per connection. Modes: http (HTTP/1.1), https (HTTP/1.1 over TLS 1.3), h2 (HTTP/2 over TLS)
# and tls (handshake only: the baseline for h2's cost beyond the TLS session). About 7 minutes, most of it in the
# client's TLS handshakes. BENCH_IDLE_MODES picks modes (BENCH_IDLE_MODES=http: about 30 s); BENCH_IDLE_FLAGS passes
# more flags (--connections N, --peers lb,nginx, --body BYTES, --settle SECONDS). HAProxy, nginx and, for h2,
# Python's h2 module (Debian's python3-h2; the script finds a python3 that has it) are installed when missing.
BENCH_IDLE_MODES ?= http,https,h2,tls
BENCH_IDLE_FLAGS ?=
bench-idle: build
	@missing=""; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	$(if $(findstring h2,$(BENCH_IDLE_MODES)),python3 -c 'import h2' 2>/dev/null || /usr/bin/python3 -c 'import h2' \
		2>/dev/null || missing="$$missing python3-h2";) \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing >/dev/null; \
	fi
	python3 bench/idle_connections.py --bin "$(RELEASE_BIN)" --mode $(BENCH_IDLE_MODES) $(BENCH_IDLE_FLAGS)

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

# libFuzzer on the server side of the TLS engine (LBTLS) for FUZZ_SECONDS: raw client bytes in varying chunks, and
# scripted conversations with a real OpenSSL client (Fuzz/Sources/TLSFuzz). Seeds in Fuzz/tls-corpus; new inputs
# go to fuzz-tls-corpus-out/, crashes to artifacts/tls-*. OpenSSL itself is not instrumented: coverage guidance
# comes from LBTLS and the harness.
fuzz-tls: deps
	cd Fuzz && $(SWIFT) build -Xswiftc -sanitize=fuzzer,address --product TLSFuzz 2>&1 | grep -v 'Cannot export local symbol'; test $${PIPESTATUS[0]} = 0
	mkdir -p fuzz-tls-corpus-out artifacts
	SWIFT_BACKTRACE=enable=no $$(cd Fuzz && $(SWIFT) build --show-bin-path)/TLSFuzz fuzz-tls-corpus-out Fuzz/tls-corpus -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=artifacts/tls- -dict=Fuzz/tls.dict -timeout=10 -print_final_stats=1 $(FUZZ_FLAGS)

# libFuzzer on the server side of HTTP/2 (LBH2's nghttp2 session, LBHTTP's request translation) for FUZZ_SECONDS:
# arbitrary frames after a valid preface and SETTINGS, in varying chunks, with a delegate that answers, defers,
# resets and credits streams as the proxy does (Fuzz/Sources/H2Fuzz). Seeds in Fuzz/h2-corpus (written by
# Fuzz/make_h2_corpus.py); new inputs go to fuzz-h2-corpus-out/, crashes to artifacts/h2-*. nghttp2 itself is not
# instrumented: coverage guidance comes from LBH2, LBHTTP and the harness.
fuzz-h2: deps
	cd Fuzz && $(SWIFT) build -Xswiftc -sanitize=fuzzer,address --product H2Fuzz 2>&1 | grep -v 'Cannot export local symbol'; test $${PIPESTATUS[0]} = 0
	mkdir -p fuzz-h2-corpus-out artifacts
	SWIFT_BACKTRACE=enable=no $$(cd Fuzz && $(SWIFT) build --show-bin-path)/H2Fuzz fuzz-h2-corpus-out Fuzz/h2-corpus -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=artifacts/h2- -dict=Fuzz/h2.dict -timeout=10 -print_final_stats=1 $(FUZZ_FLAGS)

clean:
	rm -rf .build .build-*
