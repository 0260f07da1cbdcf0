"""What writing the folder during the original's forward passes saves (issue 18, item 2).

Runs, on one loaded model, the folder write and the reference forward passes one after the other, then at the same
time (:func:`hubui.one_model.iter_export_and_reference`), alternating, and prints the wall times as JSON.

    .venv/bin/python bench/overlap.py --library open_clip --model ViT-B-32 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from hubui.libraries import get_format, target_format
from hubui.libraries.base import ExportOptions
from hubui.loading import load_model
from hubui.one_model import Eta, iter_export_and_reference
from hubui.parity import auto_batch_size, build_parity_inputs
from hubui.parity.kept import iter_reference
from hubui.parity.run import _device_of
from hubui.spec import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--library", default="open_clip")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    loaded = load_model(ModelSpec(args.library, args.model))
    fmt = target_format(args.library, "native")
    pair = get_format(args.library).pair(loaded, None)
    inputs = build_parity_inputs(loaded.data_config, (), library=args.library)
    batch = auto_batch_size(loaded.model, tuple(inputs.pixels.shape[1:]))
    device = _device_of(loaded.model)
    options = ExportOptions(args.precision)
    root = Path(tempfile.mkdtemp(prefix="hubui-overlap-"))
    rows: list[dict[str, float | str]] = []
    try:
        for i in range(args.repeat):
            out = root / f"seq-{i}"
            t0 = time.perf_counter()
            fmt.export(loaded, out, options)
            t1 = time.perf_counter()
            for _ in iter_reference(loaded, pair, inputs, batch, device):
                pass
            t2 = time.perf_counter()
            shutil.rmtree(out)
            rows.append({"mode": "sequential", "export_s": t1 - t0, "reference_s": t2 - t1, "total_s": t2 - t0})
            out = root / f"par-{i}"
            t0 = time.perf_counter()
            for _ in iter_export_and_reference(fmt, loaded, out, options, pair, inputs, batch, device, Eta()):
                pass
            rows.append({"mode": "overlapped", "total_s": time.perf_counter() - t0})
            shutil.rmtree(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    seq = min(float(r["total_s"]) for r in rows if r["mode"] == "sequential")
    par = min(float(r["total_s"]) for r in rows if r["mode"] == "overlapped")
    print(
        json.dumps(
            {
                "model": f"{args.library} {args.model}",
                "precision": args.precision,
                "images": len(inputs),
                "batch_size": batch,
                "runs": rows,
                "best_sequential_s": seq,
                "best_overlapped_s": par,
                "saved_s": seq - par,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
