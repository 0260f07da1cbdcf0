"""Paths and names the local Hub refuses, as git and the real Hub do: ``.git`` as any path part (any case), a file
and a folder of one name, NFC/NFD twins, control characters, and names with a trailing newline. Each refusal is a
400 (422 at preupload, as the Hub answers there) that names the path, and nothing is committed."""

from __future__ import annotations

import base64
import json
import secrets
import unicodedata

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError

from hubui.errors import LocalHubConfigError
from hubui.localhub import build_directory

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


@pytest.fixture
def repo(alice, repo_name) -> str:
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    return repo_id


def _refused(alice: HfApi, repo: str, ops: list, *named: str) -> None:
    """``ops`` as one commit through huggingface_hub: a 400 naming each of ``named``, and no new commit."""
    before = [c.commit_id for c in alice.list_repo_commits(repo)]
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_commit(repo, ops, commit_message="bad path")
    # 422 from preupload (the path alone; what the Hub answers there), 400 from the commit (paths against the tree).
    assert err.value.response.status_code in (400, 422)
    message = err.value.server_message or ""
    for path in named:
        assert repr(path) in message, message
    assert [c.commit_id for c in alice.list_repo_commits(repo)] == before


def _raw_commit(localhub, repo: str, *lines: dict) -> httpx.Response:
    header = {"key": "header", "value": {"summary": "raw"}}
    body = "\n".join(json.dumps(x) for x in (header, *lines)) + "\n"
    return httpx.post(
        f"{localhub.url}/api/models/{repo}/commit/main",
        content=body.encode(),
        headers={"Authorization": f"Bearer {localhub.users.alice}", "Content-Type": "application/x-ndjson"},
    )


def _file(path: str, data: bytes = b"x") -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


# --- .git anywhere ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "weights/.GIT/config",  # git compares .git case-insensitively (core.ignorecase, macOS, Windows)
        ".Git/hooks/post-checkout",
        "weights/.git./config",  # Windows drops trailing dots and spaces: this is .git there
        "weights/.git /config",
        "weights/git~1/config",  # the 8.3 short name of .git on Windows
        "a/.g\u200cit/config",  # macOS ignores zero-width characters in names
        "weights\\.git\\config",  # backslashes are kept (as on the Hub), but a Windows checkout splits at them
    ],
)
def test_dot_git_in_any_form_and_place_is_refused(alice, repo, path):
    # huggingface_hub itself refuses only a part spelt exactly ".git": these reach the Hub.
    _refused(alice, repo, [CommitOperationAdd(path, b"[core]\n\tfsmonitor = touch /tmp/pwned\n")], path)


@pytest.mark.parametrize("path", ["weights/.git/config", "a/b/.git/hooks/pre-commit", ".git/config"])
def test_dot_git_spelt_exactly_is_refused_even_past_the_client(localhub, alice, repo, path):
    resp = _raw_commit(localhub, repo, _file(path))
    assert resp.status_code == 400 and repr(path) in resp.json()["error"]
    assert path not in alice.list_repo_files(repo)


def test_names_that_only_contain_dot_git_are_fine(alice, repo):
    ok = [".gitattributes", ".gitignore", "my.git/readme.md", "weights/.github/x.yml", "git/config"]
    alice.create_commit(repo, [CommitOperationAdd(p, b"ok") for p in ok], commit_message="fine")
    assert set(ok) <= set(alice.list_repo_files(repo))


# --- control characters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["a\x01b.txt", "new\nline.txt", "tab\there.txt", "dir\r/x.txt", "del\x7f.txt"])
def test_control_characters_in_paths_are_refused(alice, repo, path):
    _refused(alice, repo, [CommitOperationAdd(path, b"x")], path)


# --- a file and a folder of one name -----------------------------------------------------------------------
def test_a_file_and_a_folder_of_one_name_in_one_commit_are_refused(alice, repo):
    _refused(alice, repo, [CommitOperationAdd("data", b"file"), CommitOperationAdd("data/x.txt", b"x")], "data")


def test_a_folder_over_an_existing_file_is_refused(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd("data", b"file")], commit_message="a file")
    _refused(alice, repo, [CommitOperationAdd("data/x.txt", b"x")], "data/x.txt", "data")


def test_a_file_over_an_existing_folder_is_refused(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd("cfg/a/b.json", b"{}")], commit_message="a folder")
    _refused(alice, repo, [CommitOperationAdd("cfg/a", b"file")], "cfg/a")


def test_a_folder_replaced_by_a_file_in_one_commit_is_fine(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd("cfg/b.json", b"{}")], commit_message="a folder")
    alice.create_commit(
        repo,
        [CommitOperationDelete("cfg/", is_folder=True), CommitOperationAdd("cfg", b"now a file")],
        commit_message="swap",
    )
    files = alice.list_repo_files(repo)
    assert "cfg" in files and "cfg/b.json" not in files


# --- NFC / NFD twins -----------------------------------------------------------------------------------------
def test_nfc_and_nfd_twins_in_one_commit_are_refused(alice, repo):
    assert NFC != NFD
    a, b = f"{NFC}.txt", f"{NFD}.txt"
    _refused(alice, repo, [CommitOperationAdd(a, b"nfc"), CommitOperationAdd(b, b"nfd")], a, b)


def test_a_twin_of_an_existing_file_is_refused(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd(f"{NFC}.txt", b"nfc")], commit_message="nfc")
    _refused(alice, repo, [CommitOperationAdd(f"{NFD}.txt", b"nfd")], f"{NFD}.txt", f"{NFC}.txt")


def test_a_twin_of_an_existing_folder_is_refused(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd(f"{NFC}/a.txt", b"a")], commit_message="nfc folder")
    _refused(alice, repo, [CommitOperationAdd(f"{NFD}/b.txt", b"b")], f"{NFD}/b.txt", NFC)


def test_renaming_to_the_other_normal_form_in_one_commit_is_fine(alice, repo):
    alice.create_commit(repo, [CommitOperationAdd(f"{NFC}.txt", b"x")], commit_message="nfc")
    alice.create_commit(
        repo, [CommitOperationDelete(f"{NFC}.txt"), CommitOperationAdd(f"{NFD}.txt", b"x")], commit_message="nfd"
    )
    assert f"{NFD}.txt" in alice.list_repo_files(repo) and f"{NFC}.txt" not in alice.list_repo_files(repo)


# --- names with a trailing newline ---------------------------------------------------------------------------
def test_a_repo_name_with_a_trailing_newline_is_refused(localhub, repo_name):
    resp = httpx.post(
        f"{localhub.url}/api/repos/create",
        json={"name": f"{repo_name}\n", "type": "model"},
        headers={"Authorization": f"Bearer {localhub.users.alice}"},
    )
    assert resp.status_code == 400, resp.text
    assert repr(f"{repo_name}\n") in resp.json()["error"] or "Invalid repo name" in resp.json()["error"]
    assert not (localhub.root / "repos" / "model" / "alice" / f"{repo_name}\n").exists()


@pytest.mark.parametrize("which", ["user", "org"])
def test_a_user_or_org_name_with_a_trailing_newline_is_refused(which):
    token = secrets.token_hex(16)
    users = [{"name": "zed\n" if which == "user" else "zed", "token": token}]
    orgs = [{"name": "zed-lab\n", "members": []}] if which == "org" else []
    with pytest.raises(LocalHubConfigError) as err:
        build_directory(users_text=json.dumps({"users": users, "orgs": orgs}))
    assert "zed" in err.value.message and token not in str(err.value)
    with pytest.raises(LocalHubConfigError):
        build_directory([f"zed\n:{token}:write"] if which == "user" else [], [] if which == "user" else ["zed\n:"])


def test_merging_a_pr_that_would_put_a_folder_over_a_file_is_a_conflict(alice, repo):
    pr = alice.create_commit(
        repo, [CommitOperationAdd("data/x.txt", b"x")], commit_message="a folder", create_pr=True
    ).pr_num
    alice.create_commit(repo, [CommitOperationAdd("data", b"a file")], commit_message="a file on main")
    before = alice.list_repo_commits(repo)[0].commit_id
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(repo, pr)
    assert err.value.response.status_code == 409 and "'data'" in (err.value.server_message or "")
    assert alice.list_repo_commits(repo)[0].commit_id == before
    assert alice.get_discussion_details(repo, pr).status == "open"
