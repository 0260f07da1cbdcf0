"""What hubui costs against doing it by hand: wall time per phase, peak memory, bytes written, push speed and
the time to the first streamed parity result.

Run from the repository root (it is a script, not a test)::

    .venv/bin/python bench/perf.py                 # every case, a few minutes on 2 cores
    .venv/bin/python bench/perf.py --quick         # resnet50 fp32 only: hubui, baseline, push
    .venv/bin/python bench/perf.py --case hubui-resnet50-fp32 --case baseline-resnet50-fp32
    .venv/bin/python bench/perf.py --list          # the case names

Every case runs in its own fresh interpreter (so its peak RSS is its own) on this machine's CPU, with seeded
random weights (nothing is downloaded). It prints a table and the targets with pass/fail, and writes
``bench/results.json`` with the machine (platform, CPUs, RAM, load average, versions) and one record per case.

Cases (``MODEL`` is ``resnet50`` (timm) or ``vit_b_32`` (open_clip ViT-B-32), ``P`` is ``fp32`` or ``fp16``):

* ``hubui-MODEL-P``: :func:`hubui.pipeline.iter_convert` (load, export, rebuild, parity), timed per phase.
* ``baseline-MODEL-P``: the libraries' own flow doing the same work, written as their documentation shows it:
  build the model, save it with the library's helper and ``safe_serialization='both'`` (``timm.models.save_for_hf``
  / ``open_clip.push_to_hf_hub.save_for_hf``; fp16 saves a half copy of the model), reload it from the folder
  (``timm.create_model('local-dir:...')`` / ``open_clip.create_model_from_pretrained('local-dir:...')``) and run
  the original and the reloaded model on the same parity images (and, for open_clip, the same prompts), one image
  at a time as in the libraries' usage snippets (timm's without ``torch.no_grad()``, open_clip's under it), then
  compare the outputs.
* ``careful-resnet50-P``: the timm baseline under ``torch.no_grad()``, for reference.
* ``push-MODEL``: push hubui's fp32 export of MODEL to a local Hub (``hubui localhub`` on loopback, fresh repo,
  :func:`hubui.publishing.push`) and copy the same files over a plain loopback HTTP PUT to a minimal sink that
  writes them to disk; MB/s of each.

See ``bench/README.md`` for what each column means.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
MB = 1_000_000
sys.path.insert(0, str(HERE))
from memory import PhaseMeter, read_status, reset_peak  # noqa: E402 - the same meter as bench/memory.py
from watchdog import meminfo, note_phase, run_watched  # noqa: E402

MODELS = {
    "resnet50": ("timm", "resnet50"),
    "vit_b_32": ("open_clip", "ViT-B-32"),
    "vit_l_14": ("open_clip", "ViT-L-14"),  # 428 M parameters, 1.7 GB in fp32
    "vit_bigg_14": ("open_clip", "ViT-bigG-14"),  # 2.54 B parameters, 10.2 GB in fp32
}
# Cases of these run only when named (--large, --case, --cases): minutes each, and bigG needs ~22 GB.
LARGE_MODELS = ("vit_l_14", "vit_bigg_14")
# hubui's case of these pushes the converted folder to the local Hub (and verifies it) in the same process, so
# that the 10 GB conversion is not done twice.
PUSH_AFTER_CONVERT = ("hubui-vit_bigg_14-fp32",)
_PUSH_AFTER_ENV = "HUBUI_PERF_PUSH_AFTER"  # --push-after, for the children
_WORK_ENV = "HUBUI_PERF_WORK"  # the case's work folder, made and removed by the parent
GIB = 1 << 30
RSS_CEILING_GIB = 20.0  # the watchdog stops a case whose RSS reaches this (bench/watchdog.py)
MEM_AVAILABLE_FLOOR_GIB = 1.0  # ... or when the machine's MemAvailable falls under this
PRECISIONS = ("fp32", "fp16")
TARGETS = {
    "time_ratio": 0.6,  # hubui convert + parity wall time / the baseline's, same model and precision
    "peak_x_weights": 2.05,  # peak RSS above the interpreter's baseline / fp32 weight bytes (issue 18)
    "upload_ratio": 0.7,  # push MB/s / loopback copy MB/s
    "first_result_s": 3.0,  # first streamed parity result for resnet50, from the start of the convert call
}


def _push_after() -> set[str]:
    return set(PUSH_AFTER_CONVERT) | {n for n in os.environ.get(_PUSH_AFTER_ENV, "").split(",") if n}


def default_cases() -> list[str]:
    """The cases a plain run does: the small models."""
    small = [m for m in MODELS if m not in LARGE_MODELS]
    names = [f"{kind}-{m}-{p}" for m in small for p in PRECISIONS for kind in ("hubui", "baseline")]
    # open_clip's documented flow already runs under torch.no_grad(); timm's model card snippet does not.
    careful = [f"careful-{m}-{p}" for m in small if MODELS[m][0] == "timm" for p in PRECISIONS]
    return names + careful + [f"push-{m}" for m in small]


def large_cases() -> list[str]:
    """fp32 only: hubui and the library flow of each large model (bigG's hubui case also pushes)."""
    return [f"{kind}-{m}-fp32" for m in LARGE_MODELS for kind in ("hubui", "baseline")] + [
        f"floor-{m}-fp32" for m in ("vit_b_32", "vit_l_14")
    ]


def all_cases() -> list[str]:
    return default_cases() + large_cases()


class Meter(PhaseMeter):
    """:class:`PhaseMeter` plus the process's CPU time per phase (all threads), which a busy machine inflates
    less than the wall time, so ratios taken from it are steadier there."""

    def __init__(self) -> None:
        super().__init__()
        self._cpu_start = time.process_time()

    def mark(self, name: str | None) -> None:
        note_phase(name or "the end of the case")
        now = time.process_time()
        before = len(self.phases)
        super().mark(name)
        if len(self.phases) > before:
            self.phases[-1]["cpu_s"] = round(now - self._cpu_start, 3)
        self._cpu_start = time.process_time()


QUICK_CASES = ["hubui-resnet50-fp32", "baseline-resnet50-fp32", "careful-resnet50-fp32", "push-resnet50"]


# --- helpers (child) --------------------------------------------------------------------------------
def _folder_bytes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _weight_bytes(model: Any) -> int:
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


def _folder_weight_fp32_bytes(folder: Path) -> int:
    """fp32 bytes of the floating tensors in the folder's safetensors files, read from their headers: hubui
    releases the original model during the conversion, so the weights are counted from what it wrote."""
    total = 0
    # Not the hidden files: .hubui-reference.safetensors holds the kept outputs, not weights.
    for path in sorted(q for q in folder.glob("*.safetensors") if not q.name.startswith(".")):
        with path.open("rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        for key, info in header.items():
            if key != "__metadata__" and info["dtype"] in _FLOAT_DTYPES:
                numel = 1
                for dim in info["shape"]:
                    numel *= dim
                total += numel * 4
    return total


def _import_baseline() -> float:
    """Import what both flows need, so that the baseline RSS is the same for hubui and the libraries."""
    start = time.perf_counter()
    import open_clip  # noqa: F401
    import safetensors.torch  # noqa: F401
    import timm  # noqa: F401
    import torch  # noqa: F401

    from hubui import pipeline  # noqa: F401

    return time.perf_counter() - start


def _record(
    name: str, meter: Meter, weight_bytes: int, files: dict[str, int], import_s: float, **extra: Any
) -> dict[str, Any]:
    peak = meter.peak()
    anon = [p["peak_anon_above_baseline_bytes"] for p in meter.phases if p["peak_anon_above_baseline_bytes"]]
    anon_peak = max(anon) if anon else None
    return {
        "case": name,
        "import_s": round(import_s, 3),
        "total_s": round(sum(p["seconds"] for p in meter.phases), 3),
        "cpu_total_s": round(sum(p["cpu_s"] for p in meter.phases), 3),
        "seconds": {p["phase"]: p["seconds"] for p in meter.phases},
        "cpu_seconds": {p["phase"]: p["cpu_s"] for p in meter.phases},
        "baseline_rss_bytes": meter.baseline,
        "peak_rss_bytes": peak,
        "peak_above_baseline_bytes": peak - meter.baseline,
        "peak_anon_above_baseline_bytes": anon_peak,
        "weights_fp32_bytes": weight_bytes,
        "peak_x_weights": round((peak - meter.baseline) / weight_bytes, 3),
        "peak_anon_x_weights": None if anon_peak is None else round(anon_peak / weight_bytes, 3),
        "per_phase_peaks": meter.resettable,
        "bytes_written": sum(files.values()),
        "files": files,
        "phases": meter.phases,
        **extra,
    }


# --- hubui --------------------------------------------------------------------------------------------
HUBUI_PHASES = {
    "load": "load_model: build the model with seeded random weights",
    "export": "from the first export event to the first reference event (writing the folder starts here)",
    "reference": "the rest of the writing, the original's outputs on the parity inputs (at the same time), "
    "the tensor-by-tensor weights check; then the original is released",
    "rebuild": "rebuild_from_folder with the library's own loader",
    "parity": "the rebuilt model's outputs against the kept ones, the verdict, parity.json and the kept outputs",
}


def run_hubui(
    name: str, model_key: str, precision: str, work: Path, batch_size: int | None, push_after: bool = False
) -> dict[str, Any]:
    """``iter_convert``, a phase per stage (a phase starts at the stage's first event)."""
    import_s = _import_baseline()
    from hubui import pipeline
    from hubui.pipeline import ConvertOptions
    from hubui.spec import ModelSpec

    library, arch = MODELS[model_key]
    meter = Meter()
    marks: dict[str, float] = {}
    result = None
    first: float | None = None
    options = ConvertOptions(work / "export", precision=precision)
    if batch_size is not None:
        options = replace(options, batch_size=batch_size)
    start = time.perf_counter()
    for event in pipeline.iter_convert(ModelSpec(library, arch, seed=0), options):
        if event.stage == "done":
            first = first or time.perf_counter()  # a single batch: the final report is the first
            meter.mark(None)
            result = event.result
        elif event.stage not in marks:
            marks[event.stage] = time.perf_counter()
            meter.mark(event.stage)
        elif event.stage == "parity" and first is None and event.report is not None and event.report.batches_done:
            first = time.perf_counter()
    if result is None:
        raise RuntimeError("iter_convert ended without a result")
    for phase in meter.phases:
        phase["covers"] = HUBUI_PHASES.get(phase["phase"], phase["phase"])
    folder = result.export.folder
    record = _record(
        name,
        meter,
        _folder_weight_fp32_bytes(folder),
        _folder_bytes(folder),
        import_s,
        verdict=result.report.verdict,
        batch_size=options.batch_size,
        batches=result.report.batches_total,
        first_result_from_convert_s=round(first - start, 3) if first else None,
        first_result_from_parity_s=round(first - marks["parity"], 3) if first and "parity" in marks else None,
    )
    if push_after:
        del result, event
        record["push"] = _push_and_verify(model_key, folder, record["baseline_rss_bytes"])
    return record


def _push_and_verify(model_key: str, folder: Path, baseline_rss: int) -> dict[str, Any]:
    """``hubui.pipeline.publish`` of the folder to the local Hub (fresh repo), verification included: what
    ``hubui push --from FOLDER`` does. Timed and measured on its own (its peak is not the conversion's)."""
    import gc

    from hubui import pipeline
    from hubui.publishing import PushRequest

    gc.collect()
    note_phase("push")
    reset_peak()
    times: dict[str, float] = {}
    real_push = pipeline.push

    def timed_push(*args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return real_push(*args, **kwargs)
        finally:
            times["push_s"] = time.perf_counter() - begun
            note_phase("push verification (download, rebuild, parity against the kept outputs)")

    def on_report(report: Any) -> None:
        times.setdefault("first_verify_report_s", time.perf_counter() - start)

    pipeline.push = timed_push  # type: ignore[assignment]
    repo_id = f"bench/{model_key}-{secrets.token_hex(4)}"
    start = time.perf_counter()
    published = pipeline.publish(PushRequest(folder, repo_id), None, verify=True, on_report=on_report)
    total = time.perf_counter() - start
    pushed = sum(f.size for f in published.push.files)
    status = read_status()
    verification = published.verification
    return {
        "repo_id": repo_id,
        "bytes_pushed": pushed,
        "push_s": round(times["push_s"], 3),
        "push_mb_s": round(pushed / MB / times["push_s"], 1),
        "push_and_verify_s": round(total, 3),
        "first_verify_report_s": round(times["first_verify_report_s"], 3) if "first_verify_report_s" in times else None,
        "verification": None if verification is None else verification.status,
        "peak_above_baseline_bytes": status["VmHWM"] - baseline_rss if "VmHWM" in status else None,
    }


# --- the libraries' own flow ------------------------------------------------------------------------
class _NoTokenizerFiles:
    """open_clip's CLIP BPE tokenizer has no files to save (open_clip rebuilds it from ``model_cfg``), but
    ``save_for_hf`` calls ``tokenizer.save_pretrained``; its ``push_to_hf_hub`` would substitute a tokenizer
    downloaded from the Hub, which is unreachable here and not what was loaded."""

    def save_pretrained(self, _directory: Any) -> None:
        return None


def _parity_images() -> list[Any]:
    """The images hubui's parity uses, in its order: the shipped photographs, then the synthetic ones."""
    from hubui.parity.inputs import load_image, real_image_paths, synthetic_images

    return [load_image(p)[1] for p in real_image_paths()] + [img for _, img in synthetic_images()]


def run_baseline(name: str, model_key: str, precision: str, work: Path, no_grad: bool = False) -> dict[str, Any]:
    import_s = _import_baseline()
    import copy

    import torch

    library, arch = MODELS[model_key]
    folder = work / "export"
    meter = Meter()
    meter.mark("load")
    torch.manual_seed(0)  # (the random initialisation is the weights here, as in hubui's load)
    if library == "timm":
        import timm

        model = timm.create_model(arch).eval()
    else:
        import open_clip

        model = open_clip.create_model(arch, pretrained=None).eval()
        tokenizer = open_clip.get_tokenizer(arch)
    meter.mark("export")
    to_save = model if precision == "fp32" else copy.deepcopy(model).half()
    if library == "timm":
        timm.models.save_for_hf(to_save, str(folder), safe_serialization="both")
    else:
        from open_clip.push_to_hf_hub import save_for_hf

        model_config = open_clip.get_model_config(arch)
        save_for_hf(to_save, _NoTokenizerFiles(), model_config, str(folder), safe_serialization="both")
    del to_save
    meter.mark("rebuild")
    if library == "timm":
        reloaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        cfg = timm.data.resolve_model_data_config(model)
        transform = timm.data.create_transform(**cfg, is_training=False)
    else:
        reloaded, transform = open_clip.create_model_from_pretrained(f"local-dir:{folder}")
        reloaded.eval()
        reloaded_tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    meter.mark("parity")
    worst = 0.0
    if library == "timm":
        # timm's model card snippet: one image at a time, `model(transforms(img).unsqueeze(0))`, with no
        # torch.no_grad() (autograd keeps each forward's activations until its output is freed). The `careful-`
        # cases add torch.no_grad(), as a user who knows would.
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            for img in _parity_images():
                x = transform(img).unsqueeze(0)
                worst = max(worst, float((model(x) - reloaded(x)).abs().max()))
    else:
        from hubui.parity.adapters import parity_prompts

        # open_clip's README: under torch.no_grad(), encode the image and the prompts, then the zero-shot logits.
        prompts = parity_prompts(None)
        with torch.no_grad():
            text_a = model.encode_text(tokenizer(prompts), normalize=True)
            text_b = reloaded.encode_text(reloaded_tokenizer(prompts), normalize=True)
            worst = float((text_a - text_b).abs().max())
            for img in _parity_images():
                x = transform(img).unsqueeze(0)
                img_a = model.encode_image(x, normalize=True)
                img_b = reloaded.encode_image(x, normalize=True)
                logits_a = (100.0 * img_a @ text_a.T).softmax(dim=-1)
                logits_b = (100.0 * img_b @ text_b.T).softmax(dim=-1)
                worst = max(worst, float((img_a - img_b).abs().max()), float((logits_a - logits_b).abs().max()))
    meter.mark(None)
    return _record(name, meter, _weight_bytes(model), _folder_bytes(folder), import_s, max_abs_diff=worst, batches=8)


# --- push ---------------------------------------------------------------------------------------------
PUSH_REPEATS = 3


def run_push(name: str, model_key: str, work: Path) -> dict[str, Any]:
    """Convert (untimed), then time hubui's push of the folder and a plain loopback HTTP copy of its files.

    Each is repeated :data:`PUSH_REPEATS` times, interleaved (push to a fresh repo, loopback copy, uvicorn null
    sink), and the medians are compared. On these VMs the first write into memory the guest has not touched for
    a while is several times slower than a later one (measured: 605 MB written in 2.1 s, then 0.16 s after the
    file was deleted), so a single run measures whichever of the two writers came first.
    """
    import statistics

    _import_baseline()
    from hubui import pipeline
    from hubui.pipeline import ConvertOptions
    from hubui.publishing import PushRequest, push
    from hubui.spec import ModelSpec

    library, arch = MODELS[model_key]
    result = pipeline.convert(ModelSpec(library, arch, seed=0), ConvertOptions(work / "export"))
    folder = result.export.folder
    files = _folder_bytes(folder)
    copied = sum(files.values())
    push_times, copy_times, asgi_times = [], [], []
    pushed_bytes = 0
    for i in range(PUSH_REPEATS):
        repo_id = f"bench/{model_key}-{secrets.token_hex(4)}"
        card = pipeline.make_card(folder, repo_id)
        start = time.perf_counter()
        pushed = push(PushRequest(folder, repo_id), card)
        push_times.append(time.perf_counter() - start)
        pushed_bytes = sum(f.size for f in pushed.files)
        copy_times.append(_loopback_copy(folder, sorted(files), work / f"sink-{i}", _SINK))
        # The same PUTs to the local Hub's own HTTP stack (uvicorn) running an app that drops the body: the most
        # any upload to that server can reach on this machine, whatever the client does.
        asgi_times.append(_loopback_copy(folder, sorted(files), work / f"asgi-sink-{i}", _ASGI_SINK))
        shutil.rmtree(work / f"sink-{i}", ignore_errors=True)
    push_s, copy_s, asgi_s = (statistics.median(t) for t in (push_times, copy_times, asgi_times))
    push_mbs, copy_mbs = pushed_bytes / MB / push_s, copied / MB / copy_s
    return {
        "case": name,
        "repeats": PUSH_REPEATS,
        "bytes_pushed": pushed_bytes,
        "push_s": round(push_s, 3),
        "push_s_each": [round(t, 3) for t in push_times],
        "push_mb_s": round(push_mbs, 1),
        "bytes_copied": copied,
        "loopback_copy_s": round(copy_s, 3),
        "loopback_copy_s_each": [round(t, 3) for t in copy_times],
        "loopback_mb_s": round(copy_mbs, 1),
        "upload_ratio": round(push_mbs / copy_mbs, 3),
        "uvicorn_null_sink_s": round(asgi_s, 3),
        "uvicorn_null_sink_mb_s": round(copied / MB / asgi_s, 1),
        "files": files,
    }


_SINK = r"""
import http.server, sys
from pathlib import Path
root = Path(sys.argv[1])
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_PUT(self):
        left = int(self.headers["Content-Length"])
        with open(root / Path(self.path).name, "wb") as f:
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                f.write(chunk)
                left -= len(chunk)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


_ASGI_SINK = r"""
import socket, sys, uvicorn
async def app(scope, receive, send):
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(64)  # connections wait in the backlog until uvicorn accepts them
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
"""


def _loopback_copy(folder: Path, names: list[str], sink_dir: Path, server: str) -> float:
    """PUT every file, streamed from disk, to ``server`` (a Python program run in another process)."""
    sink_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", server, str(sink_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for rel in names:
            path = folder / rel
            with path.open("rb") as f:
                conn.request("PUT", f"/{path.name}", body=f, headers={"Content-Length": str(path.stat().st_size)})
                conn.getresponse().read()
        conn.close()
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return elapsed


@contextlib.contextmanager
def local_hub(root: Path) -> Iterator[dict[str, str]]:
    """``hubui localhub`` on loopback with one write user; yields the environment that points at it."""
    token = secrets.token_hex(16)
    cmd = [sys.executable, "-m", "hubui", "localhub", "--root", str(root / "hub"), "--port", "0"]
    cmd += ["--user", f"bench:{token}:write"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the local Hub did not start (first line {url!r})")
        yield {"HF_ENDPOINT": url, "HF_TOKEN": token, "HF_HOME": str(root / "hf_home")}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- driving (parent) ---------------------------------------------------------------------------------
class Stopped(Exception):
    """The watchdog stopped the case (its record says where and at how much RSS)."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["summary"])
        self.record = record


def run_child(
    name: str,
    env: dict[str, str] | None = None,
    batch_size: int | None = None,
    rss_ceiling_gib: float = RSS_CEILING_GIB,
    mem_floor_gib: float = MEM_AVAILABLE_FLOOR_GIB,
) -> dict[str, Any]:
    """Run one case in a fresh interpreter under the watchdog and return its record.

    Raises:
        Stopped: The watchdog killed it (RSS ceiling or the machine's memory floor).
        RuntimeError: It failed.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    child_env = {**os.environ, **(env or {}), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    context = {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_before": _loadavg(),
        "mem_available_before_bytes": meminfo("MemAvailable"),
    }
    # The parent owns the case's work folder: a child the watchdog kills cannot clean up after itself (a stopped
    # ViT-bigG-14 case left 19 GB behind when the child made its own temporary folder).
    work = Path(tempfile.mkdtemp(prefix="hubui-perf-"))
    child_env[_WORK_ENV] = str(work)
    try:
        watched = run_watched(cmd, child_env, ROOT, int(rss_ceiling_gib * GIB), int(mem_floor_gib * GIB))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    context["loadavg_after"] = _loadavg()
    if watched.stopped is not None:
        trace = [{"s": t, "rss_bytes": rss} for t, rss in watched.trace]
        raise Stopped({"case": name, **context, **watched.stopped, "rss_trace": trace})
    if watched.returncode != 0:
        raise RuntimeError(f"case {name} failed (exit {watched.returncode}):\n{watched.stderr[-4000:]}")
    record = json.loads(watched.stdout.strip().splitlines()[-1])
    record["process_s"] = round(watched.seconds, 2)
    record["max_sampled_rss_bytes"] = watched.max_rss_bytes
    record.update(context)
    return dict(record)


def run_floor(name: str, model_key: str, batch_size: int | None) -> dict[str, Any]:
    """What no flow doing the same work can go below: the model's load (random init, as both flows do) plus the
    forward passes over the parity inputs in hubui's batches, once for the original and once for the rebuilt model
    (measured once here and counted twice: the rebuilt model is the same architecture on the same inputs)."""
    _import_baseline()
    import torch

    from hubui.libraries import get_format
    from hubui.loading import load_model
    from hubui.parity import auto_batch_size, build_parity_inputs
    from hubui.parity.kept import iter_reference
    from hubui.spec import ModelSpec

    library, arch = MODELS[model_key]
    start = time.perf_counter()
    loaded = load_model(ModelSpec(library, arch, seed=0))
    load_s = time.perf_counter() - start
    fmt = get_format(library)
    pair = fmt.pair(loaded, None)
    inputs = build_parity_inputs(loaded.data_config, (), library=library)
    size = batch_size or fmt.parity_batch_size or auto_batch_size(loaded.model, tuple(inputs.pixels.shape[1:]))
    start = time.perf_counter()
    for _ in iter_reference(loaded, pair, inputs, size, torch.device("cpu")):
        pass
    forward_s = time.perf_counter() - start
    return {
        "case": name,
        "load_s": round(load_s, 3),
        "forward_s": round(forward_s, 3),
        "floor_s": round(load_s + 2 * forward_s, 3),
        "batch_size": size,
        "images": len(inputs),
    }


def child(name: str, batch_size: int | None) -> dict[str, Any]:
    kind, model_key, *rest = name.split("-")
    given = os.environ.get(_WORK_ENV)
    with contextlib.nullcontext(given) if given else tempfile.TemporaryDirectory(prefix="hubui-perf-") as tmp:
        work = Path(tmp)
        if kind == "hubui":
            return run_hubui(name, model_key, rest[0], work, batch_size, push_after=name in _push_after())
        if kind == "floor":
            return run_floor(name, model_key, batch_size)
        if kind in ("baseline", "careful"):
            return run_baseline(name, model_key, rest[0], work, no_grad=kind == "careful")
        return run_push(name, model_key, work)


def machine(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> dict[str, Any]:
    import huggingface_hub
    import open_clip
    import safetensors
    import timm
    import torch

    import hubui

    ram = read_meminfo_total()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "ram_bytes": ram,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "versions": {
            "torch": torch.__version__,
            "timm": timm.__version__,
            "open_clip_torch": open_clip.__version__,
            "safetensors": safetensors.__version__,
            "huggingface_hub": huggingface_hub.__version__,
            "hubui": hubui.__version__,
        },
    }


def read_meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _loadavg() -> tuple[float, ...]:
    return tuple(round(v, 2) for v in os.getloadavg()) if hasattr(os, "getloadavg") else ()


def evaluate(
    cases: dict[str, dict[str, Any]], stopped: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Each target against the measured figures: one row per target and case that it applies to."""
    rows: list[dict[str, Any]] = []
    for name, rec in (stopped or {}).items():
        rows.append(
            {
                "target": "completes on this machine",
                "case": name,
                "measured": None,
                "limit": rec["summary"],
                "met": False,
            }
        )
    for name, rec in cases.items():
        kind, model_key, *rest = name.split("-")
        if kind == "hubui":
            base = cases.get(f"baseline-{model_key}-{rest[0]}")
            if base is not None:
                ratio = rec["total_s"] / base["total_s"]
                rows.append(_row("wall time vs baseline", name, ratio, TARGETS["time_ratio"], "x", "<="))
                cpu_ratio = rec["cpu_total_s"] / base["cpu_total_s"]
                rows.append(_row("(CPU time vs baseline)", name, cpu_ratio, TARGETS["time_ratio"], "x", "<="))
            floor = cases.get(f"floor-{model_key}-{rest[0]}")
            if floor is not None and base is not None:
                # Whether the time target can be met at all: the load and the forward passes both flows must do.
                ratio = floor["floor_s"] / base["total_s"]
                rows.append(_row("(compute floor vs baseline)", name, ratio, TARGETS["time_ratio"], "x", "<="))
            careful = cases.get(f"careful-{model_key}-{rest[0]}")
            if careful is not None:
                ratio = rec["total_s"] / careful["total_s"]
                rows.append(_row("(wall time vs careful baseline)", name, ratio, TARGETS["time_ratio"], "x", "<="))
            if rec.get("push") is not None:
                push = rec["push"]
                rows.append(
                    {
                        "target": "pushes to the local Hub and verifies",
                        "case": name,
                        "measured": None,
                        "limit": f"verification {push['verification']!r}, parity {rec['verdict']!r}",
                        "met": push["verification"] == "passed" and rec["verdict"] == "pass",
                    }
                )
            rows.append(_row("peak RSS above baseline", name, rec["peak_x_weights"], TARGETS["peak_x_weights"]))
            if rec.get("peak_anon_x_weights") is not None:
                rows.append(
                    _row("peak anon RSS above baseline", name, rec["peak_anon_x_weights"], TARGETS["peak_x_weights"])
                )
            if model_key == "resnet50":
                rows.append(
                    _row(
                        "first streamed parity result",
                        name,
                        rec["first_result_from_convert_s"],
                        TARGETS["first_result_s"],
                        "s",
                    )
                )
        elif kind == "push":
            rows.append(_row("upload speed vs loopback", name, rec["upload_ratio"], TARGETS["upload_ratio"], "x", ">="))
    return rows


def _row(target: str, case: str, value: float, limit: float, unit: str = "x w", op: str = "<=") -> dict[str, Any]:
    ok = value <= limit if op == "<=" else value >= limit
    return {"target": target, "case": case, "measured": round(value, 3), "limit": f"{op} {limit} {unit}", "met": ok}


def _fmt(value: Any, spec: str = "6.2f") -> str:
    return "-" if value is None else format(value, spec)


def format_tables(cases: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> Iterator[str]:
    yield (
        f"{'case':<26} {'load s':>6} {'export':>6} {'ref':>6} {'rebuild':>7} {'parity':>6} {'total s':>7} "
        f"{'CPU s':>6} {'peak MB':>8} {'x w':>5} {'anon x w':>8} {'written MB':>10} {'1st result s':>12}"
    )
    for name, c in cases.items():
        if name.startswith(("push-", "floor-")):
            continue
        s = c["seconds"]
        first = c.get("first_result_from_convert_s")
        first_txt = "-" if first is None else f"{first:.2f} ({c['first_result_from_parity_s']:.2f})"
        yield (
            f"{name:<26} {_fmt(s.get('load')):>6} {_fmt(s.get('export')):>6} {_fmt(s.get('reference')):>6} "
            f"{_fmt(s.get('rebuild')):>7} "
            f"{_fmt(s.get('parity')):>6} {c['total_s']:>7.2f} {c['cpu_total_s']:>6.1f} "
            f"{c['peak_above_baseline_bytes'] / MB:>8.1f} "
            f"{c['peak_x_weights']:>5.2f} {_fmt(c.get('peak_anon_x_weights'), '8.2f'):>8} "
            f"{c['bytes_written'] / MB:>10.1f} {first_txt:>12}"
        )
    pushes = [c for n, c in cases.items() if n.startswith("push-")]
    if pushes:
        yield ""
        yield (
            f"{'push case':<24} {'MB':>8} {'push s':>7} {'push MB/s':>9} {'copy s':>7} {'copy MB/s':>9} {'ratio':>6} "
            f"{'uvicorn null sink MB/s':>22}"
        )
        for c in pushes:
            yield (
                f"{c['case']:<24} {c['bytes_pushed'] / MB:>8.1f} {c['push_s']:>7.2f} {c['push_mb_s']:>9.1f} "
                f"{c['loopback_copy_s']:>7.2f} {c['loopback_mb_s']:>9.1f} {c['upload_ratio']:>6.2f} "
                f"{c['uvicorn_null_sink_mb_s']:>22.1f}"
            )
    yield ""
    yield f"{'target':<30} {'case':<24} {'measured':>9} {'limit':>12}  met"
    for r in rows:
        measured = "-" if r["measured"] is None else f"{r['measured']:.3f}"
        yield f"{r['target']:<30} {r['case']:<24} {measured:>9} {r['limit']:>12}  {'yes' if r['met'] else 'NO'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_CASES)}")
    parser.add_argument("--case", action="append", default=[], metavar="NAME", help="run this case (repeatable)")
    parser.add_argument("--cases", default="", metavar="A,B", help="run these cases (comma-separated)")
    parser.add_argument("--large", action="store_true", help="also the large models' cases (ViT-L-14, ViT-bigG-14)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other cases of the existing results file (each record says when it ran); same names replaced",
    )
    parser.add_argument(
        "--rss-ceiling-gib", type=float, default=RSS_CEILING_GIB, help="the watchdog stops a case at this RSS"
    )
    parser.add_argument(
        "--mem-floor-gib",
        type=float,
        default=MEM_AVAILABLE_FLOOR_GIB,
        help="... or when the machine's MemAvailable falls under this",
    )
    parser.add_argument(
        "--push-after",
        action="append",
        default=[],
        metavar="NAME",
        help="this hubui case also pushes its folder to the local Hub and verifies it (as the bigG case does)",
    )
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="parity batch size of the hubui cases (default: hubui's own)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        sys.stdout.write(json.dumps(child(args.child, args.batch_size)) + "\n")
        return 0
    if args.list:
        sys.stdout.write("\n".join(all_cases()) + "\n")
        return 0
    names = args.case + [n for n in args.cases.split(",") if n]
    if not names:
        names = QUICK_CASES if args.quick else default_cases() + (large_cases() if args.large else [])
    unknown = sorted(set(names) - set(all_cases()))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; see --list")

    if args.push_after:
        os.environ[_PUSH_AFTER_ENV] = ",".join(args.push_after)
    load_before = _loadavg()
    started = time.perf_counter()
    cases: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    stopped: dict[str, dict[str, Any]] = {}
    hub_root = Path(tempfile.mkdtemp(prefix="hubui-perf-hub-"))
    try:
        with contextlib.ExitStack() as stack:
            hub_env: dict[str, str] | None = None
            for name in names:
                pushes = name.startswith("push-") or name in _push_after()
                if pushes and hub_env is None:
                    hub_env = stack.enter_context(local_hub(hub_root))
                sys.stderr.write(f"running {name} in a fresh interpreter (load average {_loadavg()})...\n")
                try:
                    cases[name] = run_child(
                        name, hub_env if pushes else None, args.batch_size, args.rss_ceiling_gib, args.mem_floor_gib
                    )
                except Stopped as exc:
                    sys.stderr.write(f"{exc}\n")
                    stopped[name] = exc.record
                except RuntimeError as exc:  # one broken case must not lose the others' figures
                    sys.stderr.write(f"{exc}\n")
                    failed[name] = str(exc)[-2000:]
    finally:
        shutil.rmtree(hub_root, ignore_errors=True)
    run_machine = machine(load_before, _loadavg())
    if args.merge and args.out.exists():
        cases, stopped, failed = _merged(json.loads(args.out.read_text()), cases, stopped, failed)
    rows = evaluate(cases, stopped)
    results = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": run_machine,
        "run_s": round(time.perf_counter() - started, 1),
        "units": "bytes unless named _mb (10**6 bytes), _s (seconds) or _x (a ratio); x_weights is a multiple of "
        "the model's fp32 weight bytes",
        "targets": TARGETS,
        "cases": list(cases.values()),
        "failed": failed,
        "stopped_by_watchdog": list(stopped.values()),
        "evaluation": rows,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for line in format_tables(cases, rows):
        sys.stdout.write(line + "\n")
    for record in stopped.values():
        sys.stdout.write(f"\ncase {record['case']}: {record['summary']}")
    for name in failed:
        sys.stdout.write(f"\ncase {name} FAILED (see stderr and results.json)")
    sys.stdout.write(f"\nwrote {args.out} ({results['run_s']} s; load average {load_before} -> {_loadavg()})\n")
    return 1 if failed else 0


def _merged(
    previous: dict[str, Any],
    cases: dict[str, dict[str, Any]],
    stopped: dict[str, dict[str, Any]],
    failed: dict[str, str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """This run's records over the previous file's: a case run now replaces its old record, the others stay,
    each marked with the run it came from (``started_utc`` or the old file's ``created``)."""
    now = set(cases) | set(stopped) | set(failed)
    old_cases = {c["case"]: c for c in previous.get("cases", []) if c["case"] not in now}
    for record in old_cases.values():
        record.setdefault("run_created", previous.get("created"))
    old_stopped = {c["case"]: c for c in previous.get("stopped_by_watchdog", []) if c["case"] not in now}
    old_failed = {k: v for k, v in previous.get("failed", {}).items() if k not in now}
    return {**old_cases, **cases}, {**old_stopped, **stopped}, {**old_failed, **failed}


if __name__ == "__main__":
    raise SystemExit(main())
