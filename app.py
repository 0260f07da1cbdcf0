"""Start the hubui app: `python app.py` (uses HF_ENDPOINT, the real Hub by default)."""

from hubui.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["app"]))
