# Sourced by scripts/start.sh and scripts/test.sh: create .venv if needed and install hubui into it.
# Works as root (CI) and as a normal user: nothing is installed outside the repo's .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HUBUI_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing hubui${HUBUI_EXTRAS:-} into $VENV (first run downloads torch; later runs are quick)" >&2
# (Some machines list local package indexes that do not exist; pip warns once per package. Drop that noise.)
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -e "$ROOT${HUBUI_EXTRAS:-}" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# timm and open_clip import torchvision; a CPU-only torch wheel would break it, so fail early and clearly.
"$VENV/bin/python" -c "import torchvision" 2>/dev/null || {
  echo "error: torchvision does not import in $VENV (a torch '+cpu' wheel breaks it)." >&2
  echo "hint: remove $VENV and run this again without pinning torch to a '+cpu' build." >&2
  exit 1
}
