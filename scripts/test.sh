#!/usr/bin/env bash
# Install everything (scripts/setup.sh test) and run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit $?
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "storyteller: pytest collected no tests; that is a failure." >&2
    exit 1
fi
exit "$status"
