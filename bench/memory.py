"""Peak memory and phase timings of ``pipeline.convert`` (export + parity) for resnet50 with random weights.

Run from the repository root::

    .venv/bin/python bench/memory.py            # fp32 and fp16, one fresh subprocess each
    .venv/bin/python bench/memory.py --steps    # also a step-by-step breakdown (same steps, called one by one)

Each case runs in its own interpreter so that its peak RSS is its own. The child imports ``torch``, ``timm`` and
``hubui.pipeline``, takes that RSS as the baseline, then runs :func:`hubui.pipeline.iter_convert` into a temporary
folder. At every event it records the time, the current RSS and the peak RSS since the previous event (Linux
``VmHWM``, reset between events by writing ``5`` to ``/proc/self/clear_refs``). Where the reset is not allowed,
only the whole run's peak (``getrusage(RUSAGE_SELF).ru_maxrss``) is reported.

The headline figure is "peak RSS above baseline", in MB (10**6 bytes) and as a multiple of the model's fp32
weight bytes (resnet50: 25.6 M parameters and buffers, about 102 MB). Results go to ``bench/results_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results_memory.json"
ARCHITECTURE = "resnet50"
PRECISIONS = ("fp32", "fp16")
MB = 1_000_000
_STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
# iter_convert yields an event *before* each step, and its first parity event only after the first batch.
PIPELINE_PHASES = {
    "load": "load_model: build the model with seeded random weights",
    "export": "export_model: cast, write model.safetensors and config.json",
    "rebuild": "rebuild_from_folder, parity inputs, compare_weights and the first parity batch",
    "parity": "the remaining parity batches, the verdict and parity.json",
}


# --- measuring (in the child) -----------------------------------------------------------------------
def read_status() -> dict[str, int]:
    """``VmRSS``, ``VmHWM``, ``RssAnon``, ``RssFile`` of this process, in bytes (Linux), or {} elsewhere."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    out = {}
    for key in _STATUS_KEYS:
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if match:
            out[key] = int(match.group(1)) * 1024
    return out


def reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False if the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def maxrss_bytes() -> int:
    """``ru_maxrss`` in bytes (Linux reports kB, macOS bytes)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


class AnonSampler(threading.Thread):
    """Samples ``RssAnon`` every few milliseconds and keeps its maximum since the last :meth:`take`.

    ``VmHWM`` counts file-backed pages too, e.g. a safetensors file mapped while it is read, which are
    clean page cache rather than memory the process allocated; this tells the two apart (approximately:
    a spike shorter than the interval can be missed).
    """

    def __init__(self, interval_s: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._max = read_status().get("RssAnon", 0)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            value = read_status().get("RssAnon", 0)
            with self._lock:
                self._max = max(self._max, value)

    def take(self) -> int:
        """The maximum since the last call, then start again from the current value."""
        current = read_status().get("RssAnon", 0)
        with self._lock:
            peak, self._max = max(self._max, current), current
        return peak

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class PhaseMeter:
    """Time and peak RSS of consecutive phases, measured from a baseline."""

    def __init__(self) -> None:
        status = read_status()
        self.baseline = status.get("VmRSS") or maxrss_bytes()
        self.baseline_anon = status.get("RssAnon")
        self.resettable = reset_peak()
        self.phases: list[dict[str, Any]] = []
        self._name: str | None = None
        self._start = 0.0
        self._sampler = AnonSampler() if self.baseline_anon is not None else None
        if self._sampler is not None:
            self._sampler.start()

    def mark(self, name: str | None) -> None:
        """End the running phase (if any) and start ``name`` (None: just end)."""
        now = time.perf_counter()
        if self._name is not None:
            status = read_status()
            peak = status.get("VmHWM") if self.resettable else None
            anon = self._sampler.take() if self._sampler is not None else None
            self.phases.append(
                {
                    "phase": self._name,
                    "covers": PIPELINE_PHASES.get(self._name, self._name),
                    "seconds": round(now - self._start, 3),
                    "peak_rss_bytes": peak,
                    "peak_above_baseline_bytes": None if peak is None else peak - self.baseline,
                    "peak_anon_above_baseline_bytes": None if anon is None else anon - self.baseline_anon,
                    "rss_after_bytes": status.get("VmRSS"),
                    "anon_after_bytes": status.get("RssAnon"),
                    "file_after_bytes": status.get("RssFile"),
                }
            )
        if self.resettable:
            reset_peak()
        if name is None and self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        elif self._sampler is not None:
            self._sampler.take()
        self._name, self._start = name, time.perf_counter()

    def peak(self) -> int:
        peaks = [p["peak_rss_bytes"] for p in self.phases if p["peak_rss_bytes"] is not None]
        return max(peaks) if self.resettable and peaks else maxrss_bytes()


def _weight_bytes(model: Any) -> int:
    """Bytes of every floating tensor of the state dict, in fp32."""
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def run_pipeline_case(architecture: str, precision: str) -> dict[str, Any]:
    """One ``iter_convert`` run; phases are the spans between its events."""
    start = time.perf_counter()
    import timm  # noqa: F401 - part of the baseline
    import torch  # noqa: F401 - part of the baseline

    from hubui import pipeline
    from hubui.pipeline import ConvertOptions
    from hubui.spec import ModelSpec

    import_s = time.perf_counter() - start
    meter = PhaseMeter()
    result = None
    with tempfile.TemporaryDirectory(prefix="hubui-bench-") as tmp:
        options = ConvertOptions(Path(tmp) / "export", precision=precision)
        previous = None
        for event in pipeline.iter_convert(ModelSpec("timm", architecture, seed=0), options):
            # A phase runs from its stage's first event to the next stage's; consecutive parity events are one.
            if event.stage != previous:
                meter.mark(None if event.stage == "done" else event.stage)
                previous = event.stage
            if event.result is not None:
                result = event.result
        if result is None:
            raise RuntimeError("iter_convert ended without a result")
        files = dict(result.export.files)
    verdict = result.report.verdict
    return _case_record(architecture, precision, "pipeline", meter, result.loaded.model, files, import_s, verdict)


def run_steps_case(architecture: str, precision: str) -> dict[str, Any]:
    """The same work as ``iter_convert``, one public function at a time, to tell the steps apart."""
    start = time.perf_counter()
    import timm  # noqa: F401 - part of the baseline
    import torch  # noqa: F401 - part of the baseline

    from hubui import pipeline  # noqa: F401 - same baseline as the pipeline case
    from hubui.export import export_model, rebuild_from_folder
    from hubui.loading import load_model
    from hubui.parity import build_parity_inputs, compare_weights, run_parity
    from hubui.spec import ModelSpec

    import_s = time.perf_counter() - start
    meter = PhaseMeter()
    with tempfile.TemporaryDirectory(prefix="hubui-bench-") as tmp:
        meter.mark("load_model")
        loaded = load_model(ModelSpec("timm", architecture, seed=0))
        meter.mark("export_model")
        export = export_model(loaded, Path(tmp) / "export", precision=precision)
        meter.mark("rebuild_from_folder")
        rebuilt = rebuild_from_folder(export.folder)
        meter.mark("build_parity_inputs")
        inputs = build_parity_inputs(loaded.data_config)
        meter.mark("compare_weights")
        weights = compare_weights(loaded.model, export.folder / "model.safetensors", precision)
        meter.mark("forward_batches")
        report = run_parity(loaded, rebuilt, precision, inputs=inputs)
        meter.mark(None)
        if not (report.passed and weights.identical):
            raise RuntimeError(f"the step-by-step run did not pass: {report.reasons} {weights.names}")
        files = dict(export.files)
    return _case_record(architecture, precision, "steps", meter, loaded.model, files, import_s, report.verdict)


def _case_record(
    architecture: str,
    precision: str,
    mode: str,
    meter: PhaseMeter,
    model: Any,
    files: dict[str, int],
    import_s: float,
    verdict: str,
) -> dict[str, Any]:
    weight_bytes = _weight_bytes(model)
    peak = meter.peak()
    above = peak - meter.baseline
    peak_phase = max(meter.phases, key=lambda p: p["peak_rss_bytes"] or 0)["phase"] if meter.resettable else None
    anon = [p["peak_anon_above_baseline_bytes"] for p in meter.phases if p["peak_anon_above_baseline_bytes"]]
    return {
        "architecture": architecture,
        "precision": precision,
        "mode": mode,
        "verdict": verdict,
        "import_s": round(import_s, 3),
        "total_s": round(sum(p["seconds"] for p in meter.phases), 3),
        "baseline_rss_bytes": meter.baseline,
        "peak_rss_bytes": peak,
        "peak_above_baseline_bytes": above,
        "peak_above_baseline_mb": round(above / MB, 1),
        "weights_fp32_bytes": weight_bytes,
        "peak_above_baseline_x_weights": round(above / weight_bytes, 2),
        "peak_phase": peak_phase,
        "peak_anon_above_baseline_bytes": max(anon) if anon else None,
        "peak_anon_above_baseline_x_weights": round(max(anon) / weight_bytes, 2) if anon else None,
        "per_phase_peaks": meter.resettable,
        "bytes_written": sum(files.values()),
        "files": files,
        "phases": meter.phases,
    }


# --- driving (in the parent) ------------------------------------------------------------------------
def run_child(mode: str, architecture: str, precision: str) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, architecture, precision]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"case {mode} {architecture} {precision} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import safetensors
    import timm
    import torch

    import hubui

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "safetensors": safetensors.__version__,
        "hubui": hubui.__version__,
    }


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:8.1f}"


def format_table(cases: list[dict[str, Any]]) -> Iterator[str]:
    yield (
        f"{'case':<22} {'baseline MB':>11} {'peak MB':>8} {'above MB':>8} {'x fp32 w':>8} "
        f"{'anon above MB':>13} {'x fp32 w':>8} {'written MB':>10} {'total s':>7}"
    )
    for c in cases:
        name = f"{c['architecture']} {c['precision']} {c['mode']}"
        anon_x = c["peak_anon_above_baseline_x_weights"]
        yield (
            f"{name:<22} {_mb(c['baseline_rss_bytes']):>11} {_mb(c['peak_rss_bytes']):>8} "
            f"{_mb(c['peak_above_baseline_bytes']):>8} {c['peak_above_baseline_x_weights']:>8.2f} "
            f"{_mb(c['peak_anon_above_baseline_bytes']):>13} {'-' if anon_x is None else f'{anon_x:.2f}':>8} "
            f"{_mb(c['bytes_written']):>10} {c['total_s']:>7.2f}"
        )
    yield ""
    yield f"{'case / phase':<32} {'seconds':>8} {'peak above MB':>13} {'anon above MB':>13} {'RSS after MB':>12}"
    for c in cases:
        yield f"{c['architecture']} {c['precision']} {c['mode']}"
        for p in c["phases"]:
            yield (
                f"  {p['phase']:<30} {p['seconds']:>8.2f} {_mb(p['peak_above_baseline_bytes']):>13} "
                f"{_mb(p['peak_anon_above_baseline_bytes']):>13} {_mb(p['rss_after_bytes']):>12}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", action="store_true", help="also run the step-by-step breakdown")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "ARCH", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        mode, architecture, precision = args.child
        runners: dict[str, Callable[[str, str], dict[str, Any]]] = {
            "pipeline": run_pipeline_case,
            "steps": run_steps_case,
        }
        sys.stdout.write(json.dumps(runners[mode](architecture, precision)) + "\n")
        return 0

    modes = ("pipeline", "steps") if args.steps else ("pipeline",)
    cases = []
    for mode in modes:
        for precision in PRECISIONS:
            sys.stderr.write(f"running {ARCHITECTURE} {precision} ({mode}) in a fresh interpreter...\n")
            cases.append(run_child(mode, ARCHITECTURE, precision))
    results = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "units": "bytes unless named _mb (10**6 bytes) or _s (seconds); x_weights is a multiple of the fp32 "
        "weight bytes",
        "cases": cases,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for line in format_table(cases):
        sys.stdout.write(line + "\n")
    sys.stdout.write(f"\nwrote {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
