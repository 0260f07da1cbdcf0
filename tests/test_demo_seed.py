"""Issue 20 item 4: the demo seeds its Hub with one small model of honestly labelled random weights, under the demo
org only, once; on that Hub no pretrained tag is servable, so the app's default is random weights with a note.

The seed itself runs against the session's local Hub (under 'team', where alice may write); `hubui demo` runs as a
subprocess, as a user starts it, and is asked over HTTP what its Hub holds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import torch
from huggingface_hub import HfApi

from hubui.demo_seed import DEMO_REPO, seed_demo_hub
from hubui.loading import load_model
from hubui.servable import clear_servable_cache, default_weights, servable_tags
from hubui.spec import ModelSpec


def test_the_seeded_model_says_random_weights_and_holds_exactly_them(localhub, alice, repo_name):
    repo = f"team/{repo_name}"
    assert seed_demo_hub(localhub.url, localhub.users.alice, repo_id=repo) is True
    commits = len(alice.list_repo_commits(repo))
    assert seed_demo_hub(localhub.url, localhub.users.alice, repo_id=repo) is False  # idempotent: nothing new
    assert len(alice.list_repo_commits(repo)) == commits

    card = Path(alice.hf_hub_download(repo, "README.md")).read_text(encoding="utf-8")
    body = card.split("---", 2)[2]
    first_line = next(line for line in body.splitlines() if line.strip() and not line.startswith("#"))
    assert first_line.startswith("**Random weights: this model was never trained.**")
    assert "- random-weights" in card and "(seed 0)" in card

    # Honest: what the repo holds is the seed-0 random model, loaded back with timm's own hf-hub: loader.
    pushed = load_model(ModelSpec("timm", "test_resnet", hf_hub_id=repo))
    random = load_model(ModelSpec("timm", "test_resnet", seed=0))
    for key, value in random.model.state_dict().items():
        assert torch.equal(pushed.model.state_dict()[key], value), key


def test_hubui_demo_seeds_only_its_own_org_and_defaults_to_random_weights(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_SERVER_PORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", "demo", "--port", "0", "--root", str(tmp_path / "hub")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(300, proc.kill)  # a safety net only: the loop below ends at the app's URL line
    watchdog.start()
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("app:"):
                break
        output = "".join(seen)
        assert "app:" in output, output
        hub = re.search(r"local Hub: (http://\S+)", output).group(1)
        assert f"demo model: {DEMO_REPO} (random weights, seed 0)" in output

        ids = [m["id"] for m in httpx.get(f"{hub}/api/models", timeout=30).json()]
        assert ids == [DEMO_REPO], "the demo seeds one repo, under its own org"
        readme = httpx.get(f"{hub}/{DEMO_REPO}/resolve/main/README.md", timeout=30).text
        assert "Random weights: this model was never trained." in readme

        # On this Hub no pretrained tag of the app's default model can be served: random weights, said so.
        clear_servable_cache()
        tags = servable_tags("timm", "resnet18", endpoint=hub)
        assert tags.answered and tags.servable() == ()
        picked = default_weights(tags, "a1_in1k")
        assert picked.tag is None and "random weights are selected" in picked.note
        assert HfApi(endpoint=hub).repo_exists(DEMO_REPO)
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
