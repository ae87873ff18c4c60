#!/usr/bin/env bash
# Install everything (scripts/setup.sh test) and run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit $?
# The layers of DESIGN.md (import-linter contracts in pyproject.toml) and ruff's error rules.
.venv/bin/lint-imports || { echo "storyteller: an import breaks the layers (see above)." >&2; exit 1; }
.venv/bin/ruff check storyteller || exit 1
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "storyteller: pytest collected no tests; that is a failure." >&2
    exit 1
fi
exit "$status"
