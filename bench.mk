bench:
	bash bench/run.sh
.PHONY: bench
