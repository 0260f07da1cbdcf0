"""Card metadata rules (hubui/card_rules.py): what the Hub refuses, refused by hubui's push and by the local Hub."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, RepoCard

from hubui.card_rules import MISSING_METADATA, check_card_text

BAD_CARDS = {
    "unknown licence": ("---\nlicense: asdf\n---\n# card\n", "license"),
    "model-index not a list": ("---\nmodel-index: foo\n---\n# card\n", "model-index"),
    "model-index result without task": (
        "---\nmodel-index:\n- name: m\n  results:\n  - dataset: {type: d, name: D}\n"
        "    metrics: [{type: acc, value: 1}]\n---\n",
        "model-index[0].results[0]",
    ),
    "base_model not an id": ("---\nbase_model: [timm/resnet18, 'not an id!']\n---\n", "base_model"),
    "tags not strings": ("---\ntags: {a: b}\n---\n", "tags"),
}


@pytest.mark.parametrize("case", list(BAD_CARDS))
def test_bad_metadata_is_an_error_naming_the_field(case):
    text, field = BAD_CARDS[case]
    errors = [p for p in check_card_text(text) if p.severity == "error"]
    assert errors and errors[0].field == field, errors


def test_good_card_passes_and_missing_metadata_only_warns():
    good = (
        "---\nlicense: apache-2.0\nbase_model: timm/resnet18.a1_in1k\ntags: [image-classification]\n"
        "model-index:\n- name: m\n  results:\n  - task: {type: image-classification}\n"
        "    dataset: {type: imagenet-1k, name: ImageNet}\n    metrics: [{type: accuracy, value: 0.7}]\n---\n"
    )
    assert check_card_text(good) == []
    problems = check_card_text("no metadata here")
    assert [(p.severity, p.message) for p in problems] == [("warning", MISSING_METADATA)]


def test_local_hub_refuses_bad_readme_commit_and_validate_yaml_says_why(localhub, repo_name):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md"):
        api.upload_file(
            path_or_fileobj=BAD_CARDS["unknown licence"][0].encode(), path_in_repo="README.md", repo_id=repo
        )
    assert not api.file_exists(repo, "README.md")
    card = RepoCard(BAD_CARDS["model-index not a list"][0])
    with pytest.raises(ValueError, match="model-index"):
        card.validate()
    # huggingface_hub's test_validate_repocard expects the Hub's text answer (its fixture is not in the sdist)
    with pytest.raises(ValueError, match='- Error: "license" must be one of'):
        RepoCard(BAD_CARDS["unknown licence"][0]).validate()
    with pytest.warns(UserWarning, match="missing yaml metadata"):
        api.create_commit(repo, [CommitOperationAdd("README.md", b"plain")], commit_message="card without metadata")


def _hubui(*args: str, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("card-rules") / "export"
    proc = subprocess.run(
        [sys.executable, "-m", "hubui", "convert", "--library", "timm", "--model", "test_resnet", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    return out


CARD_FILES = {
    "unknown licence": ("license: asdf\n", "license"),
    "malformed model-index": ("eval_results:\n- task_type: image-classification\n", "eval_results[0]"),
}


@pytest.mark.parametrize("case", list(CARD_FILES))
def test_hubui_push_refuses_a_card_the_hub_would_refuse_before_uploading(case, exported, localhub, repo_name, tmp_path):
    text, field = CARD_FILES[case]
    card = tmp_path / "card.yaml"
    card.write_text(text)
    repo = f"alice/{repo_name}"
    proc = _hubui("push", "--from", str(exported), "--repo-id", repo, "--card", str(card), token=localhub.users.alice)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"'{field}'" in proc.stderr, proc.stderr
    assert not HfApi(endpoint=localhub.url, token=localhub.users.alice).repo_exists(repo)


@pytest.mark.parametrize("case", ["unknown licence", "model-index not a list", "base_model not an id"])
def test_push_of_a_folder_readme_the_hub_would_refuse_uploads_nothing(case, exported, localhub, repo_name, tmp_path):
    from hubui.errors import InvalidCardError
    from hubui.publishing import PushRequest, push

    folder = tmp_path / "folder"
    shutil.copytree(exported, folder)
    text, field = BAD_CARDS[case]
    (folder / "README.md").write_text(text)
    repo = f"alice/{repo_name}"
    with pytest.raises(InvalidCardError, match=f"'{re.escape(field)}' would be refused by the Hub"):
        push(PushRequest(folder=folder, repo_id=repo, allow_random_weights=True), token=localhub.users.alice)
    assert not HfApi(endpoint=localhub.url, token=localhub.users.alice).repo_exists(repo)
