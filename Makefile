# nitrosign: the two commands a newcomer needs are `make dev` and `make test`.

GO        ?= go
BIN       := bin
# Flags of the reproducible, static enclave build (PCR0 depends on its bytes).
ENCLAVE_ENV   := CGO_ENABLED=0
ENCLAVE_FLAGS := -trimpath -buildvcs=false -ldflags="-s -w -buildid="
DATA_DIR  ?= .nitrosign-dev
LISTEN    ?= 127.0.0.1:8420
DEV_FLAGS ?=
FUZZTIME  ?= 60s
# The fuzzer minimizes each input that finds new coverage before it goes on,
# all workers waiting, by up to n² deletions of an n-byte input: with Go's
# default budget of 60 s, a target whose run costs tens of microseconds on
# inputs of a few hundred bytes (audit.FuzzVerify) spends its time
# minimizing and fuzzes little. A failing input is still written, minimized
# as far as the budget allows.
FUZZMINIMIZETIME ?= 2s
BENCH_DURATION ?= 10s
BENCH_CLIENTS  ?= 16,64
# Runs of the enclave-alone benchmarks, each with its crypto bound right
# after it: the ratio is the median of the runs' ratios.
BENCH_ENCLAVE_RUNS ?= 5
SOAK_REQUESTS  ?= 1000000
FLOOR_RUNS     ?= 3
SOAK_CLIENTS   ?= 64
CHAOS_KILLS    ?= 10
CHAOS_CLIENTS  ?= 48

STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The nested module of the cross-checks against go-ethereum (crosscheck/),
# which keeps go-ethereum out of the main module's requirements.
CROSSCHECK    := crosscheck
# The JavaScript client (an npm package), whose node tests go test runs
# (clients/js/node_test.go); npm installs their dependencies from its lock.
JS_CLIENT     := clients/js
JS_DEPS       := $(JS_CLIENT)/node_modules/.package-lock.json

.PHONY: all build dev test js-deps chaos vet staticcheck fmt-check tidy-check bench bench-floor bench-micro soak fuzz enclave clean

all: build

## build: the three binaries into bin/
build:
	@mkdir -p $(BIN)
	$(ENCLAVE_ENV) $(GO) build $(ENCLAVE_FLAGS) -o $(BIN)/nitrosign-enclave ./cmd/nitrosign-enclave
	$(GO) build -o $(BIN)/nitrosign ./cmd/nitrosign
	$(GO) build -o $(BIN)/nitrosign-host ./cmd/nitrosign-host

## dev: the whole stack, simulated (vsock, enclave process, host on $(LISTEN))
dev: build
	$(BIN)/nitrosign dev --data-dir $(DATA_DIR) --listen $(LISTEN) $(DEV_FLAGS)

## test: formatting, vet, staticcheck, tidy go.mod files, and every test
## with the race detector, in the main module and in $(CROSSCHECK)/ (the
## JavaScript client's node tests included, its dependencies installed first)
test: fmt-check vet staticcheck tidy-check js-deps
	$(GO) test -race -count=1 -timeout 9m ./...
	cd $(CROSSCHECK) && $(GO) test -race -count=1 -timeout 9m ./...

## chaos: the long fault-injection runs in the production topology: the
## enclave process killed $(CHAOS_KILLS) times under $(CHAOS_CLIENTS) concurrent clients while
## the host keeps running, and the disk filled under load (as root: a small
## tmpfs); each proves every 200 has its record in the persisted log and
## the log verifies; then the hostile-host tests at full size (withheld
## acknowledgements from many clients, 10 rounds of 600 flooding
## connections); the policy races at ten times their size (spends, freezes,
## approvals and held reservations while policy changes apply); and the
## enclave listener under 3,000 idle connections and 300 half-written 1 MiB
## frames. Short runs of all are part of make test.
chaos:
	NITROSIGN_CHAOS=1 NITROSIGN_CHAOS_KILLS=$(CHAOS_KILLS) NITROSIGN_CHAOS_CLIENTS=$(CHAOS_CLIENTS) \
		$(GO) test -count=1 -timeout 20m -v -run 'TestEnclaveKillsUnderLoad|TestDiskFull' ./internal/chaos
	NITROSIGN_CHAOS=1 $(GO) test -count=1 -timeout 20m -run 'TestHostileHost' ./enclave
	NITROSIGN_CHAOS=1 $(GO) test -race -count=1 -timeout 20m -v \
		-run 'TestLimitAtomic|TestFreezeAtomic|TestApprovalReservationAcrossPolicyChange|TestPolicyRaceStress' ./enclave
	NITROSIGN_CHAOS=1 $(GO) test -count=1 -timeout 20m -v -run 'TestServeIdleConnectionsCappedAndClosed|TestServeHalfWrittenFramesDropped' ./proto

# js-deps: $(JS_CLIENT)'s node_modules, installed exactly from its
# package-lock.json (npm ci) when missing or older than the lock. Without
# npm, the node tests skip (and fail when CI is set).
js-deps: $(JS_DEPS)

$(JS_DEPS): $(JS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(JS_CLIENT) --no-audit --no-fund; \
	else \
		echo "npm not found: the $(JS_CLIENT) tests will skip (install Node 20 or later with npm)"; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd $(CROSSCHECK) && $(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	cd $(CROSSCHECK) && $(GO) run $(STATICCHECK) ./...

# tidy-check: go.mod and go.sum of both modules are exactly what go mod tidy
# makes them (no missing or stale requirement, none marked wrongly indirect).
tidy-check:
	$(GO) mod tidy -diff
	cd $(CROSSCHECK) && $(GO) mod tidy -diff

## enclave: build the enclave binary into bin/, then prove the build is
## reproducible (two builds from separate build caches are byte-identical),
## static, and links no host, simulator or test package
enclave:
	@mkdir -p $(BIN)
	$(ENCLAVE_ENV) $(GO) build $(ENCLAVE_FLAGS) -o $(BIN)/nitrosign-enclave ./cmd/nitrosign-enclave
	@sha384sum $(BIN)/nitrosign-enclave
	$(GO) test -count=1 -v -run 'TestEnclave' ./cmd/nitrosign-enclave

## bench: the signing path against its crypto bound, in one run on this
## machine: the bound (an Ed25519 verification and a secp256k1 signature
## per request on every core), the enclave alone (BenchmarkHandleSign), end
## to end at $(BENCH_CLIENTS) clients with p50/p99/p999, each as a ratio of
## the bound, the host's allocations and every process's CPU per request,
## and the enclave's cold start (docs/operations.md, Performance)
bench: build
	@$(GO) test -c -o $(BIN)/enclave.test ./enclave
	@rm -f $(BIN)/bench-enclave.txt
	@for i in $$(seq $(BENCH_ENCLAVE_RUNS)); do \
		$(BIN)/enclave.test -test.run='^$$' -test.bench='^Benchmark(HandleSign|HandleSignUnreleased|CryptoBound)$$' -test.benchmem | tee -a $(BIN)/bench-enclave.txt; \
	done
	@awk 'function metric(name) { for (i = 1; i < NF; i++) if ($$(i+1) == name) return $$i; return 0 } \
	     function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 } \
	     /^BenchmarkHandleSign-/ { r = metric("signs/s"); rc = metric("cpu-us/op") } \
	     /^BenchmarkHandleSignUnreleased-/ { u = metric("signs/s"); rel[++nr] = r / u } \
	     /^BenchmarkCryptoBound-/ { c = metric("signs/s"); cc = metric("cpu-us/op"); n++; ratio[n] = r / c; cpu[n] = cc / rc; lo = (n == 1 || ratio[n] < lo) ? ratio[n] : lo; hi = (n == 1 || ratio[n] > hi) ? ratio[n] : hi; \
	       printf "run %d: enclave alone %.0f signs/s, crypto bound %.0f signs/s in the same run: ratio %.2f; in CPU time per request %.2f\n", n, r, c, ratio[n], cpu[n] } \
	     END { if (nr) printf "release after persistence: median ratio %.2f of the rate without waiting, over %d runs\n", median(rel, nr), nr; \
	           if (n) printf "enclave alone against the crypto bound: median ratio %.2f over %d runs, each pair measured back to back (%.2f to %.2f); in CPU time per request %.2f (target 0.8)\n", median(ratio, n), n, lo, hi, median(cpu, n) }' $(BIN)/bench-enclave.txt
	$(BIN)/nitrosign bench --duration $(BENCH_DURATION) --clients $(BENCH_CLIENTS) --enclave-bench $(BIN)/bench-enclave.txt

## bench-floor: the floor of the end-to-end path on this machine: the same
## processes and hops as make bench's end-to-end runs (load generator, a bare
## net/http host, a unix socket, an enclave process) doing nothing but the
## crypto bound's work, and with an fsynced audit batch before each answer;
## what no implementation of this topology can beat here (internal/floor)
bench-floor:
	$(GO) run ./internal/floor -runs $(FLOOR_RUNS)

## bench-micro: the Go micro-benchmarks of the formats and the codec
bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem ./ethtx ./calldata ./ethmsg ./proto ./audit ./enclave

## soak: $(SOAK_REQUESTS) sign requests end to end (about ten minutes): no
## error, the host's and the enclave's resident memory flat after the
## warm-up, and exactly one persisted audit record per signature; not part
## of make test
soak: build
	$(BIN)/nitrosign soak --requests $(SOAK_REQUESTS) --clients $(SOAK_CLIENTS)

## fuzz: every fuzz target, in both modules, for $(FUZZTIME) each
fuzz:
	@set -e; for mod in . $(CROSSCHECK); do \
		for pkg in $$(cd $$mod && $(GO) list ./...); do \
			dir=$$(cd $$mod && $(GO) list -f '{{.Dir}}' $$pkg); \
			for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
				echo "== $$pkg $$f"; \
				(cd $$mod && $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$pkg); \
			done; \
		done; \
	done

clean:
	rm -rf $(BIN)
