"""Checkpoints that grow far beyond their size when loaded are refused before torch.load reads them.

Issue 15 item 12: a 1 MB ``.pth`` (torch's format is a zip; its entries may be deflated) grew to 1.5 GB in the
CLI and the app, and the app's error showed the server's temporary path. hubui now sums the sizes the zip
declares before loading and refuses above its limits, naming the file by its base name only.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import timm
import torch

import hubui
from hubui.errors import CheckpointError
from hubui.loading import read_checkpoint
from hubui.spec import ModelSpec

ARCH = "test_resnet"
BOMB_BYTES = 400 * 2**20  # what the bomb declares: far above what a test may allocate


def _deflated(state: dict, path: Path) -> Path:
    """``torch.save`` writes stored zip entries; rewrite them deflated, as a bomb does."""
    buf = io.BytesIO()
    torch.save(state, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A test_resnet state dict plus one all-zeros tensor: about 2 MB on disk, 400 MB more once loaded."""
    state = dict(timm.create_model(ARCH).state_dict())
    state["padding"] = torch.zeros(BOMB_BYTES // 4)
    path = _deflated(state, tmp_path_factory.mktemp("bomb") / "small.pth")
    assert path.stat().st_size < 3 * 2**20  # test_resnet's own random weights are most of it
    return path


def test_the_bomb_is_real(tmp_path):
    """torch.load reads a deflated zip, and what it builds is as big as the zip declares."""
    small = _deflated({"w": torch.zeros(2**20)}, tmp_path / "deflated.pth")
    assert small.stat().st_size < 64 * 1024
    assert torch.load(small, weights_only=True)["w"].numel() == 2**20
    declared = sum(i.file_size for i in zipfile.ZipFile(small).infolist())
    assert declared >= 4 * 2**20


def _assert_refused_by_name(text: str, path: Path) -> None:
    assert path.name in text
    assert str(path.parent) not in text, f"the message shows the folder: {text}"
    assert re.search(r"\b40\d\.\d MiB", text), text  # the size it would take: the 400 MiB tensor and the weights


def test_core_refuses_a_zip_bomb_before_loading(bomb, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was called on a zip bomb")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(bomb)
    _assert_refused_by_name(info.value.message, bomb)
    with pytest.raises(CheckpointError):
        hubui.load_model(ModelSpec("timm", ARCH, checkpoint=str(bomb)))


def test_a_checkpoint_many_times_the_architecture_is_refused(tmp_path, monkeypatch):
    """Stored (not compressed) entries, 90 MB: the expansion is 1x, but test_resnet's weights are ~2 MB."""
    state = dict(timm.create_model(ARCH).state_dict())
    state["extra"] = torch.ones(90 * 2**20 // 4)
    path = tmp_path / "big.pth"
    torch.save(state, path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(CheckpointError) as info:
        hubui.load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert "big.pth" in info.value.message and ARCH in info.value.message
    assert str(tmp_path) not in info.value.message


def test_more_than_the_free_memory_is_refused(bomb, tmp_path, monkeypatch):
    from hubui import checkpoint_limits

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 200 kB\n")
    monkeypatch.setattr(checkpoint_limits, "MEMINFO", meminfo)
    state = dict(timm.create_model(ARCH).state_dict())
    path = tmp_path / "fits.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="available"):
        read_checkpoint(path)


def test_a_normal_checkpoint_still_loads(tmp_path):
    model = timm.create_model(ARCH)
    path = tmp_path / "ok.pth"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    assert set(read_checkpoint(path).state_dict) == set(model.state_dict())
    deflated = _deflated({"state_dict": model.state_dict()}, tmp_path / "ok-deflated.pth")
    assert set(read_checkpoint(deflated).state_dict) == set(model.state_dict())  # compressed, but not a bomb


def _rss_peak_mb(proc_status: str) -> float:
    line = next(x for x in proc_status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _cli_with_peak(checkpoint: Path) -> subprocess.Popen:
    """`hubui convert --checkpoint FILE` that prints its own /proc status (VmHWM: peak RSS) when it ends."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    code = (
        "import atexit, sys, pathlib; "
        "atexit.register(lambda: print('PEAK', pathlib.Path('/proc/self/status').read_text(), file=sys.stderr)); "
        "from hubui.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [sys.executable, "-c", code, "convert", "--model", ARCH, "--checkpoint", str(checkpoint), "--out", "x"]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=checkpoint.parent
    )


def test_cli_refuses_the_bomb_without_allocating_it(bomb, tmp_path):
    # The baseline: the same command refusing a corrupt file at the same step (torch and timm imported).
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK not really a zip")
    procs = [_cli_with_peak(bomb), _cli_with_peak(corrupt)]
    (_, err), (_, base_err) = (p.communicate(timeout=300) for p in procs)
    assert procs[0].returncode == 2 and procs[1].returncode == 2, (err, base_err)
    assert "Traceback" not in err
    _assert_refused_by_name(err.split("PEAK", 1)[0], bomb)
    peak, baseline = _rss_peak_mb(err.split("PEAK", 1)[1]), _rss_peak_mb(base_err.split("PEAK", 1)[1])
    assert peak < baseline + 100, f"peak RSS {peak:.0f} MB against {baseline:.0f} MB: the bomb was loaded"
    assert not (bomb.parent / "x").exists()


def test_ui_handler_refuses_the_bomb_without_the_server_path(bomb, tmp_path):
    import shutil

    import gradio as gr

    from hubui.ui import handlers
    from hubui.ui.state import Session

    # Gradio keeps an upload in its own temporary folder: that path must never reach the visitor.
    upload = tmp_path / "gradio" / "0123456789abcdef" / "my-finetune.pth"
    upload.parent.mkdir(parents=True)
    shutil.copy(bomb, upload)
    session = Session(scratch_root=tmp_path / "scratch")
    run = handlers.run_convert(session, "timm", ARCH, None, str(upload), "fp32", "preset", None, "", False)
    with pytest.raises(gr.Error) as info:
        for _ in run:
            pass
    text = info.value.message
    assert "my-finetune.pth" in text
    assert str(tmp_path) not in text and "0123456789abcdef" not in text, text
    assert "scratch" not in text


def test_ui_errors_never_show_the_upload_folder(tmp_path):
    """Any checkpoint error (here a corrupt file) names the upload by its name, not its server path."""
    import gradio as gr

    from hubui.ui import handlers
    from hubui.ui.state import Session

    upload = tmp_path / "gradio" / "fedcba9876543210" / "broken.pth"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"not a checkpoint at all")
    session = Session(scratch_root=tmp_path / "scratch")
    with pytest.raises(gr.Error) as info:
        for _ in handlers.run_convert(session, "timm", ARCH, None, str(upload), "fp32", "preset", None, "", False):
            pass
    assert "broken.pth" in info.value.message
    assert "fedcba9876543210" not in info.value.message, info.value.message
