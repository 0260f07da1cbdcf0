#!/usr/bin/env bash
# Install hubui into .venv and start the app.
# Without HF_ENDPOINT it runs on an embedded local Hub with a demo user (works offline);
# with HF_ENDPOINT set (e.g. https://huggingface.co) it runs against that Hub.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
if [ -n "${HF_ENDPOINT:-}" ]; then
  exec "$VENV/bin/hubui" app "$@"
fi
exec "$VENV/bin/hubui" demo "$@"
