#!/usr/bin/env bash
# Install hubui into .venv and start the app.
# Without HF_ENDPOINT it runs on an embedded local Hub with a demo user (works offline);
# with HF_ENDPOINT set (e.g. https://huggingface.co) it runs against that Hub.
# The app gets the transformers conversion target (the `transformers` extra) unless HUBUI_EXTRAS says otherwise:
# HUBUI_EXTRAS="" installs hubui alone, HUBUI_EXTRAS="[transformers,ray]" adds Ray.
HUBUI_EXTRAS="${HUBUI_EXTRAS-[transformers]}"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
if [ -n "${HF_ENDPOINT:-}" ]; then
  exec "$VENV/bin/hubui" app "$@"
fi
exec "$VENV/bin/hubui" demo "$@"
