"""The commit budget is shared by every worker: with a budget of N commits per window and 2N entries running at
once, the commits' own timestamps on the local Hub are never more than N in any window."""

from __future__ import annotations

import json

from _batch import hubui_commits, run_cli, write_manifest
from huggingface_hub import HfApi

N, WINDOW_S = 2, 20


def test_shared_commit_budget_holds_across_workers(localhub, tmp_path, repo_name):
    entries = [{"model": "test_resnet", "seed": i, "repo_id": f"alice/{repo_name}-{i}"} for i in range(2 * N)]
    manifest = write_manifest(tmp_path / "zoo.yaml", entries, {"library": "timm", "allow_random_weights": True})
    # As many workers as entries: without a shared budget all four commits would land within seconds.
    proc = run_cli(
        [str(manifest), "--workers", str(2 * N), "--commit-budget", f"{N}/{WINDOW_S}s", "--json"], localhub.users.alice
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {e["verdict"] for e in json.loads(proc.stdout)["entries"]} == {"verified"}
    api = HfApi(endpoint=localhub.url)
    stamps = sorted(c.created_at for e in entries for c in hubui_commits(api, e["repo_id"]))
    assert len(stamps) == 2 * N
    gaps = [(stamps[i + N] - stamps[i]).total_seconds() for i in range(len(stamps) - N)]
    assert all(g >= WINDOW_S for g in gaps), gaps
