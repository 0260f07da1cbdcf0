#!/usr/bin/env bash
# Regenerate docs/hub-conformance.md: huggingface_hub's own tests against a fresh `hubui localhub`.
# Needs the package index once (the sdist is cached under ~/.cache/hubui/conformance).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m tests.conformance --out docs/hub-conformance.md "$@"
