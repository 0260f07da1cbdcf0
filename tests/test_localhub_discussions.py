"""Pull requests, discussions and tags on the local Hub, through the real huggingface_hub client.

These are the calls people use to propose a change to a repo they don't own, and that the owner uses to
review and merge it: the local Hub must answer them the way the Hub does.
"""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError


def _add(path: str, data: bytes) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)]


def test_non_member_opens_pr_on_public_repo_and_owner_merges(alice, bob, repo_name, tmp_path):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"hello\n", path_in_repo="README.md", repo_id=repo)
    info = bob.create_commit(
        repo, _add("README.md", b"hello\nfixed by bob\n"), commit_message="Fix the card", create_pr=True
    )
    assert info.pr_num == 1
    # bob cannot merge alice's PR, nor write to main directly
    with pytest.raises(HfHubHTTPError) as exc:
        bob.merge_pull_request(repo, 1)
    assert exc.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as exc:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert exc.value.response.status_code == 403

    details = alice.get_discussion_details(repo, 1)
    assert details.author == "bob" and details.is_pull_request and details.status == "open"
    assert "+fixed by bob" in (details.diff or "")
    assert [e.type for e in details.events] == ["comment", "commit"]

    alice.merge_pull_request(repo, 1, comment="Thanks!")
    merged = alice.get_discussion_details(repo, 1)
    assert merged.status == "merged" and merged.merge_commit_oid
    path = alice.hf_hub_download(repo, "README.md", revision="main", cache_dir=tmp_path)
    with open(path, "rb") as fh:
        assert fh.read() == b"hello\nfixed by bob\n"
    assert alice.list_repo_commits(repo)[0].commit_id == merged.merge_commit_oid


def test_private_repo_stays_invisible_to_non_members(alice, bob, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo, private=True)
    with pytest.raises(HfHubHTTPError) as exc:
        bob.create_commit(repo, _add("a.txt", b"a"), commit_message="x", create_pr=True)
    assert exc.value.response.status_code == 404


def test_read_token_cannot_open_pr(alice, reader, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    with pytest.raises(HfHubHTTPError) as exc:
        reader.create_discussion(repo, title="hi", pull_request=True)
    assert exc.value.response.status_code == 403


def test_comment_rename_close_reopen(alice, bob, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    d = bob.create_discussion(repo, title="  A question  ", description="Does it work?")
    assert d.title == "A question" and d.num == 1
    comment = alice.comment_discussion(repo, 1, "Yes.")
    assert comment.content == "Yes." and comment.author == "alice"
    renamed = bob.rename_discussion(repo, 1, "A better question")
    assert (renamed.old_title, renamed.new_title) == ("A question", "A better question")
    closed = alice.change_discussion_status(repo, 1, "closed", comment="Answered")
    assert closed.new_status == "closed"
    assert [x.num for x in alice.get_repo_discussions(repo, discussion_status="closed")] == [1]
    assert list(alice.get_repo_discussions(repo, discussion_status="open")) == []
    alice.change_discussion_status(repo, 1, "open")
    details = alice.get_discussion_details(repo, 1)
    assert details.status == "open" and details.title == "A better question"
    kinds = [e.type for e in details.events]
    assert kinds == ["comment", "comment", "title-change", "status-change", "comment", "status-change"]
    first = details.events[0]
    edited = bob.edit_discussion_comment(repo, 1, first.id, "Does it work on CPU?")
    assert edited.edited and edited.content == "Does it work on CPU?"
    # someone else cannot rename it
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(endpoint=alice.endpoint, token=None).rename_discussion(repo, 1, "anonymous", token=False)
    assert exc.value.response.status_code == 401


def test_merge_conflict_is_refused(alice, bob, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id=repo)
    bob.create_commit(repo, _add("a.txt", b"bob"), commit_message="bob's change", create_pr=True)
    alice.upload_file(path_or_fileobj=b"alice", path_in_repo="a.txt", repo_id=repo)
    with pytest.raises(HfHubHTTPError) as exc:
        alice.merge_pull_request(repo, 1)
    assert exc.value.response.status_code == 409
    assert "a.txt" in str(exc.value)
    assert alice.get_discussion_details(repo, 1).status == "open"


def test_tags_create_list_resolve_delete(alice, bob, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    first = alice.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo)
    alice.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo)
    alice.create_tag(repo, tag="v1", revision=first.oid[:7], tag_message="first")
    alice.create_tag(repo, tag="v2")
    refs = alice.list_repo_refs(repo)
    tags = {t.name: t.target_commit for t in refs.tags}
    assert tags["v1"] == first.oid and tags["v2"] == alice.model_info(repo).sha
    assert alice.model_info(repo, revision="v1").sha == first.oid
    assert alice.model_info(repo, revision="refs/tags/v1").sha == first.oid
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_tag(repo, tag="v1")
    assert exc.value.response.status_code == 409
    alice.create_tag(repo, tag="v1", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_tag(repo, tag="bad tag")
    assert exc.value.response.status_code == 400
    with pytest.raises(RevisionNotFoundError):
        alice.create_tag(repo, tag="v3", revision="no-such-branch")
    with pytest.raises(HfHubHTTPError) as exc:
        bob.create_tag(repo, tag="bob-tag")
    assert exc.value.response.status_code == 403
    alice.delete_tag(repo, tag="v1")
    with pytest.raises(RevisionNotFoundError):
        alice.model_info(repo, revision="v1")
    with pytest.raises(RevisionNotFoundError):
        alice.delete_tag(repo, tag="v1")
