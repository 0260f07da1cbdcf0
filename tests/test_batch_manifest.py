"""`hubui batch`: a bad manifest is refused as a whole before any work; --dry-run plans and uploads nothing;
the commit budget's rules (a pure log on a fake clock)."""

from __future__ import annotations

import uuid

import pytest
from _batch import run_cli, write_manifest
from huggingface_hub import HfApi

from hubui.batching import CommitBudget, ManifestError, load_manifest
from hubui.batching.ratelimit import BudgetLog


def test_a_bad_manifest_is_refused_as_a_whole_naming_each_entry_and_field(localhub, tmp_path):
    ok = f"alice/ok-{uuid.uuid4().hex[:8]}"
    manifest = write_manifest(
        tmp_path / "zoo.yaml",
        [
            {"model": "test_resnet", "repo_id": ok},
            {"model": "test_vit", "repo_id": f"{ok}-2", "precison": "fp16"},
            {"model": "test_vit"},
            {"model": "test_convnext", "repo_id": ok, "revision": "main"},
            {"model": "test_resnet", "repo_id": f"{ok}-4", "precision": "fp8", "checkpoint": "missing.pth"},
        ],
        {"library": "timm", "model": "x"},
    )
    proc = run_cli([str(manifest)], localhub.users.alice)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "nothing was run" in err
    assert "models[1]: unknown key 'precison' (did you mean 'precision'?)" in err
    assert "models[2].repo_id: missing" in err
    assert f"models[3].repo_id: {ok!r} at revision 'main' is also the target of models[0]" in err
    assert "models[4].precision: must be one of fp32, fp16, bf16, not 'fp8'" in err
    assert "models[4].checkpoint: file not found" in err and "missing.pth" in err
    assert "defaults: key 'model' names one model and cannot be a default" in err
    assert "hint:" in err
    assert not HfApi(endpoint=localhub.url).repo_exists(ok)  # the good entry did not run either


def test_load_manifest_reads_json_and_applies_defaults(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("license: mit\n")
    path = tmp_path / "zoo.json"
    path.write_text(
        '{"defaults": {"library": "timm", "precision": "fp16", "card": "card.yaml"},'
        ' "models": [{"model": "resnet50.a1_in1k", "repo_id": "me/a"},'
        ' {"library": "open_clip", "model": "ViT-B-32:openai", "repo_id": "me/b", "precision": "fp32"}]}'
    )
    entries = load_manifest(path).entries
    assert [(e.library, e.architecture, e.tag, e.precision) for e in entries] == [
        ("timm", "resnet50", "a1_in1k", "fp16"),
        ("open_clip", "ViT-B-32", "openai", "fp32"),
    ]
    assert entries[0].card == str(card.resolve())
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert "cannot be read" in info.value.message


def test_dry_run_prints_the_plan_per_entry_and_uploads_nothing(localhub, tmp_path, repo_name):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    existing = f"alice/{repo_name}-old"
    api.create_repo(existing)
    before = len(api.list_repo_commits(existing))
    manifest = write_manifest(
        tmp_path / "zoo.yaml",
        [{"model": "test_resnet", "repo_id": f"alice/{repo_name}-new"}, {"model": "test_vit", "repo_id": existing}],
        {"library": "timm", "allow_random_weights": True},
    )
    proc = run_cli([str(manifest), "--dry-run"], localhub.users.alice)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(f"alice/{repo_name}-new" in line and "convert + push" in line for line in lines), proc.stdout
    assert any(existing in line and "convert, then push or skip" in line for line in lines), proc.stdout
    assert not api.repo_exists(f"alice/{repo_name}-new")
    assert len(api.list_repo_commits(existing)) == before


def test_commit_budget_parses_periods_and_refuses_nonsense():
    assert CommitBudget.parse("100/h") == CommitBudget(100, 3600.0)
    assert CommitBudget.parse("2/10s") == CommitBudget(2, 10.0)
    assert CommitBudget.parse("30/min") == CommitBudget(30, 60.0)
    for bad in ("0/h", "ten/h", "5/3 weeks", "5/0s"):
        with pytest.raises(ValueError, match="COMMITS/PERIOD"):
            CommitBudget.parse(bad)


def test_budget_counts_a_window_from_each_commits_answer_and_a_429_pauses_everyone():
    log = BudgetLog(CommitBudget(2, 10.0))
    a, _ = log.try_acquire(0.0)
    b, _ = log.try_acquire(0.5)
    assert a is not None and b is not None
    slot, wait = log.try_acquire(1.0)
    assert slot is None and wait > 0  # both still running
    log.release(a, 2.0)
    log.release(b, 3.0)
    slot, wait = log.try_acquire(4.0)
    assert slot is None and wait == pytest.approx(8.0)  # a's answer at 2.0 + 10 s
    c, _ = log.try_acquire(12.0)
    assert c is not None
    assert log.try_acquire(12.5)[0] is None  # b ended at 3.0: counts until 13.0
    log.release(c, 13.0)
    log.pause(30.0, 14.0)  # a 429 with Retry-After: 30 seen by any worker
    assert log.paused_for(20.0) == pytest.approx(24.0)
    assert log.try_acquire(40.0) == (None, pytest.approx(4.0))
    assert log.try_acquire(44.0)[0] is not None


def test_local_admission_never_starts_an_entry_that_does_not_fit_beside_those_running():
    from hubui.batching.runner_local import admit

    gb = 10**9
    needs = [3 * gb, 3 * gb, 1 * gb, 9 * gb]
    assert admit([0, 1, 2, 3], [], needs, workers=4, memory_budget=5 * gb) == [0, 2]  # 1 does not fit beside 0
    assert admit([1, 3], [3 * gb], needs, workers=4, memory_budget=5 * gb) == []
    assert admit([1, 3], [], needs, workers=4, memory_budget=5 * gb) == [1]
    assert admit([3], [], needs, workers=4, memory_budget=5 * gb) == [3]  # larger than the budget: alone
    assert admit([3], [1 * gb], needs, workers=4, memory_budget=5 * gb) == []
    assert admit([0, 1, 2], [], [1, 1, 1], workers=2, memory_budget=10) == [0, 1]  # and never more than workers
