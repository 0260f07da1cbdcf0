"""`hubui batch` on a real local Ray head (127.0.0.1, 2 CPUs) and through the local process pool, against the
local Hub: four small models (timm and open_clip, one with a broken checkpoint), re-runs, and a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from _batch import hubui_commits, read_json, run_cli, seed_tiny_open_clip, start_ray_head, write_manifest
from huggingface_hub import HfApi, hf_hub_download
from safetensors.torch import load_file

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_head():
    head = start_ray_head(num_cpus=2)
    try:
        yield head
    finally:
        head.stop()  # also when a test failed: no Ray process outlives the module


@pytest.fixture(scope="module")
def zoo(localhub, tmp_path_factory):
    """A manifest of four small models: timm test_resnet and test_vit, a tiny open_clip from the Hub, and
    test_resnet with a broken checkpoint. ``entries(prefix)`` makes it for repos named after ``prefix``."""
    tmp = tmp_path_factory.mktemp("zoo")
    alice = localhub.users.alice
    clip_repo = f"alice/clip-src-{uuid.uuid4().hex[:8]}"
    seed_tiny_open_clip(tmp, clip_repo, alice)
    broken = tmp / "broken.pth"
    broken.write_bytes(b"this is not a checkpoint")

    def entries(prefix: str) -> list[dict]:
        return [
            {"model": "test_resnet", "repo_id": f"alice/{prefix}-resnet"},
            {"model": "test_vit", "repo_id": f"alice/{prefix}-vit", "precision": "fp16"},
            {
                "library": "open_clip",
                "model": "tiny-clip-batch",
                "hf_hub_id": clip_repo,
                "repo_id": f"alice/{prefix}-clip",
            },
            {"model": "test_resnet", "checkpoint": str(broken), "repo_id": f"alice/{prefix}-broken"},
        ]

    return tmp, entries


@pytest.fixture(scope="module")
def ray_run(localhub, zoo, ray_head):
    """The four-model manifest run once on Ray with two workers."""
    tmp, entries = zoo
    prefix = f"rb-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(
        tmp / f"{prefix}.yaml", entries(prefix), {"library": "timm", "allow_random_weights": True}
    )
    args = [str(manifest), "--ray", ray_head.address, "--workers", "2"]
    proc = run_cli(
        [*args, "--report", str(tmp / f"{prefix}.json"), "--report", str(tmp / f"{prefix}.md")], alice(localhub)
    )
    return prefix, manifest, args, proc, read_json(tmp / f"{prefix}.json"), (tmp / f"{prefix}.md").read_text()


def alice(localhub) -> str:
    return localhub.users.alice


def test_ray_batch_of_four_gives_three_verified_repos_and_one_failed_entry(localhub, ray_run):
    prefix, _, _, proc, report, markdown = ray_run
    assert proc.returncode == 1, proc.stderr[-3000:]
    verdicts = {e["repo_id"].rsplit("-", 1)[1]: e for e in report["entries"]}
    assert {k: v["verdict"] for k, v in verdicts.items()} == {
        "resnet": "verified", "vit": "verified", "clip": "verified", "broken": "failed",
    }  # fmt: skip
    assert report["runner"] == "ray" and report["workers"] == 2
    broken = verdicts["broken"]
    assert "CheckpointError" in broken["error"] and "broken.pth" in broken["error"] and broken["hint"]
    api = HfApi(endpoint=localhub.url)
    for name in ("resnet", "vit", "clip"):
        repo = f"alice/{prefix}-{name}"
        entry = verdicts[name]
        assert [c.commit_id for c in hubui_commits(api, repo)] == [entry["commit"]]
        assert read_json(Path(hf_hub_download(repo, "parity.json")))["verdict"] == "pass"
        assert entry["max_abs_diff"] is not None and entry["peak_memory_bytes"] > 0
    assert not api.repo_exists(f"alice/{prefix}-broken")  # a failed entry creates nothing
    # What the user reads: the final table on stdout and the Markdown report name each verdict and the error.
    assert "CheckpointError" in proc.stdout and "3 verified" in proc.stdout
    assert "| 3 | alice/" in markdown and "CheckpointError" in markdown and "verified" in markdown
    assert localhub.users.alice not in proc.stdout + proc.stderr + markdown


def test_ray_batch_run_again_makes_no_new_commit(localhub, ray_run):
    prefix, _, args, _, _, _ = ray_run
    api = HfApi(endpoint=localhub.url)
    before = {n: [c.commit_id for c in hubui_commits(api, f"alice/{prefix}-{n}")] for n in ("resnet", "vit", "clip")}
    proc = run_cli([*args, "--json"], alice(localhub))
    assert proc.returncode == 1, proc.stderr[-3000:]  # the broken entry still fails
    again = {e["repo_id"].rsplit("-", 1)[1]: e for e in json.loads(proc.stdout)["entries"]}
    for name, commits in before.items():
        assert again[name]["verdict"] == "skipped"
        assert again[name]["commit"] == commits[0]
        assert [c.commit_id for c in hubui_commits(api, f"alice/{prefix}-{name}")] == commits
    assert again["broken"]["verdict"] == "failed"


def _weights(repo: str) -> dict[str, torch.Tensor]:
    files = [f for f in HfApi().list_repo_files(repo) if f.endswith(".safetensors")]
    assert len(files) == 1, files
    return load_file(hf_hub_download(repo, files[0]))


def test_local_pool_gives_the_same_repos_and_report(localhub, zoo, ray_run):
    tmp, entries = zoo
    ray_prefix, _, _, _, ray_report, _ = ray_run
    prefix = f"lb-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(
        tmp / f"{prefix}.yaml", entries(prefix), {"library": "timm", "allow_random_weights": True}
    )
    proc = run_cli([str(manifest), "--workers", "2", "--report", str(tmp / f"{prefix}.json")], alice(localhub))
    assert proc.returncode == 1, proc.stderr[-3000:]
    local = read_json(tmp / f"{prefix}.json")
    assert local["runner"] == "local"
    api = HfApi(endpoint=localhub.url)
    for r, lo in zip(ray_report["entries"], local["entries"], strict=True):
        name = r["repo_id"].rsplit("-", 1)[1]
        assert lo["repo_id"] == f"alice/{prefix}-{name}"
        assert (lo["verdict"], lo["parity"], lo["error"], lo["hint"]) == (
            r["verdict"],
            r["parity"],
            r["error"],
            r["hint"],
        )
        if r["verdict"] != "verified":
            continue
        ray_repo, local_repo = r["repo_id"], lo["repo_id"]
        assert sorted(api.list_repo_files(ray_repo)) == sorted(api.list_repo_files(local_repo))
        a, b = _weights(ray_repo), _weights(local_repo)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert len(hubui_commits(api, local_repo)) == 1
    assert ray_prefix != prefix


def test_killed_ray_batch_resumes_without_duplicate_commits(localhub, zoo, ray_head):
    tmp, entries = zoo
    prefix = f"kb-{uuid.uuid4().hex[:6]}"
    good = entries(prefix)[:3]
    good.append({"model": "test_resnet", "seed": 1, "repo_id": f"alice/{prefix}-resnet1"})
    manifest = write_manifest(tmp / f"{prefix}.yaml", good, {"library": "timm", "allow_random_weights": True})
    args = [str(manifest), "--ray", ray_head.address, "--workers", "2"]
    env = {**os.environ, "HF_TOKEN": alice(localhub)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", "batch", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        for line in proc.stderr:  # the live lines: kill the run as soon as its first entry is verified
            if ": verified (" in line:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
    api = HfApi(endpoint=localhub.url)
    repos = [e["repo_id"] for e in good]
    landed = [r for r in repos if hubui_commits(api, r)]
    assert 1 <= len(landed) < len(repos)  # really mid-way

    done = run_cli([*args, "--json"], alice(localhub))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert {e["verdict"] for e in report["entries"]} <= {"verified", "skipped"}
    for entry in report["entries"]:
        commits = hubui_commits(api, entry["repo_id"])
        assert len(commits) == 1, (entry["repo_id"], [c.commit_id for c in commits])
        assert commits[0].commit_id == entry["commit"]
        assert read_json(Path(hf_hub_download(entry["repo_id"], "parity.json")))["verdict"] == "pass"
    assert {e["repo_id"] for e in report["entries"] if e["verdict"] == "skipped"} >= set(landed[:1])
