"""Progress that fits a long job (issue 18): each stage of a conversion shows its own progress and the time left.

The CLI is run as a user runs it (a subprocess, stderr piped like a log); the app's convert handler is iterated
the way gradio iterates it. What is asserted is what a person reads: a line per stage, the stage's percentage, an
"about N s left" estimate once one is known, and no flood of lines in a log. Never a timing value: where a bound
depends on time, the test's own clock drives it.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from hubui.cli_progress import StageLines
from hubui.progress import StageTracker, duration_text, time_left_text
from hubui.ui import handlers
from hubui.ui.forms import PRESET_TOLERANCE, RANDOM_WEIGHTS
from hubui.ui.state import Session

ARCH = "test_resnet"  # timm's tiny ResNet, 160 px
STAGES = ("load", "export", "reference", "rebuild", "parity")
TIME_LEFT = re.compile(r"about \d+ (s|min)( \d+ s)? left|about \d+ h \d+ min left")


class FakeClock:
    """The test's own clock: progress is timed against it, so the bounds below never depend on the machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _images(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.new("RGB", (64, 48), (i * 7 % 256, 90, 200 - i)).save(path)
        paths.append(str(path))
    return paths


def _stage_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"[{stage}] ")]


# --- the CLI ----------------------------------------------------------------------------------------
def test_convert_shows_every_stage_its_progress_and_the_time_left_in_a_bounded_log(tmp_path):
    images = _images(tmp_path / "images", 24)  # with --batch-size 1: 30-odd batches per pass over the inputs
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    argv = [sys.executable, "-m", "hubui", "convert", "--model", ARCH, "--batch-size", "1"]
    argv += ["--out", str(tmp_path / "out"), "--images", *images]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    wall_s = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "\r" not in err, "a log must hold whole lines, not a redrawn bar"
    firsts = []
    for stage in STAGES:
        lines = _stage_lines(err, stage)
        assert lines, f"no [{stage}] line in:\n{err}"
        assert any(re.search(r"done in \d", line) for line in lines), f"[{stage}] never says it finished:\n{err}"
        firsts.append(err.index(f"[{stage}] "))
        # At most one line a second per stage, plus its start and end, its first progress line and first estimate
        # (and the loader's few steps).
        assert len(lines) <= 8 + math.ceil(wall_s), f"{len(lines)} [{stage}] lines in {wall_s:.0f} s:\n{err}"
    assert firsts == sorted(firsts), f"the stages are out of order:\n{err}"
    assert _stage_lines(err, "done"), err
    estimates = [line for line in err.splitlines() if TIME_LEFT.search(line)]
    assert estimates, f"no time-left estimate in:\n{err}"
    assert re.search(r"^\[(reference|parity)\] +\d+% ", err, re.MULTILINE), f"no per-stage percentage:\n{err}"


def test_a_log_gets_at_most_about_one_progress_line_a_second_per_stage():
    clock, out = FakeClock(), io.StringIO()
    lines = StageLines(out, tty=False, clock=clock)
    lines.update("reference", "the original's outputs", stage_fraction=0.0)
    for i in range(1, 2001):  # 2000 batches over 20 s of the test's clock
        clock.now += 0.01
        lines.update("reference", f"batch {i}/2000", stage_fraction=i / 2000, eta_s=30.0 - i * 0.01)
    clock.now += 1
    lines.update("rebuild", "rebuilding")
    text = out.getvalue()
    reference = _stage_lines(text, "reference")
    assert 10 <= len(reference) <= 24, text  # one a second (+ start, end, first estimate), not one per batch
    assert re.search(r"done in 20 s", reference[-1]), reference[-1]  # its progress reached 100%
    assert _stage_lines(text, "rebuild") == ["[rebuild] rebuilding"]


def test_stages_that_run_at_the_same_time_each_keep_their_own_lines():
    clock, out = FakeClock(), io.StringIO()
    lines = StageLines(out, tty=False, clock=clock)
    lines.update("export", "writing the folder", stage_fraction=0.0)
    lines.update("reference", "the original's outputs", stage_fraction=0.0)
    for i in range(1, 5):  # the folder is written while the original computes its outputs
        clock.now += 2
        lines.update("export", f"file {i}/4", stage_fraction=i / 4)
        lines.update("reference", f"batch {i}/8", stage_fraction=i / 8, eta_s=20.0)
    clock.now += 2
    lines.update("rebuild", "rebuilding")
    text = out.getvalue()
    export, reference = _stage_lines(text, "export"), _stage_lines(text, "reference")
    assert export[0] == "[export] writing the folder" and export[-1].startswith("[export] done in 8.0 s"), text
    assert reference[-1].startswith("[reference] done in 10 s"), text  # ended by the rebuild's start
    assert text.index("[export] done") > text.index("[reference] the original's outputs"), text


def test_a_stage_with_no_news_still_says_it_runs_and_for_how_long():
    clock, out = FakeClock(), io.StringIO()
    lines = StageLines(out, tty=False, clock=clock)
    lines.update("rebuild", "rebuilding from the folder")
    clock.now += 30
    lines.tick()
    assert _stage_lines(out.getvalue(), "rebuild")[-1] == "[rebuild] still running, 30 s so far"


def test_a_terminal_redraws_one_progress_line_and_keeps_the_stage_lines():
    clock, out = FakeClock(), io.StringIO()
    lines = StageLines(out, tty=True, clock=clock)
    lines.update("parity", "comparing", stage_fraction=0.0)
    for i in range(1, 6):
        clock.now += 1
        lines.update("parity", f"batch {i}/5", stage_fraction=i / 5, eta_s=5.0 - i)
    lines.update("done", "parity pass")
    lines.close()
    text = out.getvalue()
    assert "\r" in text and "batch 3/5" in text
    assert any(line.startswith("[parity] done in 5.0 s") for line in text.replace("\r", "\n").splitlines()), text
    assert text.endswith("\n")


def test_the_time_left_reads_like_a_person_would_say_it():
    assert time_left_text(None) == ""
    assert time_left_text(0.2) == "about 1 s left"
    assert time_left_text(42.4) == "about 42 s left"
    assert time_left_text(200) == "about 3 min 20 s left"
    assert time_left_text(3 * 3600 + 5 * 60) == "about 3 h 5 min left"
    assert duration_text(0.31) == "0.3 s" and duration_text(75) == "1 min 15 s"


def test_the_estimate_counts_down_between_events():
    clock = FakeClock()
    tracker = StageTracker(clock=clock)
    tracker.update("parity", "batch 1/4", stage_fraction=0.25, eta_s=40.0)
    clock.now += 15
    status = tracker.status()
    assert status is not None and status.eta_s == 25.0 and status.elapsed_s == 15.0


# --- the app ----------------------------------------------------------------------------------------
def test_the_app_shows_each_stage_its_progress_and_the_time_left(tmp_path):
    session = Session(scratch_root=tmp_path)
    run = handlers.run_convert(session, "timm", ARCH, RANDOM_WEIGHTS, None, "fp32", PRESET_TOLERANCE, None, "", False)
    texts = [step[1] for step in run if isinstance(step[1], str)]
    assert session.result is not None and session.result.passed
    for stage in STAGES:
        shown = [t for t in texts if re.search(rf"\*\*stage \d of 5: {stage}\*\*", t)]
        assert shown, f"the app never showed the {stage} stage: {texts}"
        assert any("so far" in t for t in shown), f"the {stage} stage never said how long it has run: {shown}"
    assert any(re.search(r"\d+% of this stage", t) for t in texts), texts
    assert any(TIME_LEFT.search(t) for t in texts), texts
    assert re.match(r"\*\*done\*\* in \d", texts[-1]) and "finished: load" in texts[-1], texts[-1]
    assert str(tmp_path) not in "".join(texts), "a server folder was shown to the visitor"


# --- a batch's live lines ---------------------------------------------------------------------------
def test_a_batch_log_names_each_stage_of_an_entry_once_even_when_stages_interleave():
    from hubui.batching.report import LiveDisplay

    out = io.StringIO()
    display = LiveDisplay(1, out, tty=False)
    display.event(0, "alice/m", "load", "loading")
    for i in range(50):  # the folder is written while the original computes its outputs: their events alternate
        display.event(0, "alice/m", "export", f"writing, step {i}")
        display.event(0, "alice/m", "reference", f"reference outputs batch {i}/50")
    display.event(0, "alice/m", "rebuild", "rebuilding")
    lines = out.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "loading", "writing, step 0", "reference outputs batch 0/50", "rebuilding"
    ], lines  # fmt: skip
