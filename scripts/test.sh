#!/usr/bin/env bash
# Install hubui with its test extras into .venv and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_localhub_api.py -k whoami`.
HUBUI_EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
