"""What a push must never send or trust: links and special files in the folder (a token published through
``notes.txt -> ~/.cache/huggingface/token``), a file swapped for a link between the check and the upload, a
repo made public while a private push was under way, and an existing README whose YAML is an alias bomb.
All against the real local Hub over HTTP; nothing here mocks the Hub client."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hubui import publishing
from hubui.card_yaml import MAX_README_BYTES
from hubui.errors import InvalidCardError, InvalidInputError, PushError
from hubui.pipeline import ConvertOptions, convert, dry_run, publish
from hubui.publishing import PushRequest, fetch_readme, push
from hubui.spec import ModelSpec

SECRET = "hf_" + "s3cr3t" * 6  # stands in for the login cache's token: it must never reach the Hub


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "test_resnet"
    result = convert(ModelSpec("timm", "test_resnet", seed=5), ConvertOptions(out))
    assert result.passed
    return result


@pytest.fixture(scope="module")
def exported(converted) -> Path:
    return converted.export.folder


@pytest.fixture
def api(localhub) -> HfApi:
    return HfApi(endpoint=localhub.url, token=localhub.users.alice)


@pytest.fixture
def folder(exported: Path, tmp_path: Path) -> Path:
    """A fresh copy of the export, to add links and special files to."""
    copy = tmp_path / "export"
    shutil.copytree(exported, copy)
    return copy


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "token"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def _make_link_outside(folder: Path, token_file: Path) -> str:
    (folder / "notes.txt").symlink_to(token_file)
    return "notes.txt"


def _make_link_inside(folder: Path, token_file: Path) -> str:
    (folder / "copy.json").symlink_to(folder / "config.json")
    return "copy.json"


def _make_linked_folder(folder: Path, token_file: Path) -> str:
    (folder / "extra").symlink_to(token_file.parent, target_is_directory=True)
    return "extra"


def _make_fifo(folder: Path, token_file: Path) -> str:
    os.mkfifo(folder / "pipe")
    return "pipe"


def _make_socket(folder: Path, token_file: Path) -> str:
    # AF_UNIX paths are limited to ~107 bytes: bind from inside the folder with a relative name.
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    try:
        os.chdir(folder)
        sock.bind("sock")
    finally:
        os.chdir(cwd)
        sock.close()
    return "sock"


def _make_nested_link(folder: Path, token_file: Path) -> str:
    (folder / "sub").mkdir()
    (folder / "sub" / "notes.txt").symlink_to(token_file)
    return "sub/notes.txt"


def _make_hard_link(folder: Path, token_file: Path) -> str:
    os.link(token_file, folder / "notes.txt")
    return "notes.txt"


MAKERS = {
    "link outside": _make_link_outside,
    "link inside": _make_link_inside,
    "linked folder": _make_linked_folder,
    "fifo": _make_fifo,
    "socket": _make_socket,
    "nested link": _make_nested_link,
    "hard link": _make_hard_link,
}


def _assert_nothing_uploaded(api: HfApi, repo: str) -> None:
    assert api.repo_exists(repo) is False, f"{repo} was created"


@pytest.mark.parametrize("case", sorted(MAKERS))
def test_publish_refuses_links_and_special_files(localhub, api, folder, token_file, repo_name, case):
    bad = MAKERS[case](folder, token_file)
    repo = f"alice/{repo_name}"
    with pytest.raises(InvalidInputError, match=re.escape(repr(bad))) as info:
        publish(PushRequest(folder, repo, allow_random_weights=True), token=localhub.users.alice, verify=False)
    assert "nothing was uploaded" in info.value.message.lower() or "refusing" in info.value.message.lower()
    assert SECRET not in str(info.value)
    _assert_nothing_uploaded(api, repo)


@pytest.mark.parametrize("case", ["link outside", "fifo"])
def test_dry_run_refuses_links_and_special_files(localhub, api, folder, token_file, repo_name, case):
    bad = MAKERS[case](folder, token_file)
    repo = f"alice/{repo_name}"
    with pytest.raises(InvalidInputError, match=bad):
        dry_run(PushRequest(folder, repo, allow_random_weights=True), token=localhub.users.alice)
    _assert_nothing_uploaded(api, repo)


def test_link_among_hidden_files_is_not_refused_because_it_never_travels(localhub, api, folder, token_file, repo_name):
    (folder / ".cache").mkdir()
    (folder / ".cache" / "token").symlink_to(token_file)
    repo = f"alice/{repo_name}"
    result = push(PushRequest(folder, repo, allow_random_weights=True), token=localhub.users.alice)
    assert not any(".cache" in f.path for f in result.files)
    assert ".cache/token" not in api.list_repo_files(repo)


def test_cli_push_refuses_a_link_to_the_token(localhub, api, folder, token_file, repo_name):
    _make_link_outside(folder, token_file)
    repo = f"alice/{repo_name}"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["HF_TOKEN"] = localhub.users.alice
    for extra in ([], ["--dry-run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "hubui", "push", "--from", str(folder), "--repo-id", repo, "--no-verify", *extra],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert proc.returncode == 2, proc.stderr
        assert "notes.txt" in proc.stderr and "symlink" in proc.stderr and "Traceback" not in proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
    _assert_nothing_uploaded(api, repo)


def test_app_push_refuses_a_link_in_the_export(localhub, api, converted, folder, token_file, repo_name):
    """The app pushes its session's export through publish(): a link planted there is refused the same way."""
    gr = pytest.importorskip("gradio")
    from dataclasses import replace

    from hubui.pipeline import ConvertResult
    from hubui.ui import handlers
    from hubui.ui.state import Session

    _make_link_outside(folder, token_file)
    session = Session()
    handlers.log_in(localhub.users.alice, session)
    session.result = ConvertResult(converted.loaded, replace(converted.export, folder=folder), converted.report)
    target = ("alice", repo_name, False, "", False, "Upload from the app", "keep", False)
    card = ("mit", "en", "", "", "", "image-classification", "", "", "", None)
    with pytest.raises(gr.Error, match=r"notes\.txt") as info:
        handlers.push(session, *target, *card, None)
    assert "symlink" in str(info.value) and SECRET not in str(info.value)
    _assert_nothing_uploaded(api, f"alice/{repo_name}")


def test_file_swapped_for_a_link_after_the_check_is_not_uploaded(
    localhub, api, folder, token_file, repo_name, monkeypatch
):
    """TOCTOU: the folder passes the check, then model.safetensors becomes a link to the token before the upload."""
    repo = f"alice/{repo_name}"
    real = publishing.check_parity_gate

    def check_then_swap(*args, **kwargs):
        verdict = real(*args, **kwargs)  # runs after the folder's files were checked
        weights = folder / "model.safetensors"
        weights.unlink()
        weights.symlink_to(token_file)
        return verdict

    monkeypatch.setattr(publishing, "check_parity_gate", check_then_swap)
    with pytest.raises(InvalidInputError, match=r"model\.safetensors.*changed since it was checked"):
        push(PushRequest(folder, repo, allow_random_weights=True), token=localhub.users.alice)
    _assert_nothing_uploaded(api, repo)  # the files are opened and checked again before the repo is created


def test_private_push_refuses_a_repo_made_public_in_between(localhub, api, exported, repo_name, monkeypatch):
    """Another client creates the repo public between hubui's visibility check and its create_repo."""
    repo = f"alice/{repo_name}"
    other = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    real = publishing._Session.repo_private
    calls = []

    def check_then_race(self, repo_id):
        answer = real(self, repo_id)
        calls.append(answer)
        if len(calls) == 1:
            other.create_repo(repo_id, private=False)  # the race: public, before hubui creates it
        return answer

    monkeypatch.setattr(publishing._Session, "repo_private", check_then_race)
    with pytest.raises(PushError, match="public") as info:
        push(PushRequest(exported, repo, private=True, allow_random_weights=True), token=localhub.users.alice)
    assert "nothing was uploaded" in info.value.message.lower()
    assert api.model_info(repo).private is False
    assert api.list_repo_files(repo) == [".gitattributes"]  # the weights never went to the public repo


def test_public_push_onto_a_repo_made_private_in_between_goes_ahead_and_says_so(
    localhub, api, exported, repo_name, monkeypatch
):
    repo = f"alice/{repo_name}"
    other = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    real = publishing._Session.repo_private
    calls = []

    def check_then_race(self, repo_id):
        answer = real(self, repo_id)
        calls.append(answer)
        if len(calls) == 1:
            other.create_repo(repo_id, private=True)
        return answer

    monkeypatch.setattr(publishing._Session, "repo_private", check_then_race)
    lines: list[str] = []
    result = push(
        PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice, progress=lines.append
    )
    assert result.changed and api.model_info(repo).private is True
    assert any("private" in line for line in lines), lines


def _alias_bomb(levels: int = 6) -> str:
    """A README whose metadata is ~300 bytes and expands 9**levels fold (6: ~4 MB, 9: ~3 GB).

    The bomb sits under a key no card rule looks at, as an attacker would put it."""
    lines = ["---", "license: mit", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    lines += [f"extra: *a{levels - 1}", "---", "# A card", ""]
    return "\n".join(lines)


@contextlib.contextmanager
def _repo_with_readme(localhub, api, repo_name, tmp_path, monkeypatch, readme: bytes):
    """alice's public repo holding ``readme``: pushed with the real client when the local Hub takes it, else
    (a Hub that refuses such READMEs at commit time, or their size at /api/validate-yaml) written into the
    storage of a second local Hub, which HF_ENDPOINT then points at: a repo written before its Hub checked."""
    from huggingface_hub.errors import HfHubHTTPError

    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    try:
        api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo)
    except (HfHubHTTPError, ValueError) as exc:
        status = getattr(getattr(exc, "response", None), "status_code", 400)
        assert status in (400, 413, 422), exc  # refused as bad input: seed a Hub that holds it
    else:
        yield repo
        return
    from _hubproc import start_hub

    from hubui.localhub.storage import AddFile, Store

    root = tmp_path / "seeded-hub"
    with Store(root) as store:
        meta = store.create_repo("model", "alice", repo_name, private=False, author="alice")
        store.commit(meta, "main", [AddFile("README.md", store.put_bytes(readme))], author="alice", summary="seed")
    hub = start_hub(root, [f"alice:{localhub.users.alice}:write"])
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(api, "endpoint", hub.url)
        yield repo
    finally:
        hub.stop()


@pytest.fixture
def bomb_repo(localhub, api, repo_name, tmp_path, monkeypatch):
    """alice's repo whose README is an alias bomb."""
    bomb = _alias_bomb().encode()
    assert len(bomb) < 500
    with _repo_with_readme(localhub, api, repo_name, tmp_path, monkeypatch, bomb) as repo:
        yield repo


def test_push_merge_refuses_an_alias_bomb_readme(localhub, api, exported, bomb_repo):
    before = api.model_info(bomb_repo).sha
    for run in (dry_run, publish):
        kwargs = {"verify": False} if run is publish else {}
        with pytest.raises(InvalidCardError, match="alias") as info:
            run(
                PushRequest(exported, bomb_repo, readme_mode="merge", allow_random_weights=True),
                token=localhub.users.alice,
                **kwargs,
            )
        assert "README" in info.value.message
    assert api.model_info(bomb_repo).sha == before


def test_app_load_existing_card_refuses_an_alias_bomb(localhub, bomb_repo):
    gr = pytest.importorskip("gradio")
    from hubui.ui import handlers
    from hubui.ui.state import Session

    namespace, name = bomb_repo.split("/")
    with pytest.raises(gr.Error, match="alias"):
        handlers.load_existing_card(Session(), namespace, name, "", None)


@pytest.fixture
def big_readme_repo(localhub, api, repo_name, tmp_path, monkeypatch):
    big = b"---\nlicense: mit\n---\n" + b"x" * MAX_README_BYTES
    with _repo_with_readme(localhub, api, repo_name, tmp_path, monkeypatch, big) as repo:
        yield repo


def test_a_readme_over_the_size_limit_is_not_read(localhub, api, exported, big_readme_repo):
    repo = big_readme_repo
    with pytest.raises(InvalidCardError, match=str(MAX_README_BYTES)):
        fetch_readme(repo, token=localhub.users.alice)
    with pytest.raises(InvalidCardError, match="README"):
        push(PushRequest(exported, repo, readme_mode="merge", allow_random_weights=True), token=localhub.users.alice)
    # "keep" never reads the existing README, so its size does not block the push.
    result = push(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice)
    assert "README.md" not in {f.path for f in result.files}
