#!/usr/bin/env bash
# Install hubui with its test extras into .venv and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_localhub_api.py -k whoami`.
HUBUI_EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser download cannot
# work offline). Install it when missing: as root directly, otherwise through sudo if allowed.
if [ -z "${HUBUI_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "error: the browser tests need Chromium; install it (Debian: 'apt-get install chromium') or set" >&2
    echo "       HUBUI_CHROMIUM to a Chromium binary, then run this again." >&2
    exit 1
  fi
fi
exec "$VENV/bin/python" -m pytest "$@"
