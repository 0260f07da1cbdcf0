"""The local Hub through the real huggingface_hub client over HTTP: auth, repos, uploads, downloads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

LFS_THRESHOLD = 10 * 1024 * 1024


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- auth -----------------------------------------------------------------------------------------------
def test_whoami_for_each_token(alice, bob, reader):
    a = alice.whoami(cache=False)
    assert a["name"] == "alice"
    assert {o["name"] for o in a["orgs"]} >= {"team"}
    assert a["auth"]["accessToken"]["role"] == "write"
    b = bob.whoami(cache=False)
    assert b["name"] == "bob" and b["orgs"] == []
    r = reader.whoami(cache=False)
    assert r["name"] == "reader" and r["auth"]["accessToken"]["role"] == "read"


def test_unknown_token_gets_401(localhub):
    api = HfApi(endpoint=localhub.url, token="not-a-known-token")
    with pytest.raises(HfHubHTTPError) as exc:
        api.whoami(cache=False)
    assert exc.value.response.status_code == 401


def test_read_only_token_gets_403_on_writes(localhub, reader, alice, repo_name):
    with pytest.raises(HfHubHTTPError) as exc:
        reader.create_repo(f"reader/{repo_name}")
    assert exc.value.response.status_code == 403
    alice.create_repo(f"alice/{repo_name}")
    with pytest.raises(HfHubHTTPError) as exc:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"alice/{repo_name}")
    assert exc.value.response.status_code == 403
    assert alice.list_repo_files(f"alice/{repo_name}") == [".gitattributes"]


def test_cannot_create_in_someone_elses_namespace(bob, repo_name):
    with pytest.raises(HfHubHTTPError) as exc:
        bob.create_repo(f"team/{repo_name}")
    assert exc.value.response.status_code == 403


# --- repo operations ------------------------------------------------------------------------------------
def test_create_model_space_private_and_exist_ok(alice, localhub, repo_name):
    url = alice.create_repo(f"alice/{repo_name}")
    assert url == f"{localhub.url}/alice/{repo_name}"
    assert url.repo_id == f"alice/{repo_name}"
    again = alice.create_repo(f"alice/{repo_name}", exist_ok=True)
    assert again.repo_id == f"alice/{repo_name}"
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_repo(f"alice/{repo_name}")
    assert exc.value.response.status_code == 409

    space = alice.create_repo(f"team/{repo_name}-space", repo_type="space", space_sdk="gradio")
    assert space == f"{localhub.url}/spaces/team/{repo_name}-space"
    info = alice.space_info(f"team/{repo_name}-space")
    # As on the Hub, a new Space holds a README.md whose YAML names its SDK.
    assert info.sdk == "gradio" and sorted(s.rfilename for s in info.siblings) == [".gitattributes", "README.md"]

    alice.create_repo(f"alice/{repo_name}-private", private=True)
    assert alice.model_info(f"alice/{repo_name}-private").private is True
    assert alice.model_info(f"alice/{repo_name}").private is False


def test_upload_folder_lfs_and_regular(alice, tmp_path, fresh_cache, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "big.dat").write_bytes(os.urandom(LFS_THRESHOLD + 12345))
    (folder / "notes.txt").write_text("small file\n")
    info = alice.upload_folder(repo_id=repo, folder_path=folder, commit_message="Add files")
    assert len(info.oid) == 40

    model = alice.model_info(repo, files_metadata=True)
    by_name = {s.rfilename: s for s in model.siblings}
    assert set(by_name) == {".gitattributes", "big.dat", "notes.txt"}
    assert by_name["big.dat"].lfs is not None and by_name["big.dat"].lfs.sha256 == _sha256(folder / "big.dat")
    assert by_name["big.dat"].size == LFS_THRESHOLD + 12345
    assert by_name["notes.txt"].lfs is None
    assert model.sha == info.oid

    for name in ("big.dat", "notes.txt"):
        path = hf_hub_download(repo, name, cache_dir=fresh_cache)
        assert _sha256(Path(path)) == _sha256(folder / name)


def test_branch_then_upload_to_it(alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    main_before = alice.model_info(repo).sha
    alice.create_branch(repo, branch="feature/x")
    alice.upload_file(path_or_fileobj=b"on a branch", path_in_repo="b.txt", repo_id=repo, revision="feature/x")
    assert "b.txt" in alice.list_repo_files(repo, revision="feature/x")
    assert "b.txt" not in alice.list_repo_files(repo)
    assert alice.model_info(repo).sha == main_before
    refs = alice.list_repo_refs(repo)
    assert {b.name for b in refs.branches} == {"main", "feature/x"}
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_branch(repo, branch="feature/x")
    assert exc.value.response.status_code == 409
    alice.create_branch(repo, branch="feature/x", exist_ok=True)


def test_create_pr_leaves_main_unchanged(alice, fresh_cache, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo)
    main_sha = alice.model_info(repo).sha
    pr = alice.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id=repo, create_pr=True)
    assert pr.pr_revision == "refs/pr/1" and pr.pr_num == 1
    assert pr.pr_url.endswith(f"/{repo}/discussions/1")
    assert alice.model_info(repo).sha == main_sha
    on_pr = hf_hub_download(repo, "f.txt", revision=pr.pr_revision, cache_dir=fresh_cache)
    on_main = hf_hub_download(repo, "f.txt", cache_dir=fresh_cache)
    assert Path(on_pr).read_bytes() == b"v2"
    assert Path(on_main).read_bytes() == b"v1"
    details = alice.get_discussion_details(repo, 1)
    assert details.is_pull_request and details.status == "open" and details.author == "alice"
    refs = alice.list_repo_refs(repo, include_pull_requests=True)
    assert [r.ref for r in refs.pull_requests] == ["refs/pr/1"]


def test_listing_info_and_existence(alice, repo_name):
    repo = f"alice/{repo_name}"
    assert alice.repo_exists(repo) is False
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"{}", path_in_repo="sub/dir/config.json", repo_id=repo)
    assert alice.repo_exists(repo) is True
    assert alice.file_exists(repo, "sub/dir/config.json") is True
    assert alice.file_exists(repo, "missing.json") is False
    assert sorted(alice.list_repo_files(repo)) == [".gitattributes", "sub/dir/config.json"]
    top = {e.path for e in alice.list_repo_tree(repo)}
    assert top == {".gitattributes", "sub"}
    nested = {e.path for e in alice.list_repo_tree(repo, path_in_repo="sub", recursive=True)}
    assert nested == {"sub/dir", "sub/dir/config.json"}


def test_snapshot_download_into_clean_cache(alice, tmp_path, fresh_cache, repo_name):
    repo = f"team/{repo_name}"
    alice.create_repo(repo)
    folder = tmp_path / "snap"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "model.safetensors").write_bytes(os.urandom(200_000))
    (folder / "config.json").write_text('{"a": 1}')
    commit = alice.upload_folder(repo_id=repo, folder_path=folder, commit_message="snap")
    local = Path(snapshot_download(repo, cache_dir=fresh_cache))
    assert local.name == commit.oid
    for rel in ("weights/model.safetensors", "config.json"):
        assert (local / rel).read_bytes() == (folder / rel).read_bytes()


def test_download_by_commit_sha(alice, fresh_cache, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    first = alice.upload_file(path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo)
    alice.upload_file(path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo)
    old = hf_hub_download(repo, "f.txt", revision=first.oid, cache_dir=fresh_cache)
    assert Path(old).read_bytes() == b"one"


def test_commits_record_their_author(alice, bob, repo_name):
    alice.create_repo(f"team/{repo_name}")
    alice.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=f"team/{repo_name}", commit_message="by a")
    bob.create_repo(f"bob/{repo_name}")
    bob.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=f"bob/{repo_name}", commit_message="by b")
    team_log = alice.list_repo_commits(f"team/{repo_name}")
    assert [c.title for c in team_log] == ["by a", "initial commit"]
    assert team_log[0].authors == ["alice"]
    assert bob.list_repo_commits(f"bob/{repo_name}")[0].authors == ["bob"]


def test_private_repo_is_invisible_to_others(alice, bob, localhub, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo, private=True)
    alice.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo)
    assert alice.file_exists(repo, "s.txt") is True
    assert bob.repo_exists(repo) is False
    with pytest.raises(RepositoryNotFoundError):
        bob.model_info(repo)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo, "s.txt", token=localhub.users.bob)
    anonymous = HfApi(endpoint=localhub.url, token=False)
    assert anonymous.repo_exists(repo) is False


def test_org_private_repo_is_visible_to_members_only(alice, bob, repo_name):
    repo = f"team/{repo_name}"
    alice.create_repo(repo, private=True)
    assert alice.repo_exists(repo) is True
    assert bob.repo_exists(repo) is False


def test_delete_file_and_folder(alice, repo_name):
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.create_commit(
        repo,
        [CommitOperationAdd(f"d/{i}.txt", str(i).encode()) for i in range(3)] + [CommitOperationAdd("keep.txt", b"k")],
        commit_message="add",
    )
    alice.create_commit(repo, [CommitOperationDelete("d/")], commit_message="rm folder")
    assert sorted(alice.list_repo_files(repo)) == [".gitattributes", "keep.txt"]
    alice.delete_file("keep.txt", repo)
    assert alice.list_repo_files(repo) == [".gitattributes"]


def test_readme_metadata_shows_as_card_data(alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    readme = "---\nlicense: apache-2.0\nlibrary_name: timm\ntags:\n- image-classification\n---\n# Hi\n"
    alice.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo)
    info = alice.model_info(repo)
    assert info.card_data["license"] == "apache-2.0"
    assert info.library_name == "timm"


def test_invalid_readme_yaml_is_refused_before_upload(alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    with pytest.raises(ValueError, match="Invalid metadata"):
        alice.upload_file(path_or_fileobj=b"---\ntags: [unclosed\n---\n", path_in_repo="README.md", repo_id=repo)
    assert alice.list_repo_files(repo) == [".gitattributes"]
