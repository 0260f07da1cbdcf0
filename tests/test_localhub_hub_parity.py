"""The local Hub answers like the Hub where huggingface_hub's tests found it laxer (issue 16), checked here with
the real client: errors with X-Error-Code, the repo's own .gitattributes/.gitignore, expand, move, list, gated, Xet.
"""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, CommitOperationDelete, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError


@pytest.fixture
def repo(alice, repo_name) -> str:
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    return repo_id


def test_exists_calls_answer_false_for_one_word_and_missing_ids(alice, repo):
    assert alice.repo_exists("gpt2") is False
    assert alice.revision_exists("gpt2", "main") is False
    assert alice.file_exists("gpt2", "config.json") is False
    assert alice.file_exists(repo, "nope.txt") is False
    with pytest.raises(RepositoryNotFoundError):
        alice.model_info("gpt2")


def test_tree_of_a_file_path_is_entry_not_found(alice, repo):
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="a/b.txt", repo_id=repo)
    with pytest.raises(EntryNotFoundError):
        list(alice.list_repo_tree(repo, path_in_repo="a/b.txt"))


def test_lfs_copy_without_size_and_expand_last_commit(alice, repo):
    alice.upload_file(path_or_fileobj=b"weights" * 10, path_in_repo="w.bin", repo_id=repo, commit_message="weights")
    alice.create_commit(repo, [CommitOperationCopy("w.bin", "copy/w.bin")], commit_message="copy it")
    files = {f.path: f for f in alice.list_repo_tree(repo, recursive=True, expand=True)}
    assert files["copy/w.bin"].lfs is not None and files["copy/w.bin"].lfs.size == 70
    assert files["copy/w.bin"].last_commit.title == "copy it"
    assert files["w.bin"].last_commit.title == "weights"
    assert files["copy"].last_commit.title == "copy it"


def test_repo_gitattributes_decides_lfs_and_gitignore_ignores(alice, repo, tmp_path):
    alice.upload_file(
        path_or_fileobj=b"*.png filter=lfs diff=lfs merge=lfs -text\n", path_in_repo=".gitattributes", repo_id=repo
    )
    alice.upload_file(path_or_fileobj=b"secret/\n", path_in_repo=".gitignore", repo_id=repo)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.txt").write_text("no")
    (tmp_path / "img.png").write_bytes(b"not really a png")
    (tmp_path / "w.bin").write_bytes(b"small text")  # *.bin is LFS only by the Hub's default .gitattributes
    alice.upload_folder(folder_path=tmp_path, repo_id=repo)
    info = {s.rfilename: s for s in alice.model_info(repo, files_metadata=True).siblings}
    assert info["img.png"].lfs is not None
    assert info["w.bin"].lfs is None
    assert "secret/key.txt" not in info


def test_bad_path_is_422_and_folder_delete_without_slash(alice, repo):
    with pytest.raises(HfHubHTTPError) as exc:
        alice.upload_file(path_or_fileobj=b"x", path_in_repo="..\\x", repo_id=repo)
    assert exc.value.response.status_code == 422
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="dir/x.txt", repo_id=repo)
    alice.create_commit(repo, [CommitOperationDelete("dir")], commit_message="drop dir")
    assert not alice.file_exists(repo, "dir/x.txt")


def test_move_list_and_gated(localhub, alice, repo, repo_name):
    import httpx

    alice.update_repo_settings(repo, gated="manual")
    assert alice.model_info(repo).gated == "manual"
    resp = httpx.put(
        f"{localhub.url}/api/models/{repo}/settings",
        json={"gated": "sometimes"},
        headers={"authorization": f"Bearer {localhub.users.alice}"},
    )
    assert resp.status_code == 400 and "gated" in resp.json()["error"]
    moved = f"alice/{repo_name}-moved"
    alice.move_repo(repo, moved)
    assert alice.model_info(moved).gated == "manual"
    assert alice.model_info(repo).id == moved  # the old id still reads, as on the Hub
    with pytest.raises(HfHubHTTPError):  # ...but never writes
        alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert moved in [m.id for m in alice.list_models(author="alice")]
    assert [m.id for m in alice.list_models(author="alice", search=f"{repo_name}-moved")] == [moved]
    with pytest.raises(HfHubHTTPError) as exc:
        list(alice.list_models(author="alice", pipeline_tag="image-classification"))
    assert exc.value.response.status_code == 400  # refused, not silently ignored
    assert alice.model_info(f"alice/{repo_name.upper()}-MOVED").id == moved  # ids are case-insensitive


def test_xet_token_request_says_how_to_disable_xet(localhub, repo):
    import httpx

    resp = httpx.get(
        f"{localhub.url}/api/models/{repo}/xet-write-token/main",
        headers={"authorization": f"Bearer {localhub.users.alice}"},
    )
    assert resp.status_code >= 400
    assert "HF_HUB_DISABLE_XET=1" in resp.json()["error"]


def test_readme_upload_with_bad_metadata_is_refused(alice, repo):
    with pytest.raises(ValueError, match="license"):
        alice.create_commit(
            repo, [CommitOperationAdd("README.md", b"---\nlicense: asdf\n---\n")], commit_message="bad card"
        )


def test_repo_info_expand_answers_what_was_asked_or_400(alice, repo):
    info = alice.model_info(repo, expand=["author", "sha"])
    assert info.author == "alice" and len(info.sha) == 40 and info.siblings is None
    with pytest.raises(HfHubHTTPError) as exc:
        alice.model_info(repo, expand=["gguf"])
    assert exc.value.response.status_code == 400 and "gguf" in str(exc.value)


def test_list_user_repos_backs_hf_repos_ls(localhub, alice, repo):
    alice.upload_file(path_or_fileobj=b"12345", path_in_repo="five.txt", repo_id=repo)
    mine = {r.id: r for r in alice.list_user_repos()}
    assert repo in mine and mine[repo].type == "model" and mine[repo].visibility == "public"
    assert mine[repo].storage >= 5
    team = {r.id for r in alice.list_user_repos(namespace="team")}
    assert repo not in team
    bob = HfApi(endpoint=localhub.url, token=localhub.users.bob)
    with pytest.raises(HfHubHTTPError) as exc:
        list(bob.list_user_repos(namespace="team"))
    assert exc.value.response.status_code == 403


def test_commit_list_formatted(alice, repo):
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, commit_message="a <b> title")
    newest = alice.list_repo_commits(repo, formatted=True)[0]
    assert newest.formatted_title == "a &lt;b&gt; title"
    assert alice.list_repo_commits(repo)[0].formatted_title is None
