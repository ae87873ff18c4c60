"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench engine prompt``."""

from __future__ import annotations

import importlib
import json
import sys

BENCHES = {"engine": "bench.engine_bench", "prompt": "bench.prompt_bench"}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        try:
            module = importlib.import_module(BENCHES[name])
        except ModuleNotFoundError as exc:
            print(f"{name}: not available ({exc})", file=sys.stderr)
            continue
        print(f"== {name}", flush=True)
        print(json.dumps(module.run(), indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
