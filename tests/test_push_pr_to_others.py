"""Proposing a converted checkpoint to a repo one does not own (``hubui push --create-pr`` by bob onto alice's
public repo), finding the open PR that already proposes the same files instead of opening a second one, and
tags (``hubui push --tag v1``). The real client and the real ``hubui`` command against the local Hub."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hubui.errors import InvalidInputError, InvalidRevisionError, NamespaceForbiddenError, PushError
from hubui.pipeline import ConvertOptions, convert, dry_run, publish
from hubui.publishing import PushRequest, push
from hubui.spec import ModelSpec


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pr") / "test_resnet"
    assert convert(ModelSpec("timm", "test_resnet", seed=11), ConvertOptions(out)).passed
    return out


@pytest.fixture
def alices_repo(alice, repo_name) -> str:
    """alice's public repo with her own README and no weights."""
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n# alice's model\n", path_in_repo="README.md", repo_id=repo
    )
    return repo


def _hubui(*args: str, token: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=400, env=env)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prs(api: HfApi, repo: str) -> list:
    return [d for d in api.get_repo_discussions(repo) if d.is_pull_request]


def test_bob_proposes_to_alice_then_alice_merges_and_a_second_run_finds_the_open_pr(
    localhub, alice, alices_repo, exported
):
    """bob proposes the converted checkpoint and his card (merged into alice's README) to alice's repo."""
    repo, bob = alices_repo, localhub.users.bob
    main_before = alice.model_info(repo).sha
    args = (
        "push",
        "--from",
        str(exported),
        "--repo-id",
        repo,
        "--create-pr",
        "--readme",
        "merge",
        "--allow-random-weights",
    )

    plan = _ok(_hubui(*args, "--dry-run", token=bob))
    assert f"will open a PR on {repo}" in plan.stdout
    assert _prs(alice, repo) == [] and alice.model_info(repo).sha == main_before

    first = _ok(_hubui(*args, token=bob))
    prs = _prs(alice, repo)
    assert len(prs) == 1 and prs[0].author == "bob" and prs[0].status == "open"
    num = prs[0].num
    assert f"{localhub.url}/{repo}/discussions/{num}" in first.stdout
    assert "verification: passed" in first.stdout
    assert alice.model_info(repo).sha == main_before  # main untouched until alice merges
    info = alice.get_paths_info(repo, ["model.safetensors"], revision=f"refs/pr/{num}")[0]
    assert info.lfs.sha256 == _sha256(exported / "model.safetensors")
    card = Path(alice.hf_hub_download(repo, "README.md", revision=f"refs/pr/{num}")).read_text()
    assert "alice's model" in card and "Conversion and parity" in card

    second = _ok(_hubui(*args, token=bob))
    said = second.stdout + second.stderr
    assert f"PR #{num} already proposes these exact files" in said
    assert f"{localhub.url}/{repo}/discussions/{num}" in said
    assert len(_prs(alice, repo)) == 1  # no second PR

    alice.merge_pull_request(repo, num)
    assert alice.get_discussion_details(repo, num).status == "merged"
    merged = alice.get_paths_info(repo, ["model.safetensors", "config.json", "README.md"])
    assert {p.path for p in merged} == {"model.safetensors", "config.json", "README.md"}
    assert next(p for p in merged if p.path == "model.safetensors").lfs.sha256 == _sha256(
        exported / "model.safetensors"
    )
    assert "Conversion and parity" in Path(alice.hf_hub_download(repo, "README.md")).read_text()


def test_a_changed_folder_opens_a_new_pr(localhub, alice, alices_repo, exported, tmp_path):
    repo, bob = alices_repo, localhub.users.bob
    first = push(PushRequest(exported, repo, create_pr=True, allow_random_weights=True), token=bob)
    changed = tmp_path / "changed"
    shutil.copytree(exported, changed)
    (changed / "NOTES.md").write_text("a note\n")
    second = push(PushRequest(changed, repo, create_pr=True, allow_random_weights=True), token=bob)
    assert first.pr_url != second.pr_url and len(_prs(alice, repo)) == 2


def test_bob_cannot_create_a_repo_in_alices_namespace_even_with_create_pr(localhub, alice, exported, repo_name):
    repo = f"alice/{repo_name}"
    with pytest.raises(NamespaceForbiddenError, match="bob"):
        push(PushRequest(exported, repo, create_pr=True, allow_random_weights=True), token=localhub.users.bob)
    assert alice.repo_exists(repo) is False


def test_bob_without_create_pr_is_still_refused(localhub, alice, alices_repo, exported):
    sha = alice.model_info(alices_repo).sha
    with pytest.raises(NamespaceForbiddenError):
        push(PushRequest(exported, alices_repo, allow_random_weights=True), token=localhub.users.bob)
    assert alice.model_info(alices_repo).sha == sha and _prs(alice, alices_repo) == []


def test_bob_cannot_propose_to_a_branch_that_does_not_exist(localhub, alice, alices_repo, exported):
    with pytest.raises(PushError, match="no-such-branch"):
        push(
            PushRequest(exported, alices_repo, create_pr=True, branch="no-such-branch", allow_random_weights=True),
            token=localhub.users.bob,
        )
    assert _prs(alice, alices_repo) == []
    assert "no-such-branch" not in {b.name for b in alice.list_repo_refs(alices_repo).branches}


def test_dry_run_plan_names_the_pr_on_someone_elses_repo(localhub, alice, alices_repo, exported):
    plan = dry_run(
        PushRequest(exported, alices_repo, create_pr=True, allow_random_weights=True), token=localhub.users.bob
    )
    assert plan.target.startswith(f"will open a PR on {alices_repo}") and plan.repo_exists
    assert _prs(alice, alices_repo) == []


# --- tags -------------------------------------------------------------------------------------------
def test_tag_is_created_on_the_verified_commit(localhub, alice, exported, repo_name):
    repo = f"alice/{repo_name}"
    result = publish(PushRequest(exported, repo, tag="v1", allow_random_weights=True), token=localhub.users.alice)
    assert result.verification.status == "passed"
    tags = {t.name: t.target_commit for t in alice.list_repo_refs(repo).tags}
    assert tags == {"v1": result.push.commit_oid}
    assert result.to_dict()["tag"] == "v1"


def test_an_existing_tag_is_refused_before_anything_is_uploaded(localhub, alice, exported, repo_name, tmp_path):
    repo = f"alice/{repo_name}"
    publish(PushRequest(exported, repo, tag="v1", allow_random_weights=True), token=localhub.users.alice, verify=False)
    head = alice.model_info(repo).sha
    changed = tmp_path / "changed"
    shutil.copytree(exported, changed)
    (changed / "NOTES.md").write_text("a note\n")
    for run in (dry_run, publish):
        with pytest.raises(InvalidInputError, match="'v1' already exists"):
            run(PushRequest(changed, repo, tag="v1", allow_random_weights=True), token=localhub.users.alice)
    plan = dry_run(PushRequest(changed, repo, tag="v2", allow_random_weights=True), token=localhub.users.alice)
    assert plan.target == "main, then tag 'v2' once verified"
    assert alice.model_info(repo).sha == head
    assert "NOTES.md" not in alice.list_repo_files(repo)


@pytest.mark.parametrize(
    "tag,error",
    [("bad tag", InvalidRevisionError), ("v1..2", InvalidRevisionError), ("refs/tags/v1", InvalidRevisionError)],
)
def test_bad_tag_names_are_refused_before_anything(localhub, alice, exported, repo_name, tag, error):
    repo = f"alice/{repo_name}"
    with pytest.raises(error, match="tag"):
        publish(PushRequest(exported, repo, tag=tag, allow_random_weights=True), token=localhub.users.alice)
    assert alice.repo_exists(repo) is False


def test_tag_with_create_pr_is_refused(localhub, alice, alices_repo, exported):
    with pytest.raises(InvalidInputError, match="--tag"):
        publish(
            PushRequest(exported, alices_repo, create_pr=True, tag="v1", allow_random_weights=True),
            token=localhub.users.bob,
        )
    assert _prs(alice, alices_repo) == []


def test_cli_push_with_tag(localhub, alice, exported, repo_name):
    repo = f"alice/{repo_name}"
    proc = _ok(
        _hubui(
            "push",
            "--from",
            str(exported),
            "--repo-id",
            repo,
            "--tag",
            "v1",
            "--allow-random-weights",
            token=localhub.users.alice,
        )
    )
    tags = {t.name: t.target_commit for t in alice.list_repo_refs(repo).tags}
    assert tags["v1"] == alice.model_info(repo).sha
    assert "v1" in proc.stdout + proc.stderr
    again = _hubui(
        "push",
        "--from",
        str(exported),
        "--repo-id",
        repo,
        "--tag",
        "v1",
        "--allow-random-weights",
        token=localhub.users.alice,
    )
    assert again.returncode == 2 and "'v1' already exists" in again.stderr and "Traceback" not in again.stderr
