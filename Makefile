# integritee-go: the three binaries and the checks CI runs.
GO ?= go
BIN ?= bin
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build test check lint demo bench bench-sidechain bench-parentchain fuzz faults clean

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The README's test command: formatting, vet, staticcheck, unit and end-to-end tests.
test: lint
	$(GO) test -count=1 -timeout 15m ./...

# Unit tests only (no binaries started).
check:
	$(GO) test -short -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Starts two nodes and three validateers (integritee-localnet) and runs the demo.
demo: build
	./scripts/demo.sh

# Every benchmark scenario of docs/benchmarks.md, then a summary of their
# machine-readable last lines (about 10 minutes; BENCH_SECONDS per load).
BENCH_SECONDS ?= 30
bench: build
	./scripts/bench.sh $(BENCH_SECONDS)

# The headline: one validateer, direct transfers among 10,000 accounts.
bench-sidechain: build
	./scripts/bench-sidechain.sh --accounts 10000 --duration $(BENCH_SECONDS)s

bench-parentchain: build
	./scripts/bench-parentchain.sh

# Runs every fuzz target for FUZZTIME each (corpora in testdata/fuzz) with
# FUZZPARALLEL workers (default: all cores) and prints a summary.
FUZZTIME ?= 20s
FUZZPARALLEL ?=
fuzz:
	FUZZPARALLEL=$(FUZZPARALLEL) ./scripts/fuzz.sh $(FUZZTIME)

# The fault-injection scenarios of docs/RELIABILITY.md (long versions), all of them three
# times in a row, each ending with integritee-cli check-invariants (about an hour).
faults:
	./scripts/faults.sh all 3

clean:
	rm -rf $(BIN)
