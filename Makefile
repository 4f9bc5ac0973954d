# The two commands: `make demo` and `make test`. Both install what is missing first.

CARGO ?= cargo
# The embedded PostgreSQL cluster the tests share (each test makes its own database in it).
EDGEWATCH_TEST_DATA_DIR ?= $(or $(TMPDIR),/tmp)/edgewatch-test-$(shell id -u)
export EDGEWATCH_TEST_DATA_DIR
DATA_DIR ?= .edgewatch

.PHONY: all build deps test-deps demo test soak lint clean-test-db

all: build

deps:
	@scripts/install-deps.sh postgres dot

# The tests also need a real PowerDNS (auth, bind backend, recursor), dig, and for the
# network-namespace lab iproute2, nftables, fping and mtr-tiny; for the report, graphviz
# and chromium; for rotating a tailed log, logrotate; pgbouncer (tests/pgbouncer.rs).
test-deps:
	@scripts/install-deps.sh postgres pdns lab nagios report tail deploy tls pgbouncer
	@scripts/install-schemathesis.sh >/dev/null

build:
	$(CARGO) build --locked

## make demo: build, make sure PostgreSQL's server binaries are there, load the sample fleet
demo: deps build
	./target/debug/edgewatch --data-dir $(DATA_DIR) demo

## make test: install what is missing, then run every test on a real (embedded) PostgreSQL
test: test-deps
	@$(MAKE) --no-print-directory clean-test-db
	$(CARGO) build --locked --workspace --all-targets
	$(CARGO) test --locked --workspace --all-targets; status=$$?; \
	  $(MAKE) --no-print-directory clean-test-db; exit $$status

## make soak: the network-namespace lab (root) under 2 % random loss for SOAK_MINUTES
## minutes (default 10), the Nagios check always OK; then a flapping link, WARNING at most
SOAK_MINUTES ?= 10
soak: test-deps
	SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) test --locked --test netns_faults -- --ignored --nocapture soak

## make lint: rustfmt, clippy, and the shape rules (every file's //! line, no non-test
## function over 100 lines: scripts/lint-shape.py)
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	scripts/lint-shape.py

# Stop the shared test cluster (if this or an earlier run left one) and remove it.
clean-test-db:
	@if [ -d "$(EDGEWATCH_TEST_DATA_DIR)" ]; then \
	  ./target/debug/edgewatch --data-dir "$(EDGEWATCH_TEST_DATA_DIR)" db stop >/dev/null 2>&1 || true; \
	  rm -rf "$(EDGEWATCH_TEST_DATA_DIR)"; fi

# make bench: parse, ingest, probing, topology (and the Nagios check on it) and the nightly
# report; results in docs/BENCHMARKS.md (BENCH_ONLY=section... for some of them)
include bench.mk
