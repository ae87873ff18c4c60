# The two commands of the README.
.PHONY: run test bench

# GPU=cuda|vulkan|metal|cpu chooses the engine's GPU backend (default: CUDA when nvcc and an
# NVIDIA GPU are found, Metal on Apple silicon, else the CPU).
GPU ?=

run:  ## install everything, then start storyteller on the bundled default model
	@GPU=$(GPU) bash scripts/setup.sh run
	@.venv/bin/storyteller

test:  ## install everything, then run the whole test suite
	@GPU=$(GPU) bash scripts/test.sh

bench:  ## run the benchmarks and write their results
	@bash scripts/setup.sh test
	@.venv/bin/python -m bench
