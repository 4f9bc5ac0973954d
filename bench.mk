bench:
	bash bench/run.sh
.PHONY: bench

## make soak-agents: 5,000 simulated agents (~5 edges each, examples/agent_swarm.rs) on a
## 10 s cycle against a real `serve` for SOAK_MINUTES minutes (default 60 here): every
## result stored exactly once, serve's RSS flat; figures to docs/BENCHMARKS.md "Agent soak".
## Knobs: see the head of bench/agents_bench.sh (SOAK_AGENTS, SOAK_CYCLE, ...). Not in `make test`.
AGENT_SOAK_MINUTES = $(if $(filter file undefined,$(origin SOAK_MINUTES)),60,$(SOAK_MINUTES))
AGENT_SOAK_RESULTS = $(or $(BENCH_DIR),$(or $(TMPDIR),/tmp)/edgewatch-bench)/results-soak
soak-agents:
	@scripts/install-deps.sh postgres
	$(CARGO) build --release --locked --bin edgewatch --example agent_swarm
	@status=0; SOAK_MINUTES=$(AGENT_SOAK_MINUTES) bash bench/agents_bench.sh $(AGENT_SOAK_RESULTS) soak || status=$$?; \
	  if [ -f $(AGENT_SOAK_RESULTS)/agents-soak.json ]; then \
	    python3 bench/agents_section.py $(AGENT_SOAK_RESULTS) soak --into docs/BENCHMARKS.md; fi; \
	  exit $$status
.PHONY: soak-agents
