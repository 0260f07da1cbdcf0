"""``python -m tests.conformance [--subset ci] [--out docs/hub-conformance.md] [TEST ...]``.

Runs huggingface_hub's tests against a fresh local Hub, prints the table and writes it to ``--out``.
Exits 1 when an in-scope test failed, 2 when the tests could not be set up.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from tests.conformance.runner import SUBSETS, ConformanceSetupError, markdown, run

COMMAND = "python -m tests.conformance --out docs/hub-conformance.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__)
    parser.add_argument("tests", nargs="*", help="test files or node ids under tests/ (default: all in scope)")
    parser.add_argument("--subset", choices=sorted(SUBSETS), help="a named subset instead")
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder (tests, hub, report.xml) here")
    args = parser.parse_args(argv)
    selection = SUBSETS[args.subset] if args.subset else (args.tests or None)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
    try:
        report = run(selection, keep=args.keep)
    except ConformanceSetupError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    text = markdown(report, COMMAND)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 1 if report.in_scope_failures() else 0


if __name__ == "__main__":
    sys.exit(main())
