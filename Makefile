# The two commands of the README.
.PHONY: run test bench

run:  ## install everything, then start storyteller on the bundled default model
	@bash scripts/setup.sh run
	@.venv/bin/storyteller

test:  ## install everything, then run the whole test suite
	@bash scripts/test.sh

bench:  ## run the benchmarks and write their results
	@bash scripts/setup.sh test
	@.venv/bin/python -m bench
