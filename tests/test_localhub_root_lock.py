"""One local Hub per root: a second server (or an in-process LocalHub) on a root in use is refused, and no commit
that was answered 200 is ever lost, however many clients push at once."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import uuid
from pathlib import Path

import pytest
from _hubproc import HubProcess, HubRefused, start_hub
from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download

from hubui.localhub import LocalHub, Store, build_directory
from hubui.localhub.storage import git_blob_sha1

THREADS, COMMITS_EACH = 4, 15


@pytest.fixture
def token() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def hub(tmp_path: Path, token: str):
    first = start_hub(tmp_path / "root", [f"ivy:{token}:write"])
    yield first
    first.stop()


def _start_second(root: Path, token: str) -> HubRefused:
    """Start another server on ``root`` and return how it was refused (fail the test if it started)."""
    try:
        second = start_hub(root, [f"ivy:{token}:write"])
    except HubRefused as exc:
        return exc
    second.stop()
    pytest.fail(f"a second local Hub started on {root} while another one serves it")


def test_a_second_server_on_the_same_root_is_refused_naming_root_and_pid(hub: HubProcess, token: str):
    refused = _start_second(hub.root, token)
    assert refused.returncode == 2
    assert str(hub.root.resolve()) in refused.stderr and str(hub.proc.pid) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "--root" in refused.stderr  # says what to do: stop that one, or use another root
    assert token not in refused.stderr
    # The first one is unharmed.
    assert HfApi(endpoint=hub.url, token=token).whoami()["name"] == "ivy"


def test_the_root_is_free_again_once_the_holder_stops_or_is_killed(tmp_path: Path, token: str):
    root = tmp_path / "root"
    first = start_hub(root, [f"ivy:{token}:write"])
    HfApi(endpoint=first.url, token=token).create_repo("ivy/kept")
    first.kill()  # SIGKILL: no clean-up ran, the lock file is still there; the kernel dropped the lock
    assert (root / "localhub.lock").exists()
    second = start_hub(root, [f"ivy:{token}:write"])
    try:
        assert HfApi(endpoint=second.url, token=token).repo_exists("ivy/kept")
    finally:
        second.stop()
    third = start_hub(root, [f"ivy:{token}:write"])  # after a clean stop too
    third.stop()


def test_an_in_process_hub_is_refused_on_a_root_a_server_holds(hub: HubProcess, token: str):
    from hubui.errors import LocalHubRootInUseError

    with pytest.raises(LocalHubRootInUseError) as err:
        LocalHub(hub.root, build_directory([f"ivy:{token}:write"]))
    assert str(hub.root.resolve()) in err.value.message and str(hub.proc.pid) in err.value.message
    assert "--root" in err.value.hint or "root" in err.value.hint


def test_two_stores_in_one_process_share_no_root_and_stop_releases_it(tmp_path: Path):
    from hubui.errors import LocalHubRootInUseError

    first = Store(tmp_path)
    with pytest.raises(LocalHubRootInUseError) as err:
        Store(tmp_path)
    assert str(os.getpid()) in err.value.message
    first.close()
    Store(tmp_path).close()
    with LocalHub(tmp_path, build_directory([])):
        pass
    with LocalHub(tmp_path, build_directory([])):  # stop() gave the root back
        pass


def _push_many(url: str, token: str, repo: str, thread: int, acked: list[tuple[str, str, bytes]], errors: list) -> None:
    api = HfApi(endpoint=url, token=token)
    for j in range(COMMITS_EACH):
        path, data = f"t{thread}/c{j}.txt", f"{thread}-{j}-{uuid.uuid4().hex}".encode()
        try:
            info = api.create_commit(repo, [CommitOperationAdd(path, data)], commit_message=f"{thread}.{j}")
        except Exception as exc:  # handed to the test thread
            errors.append(exc)
            continue
        acked.append((info.oid, path, data))


def test_no_acknowledged_commit_is_lost_under_concurrent_pushes(hub: HubProcess, token: str, tmp_path: Path):
    """Several clients push to one repo at once, through every server a user managed to start on the root."""
    servers = [hub]
    with contextlib.suppress(HubRefused):  # refused since the lock: then every client uses the first
        servers.append(start_hub(hub.root, [f"ivy:{token}:write"]))
    repo = "ivy/busy"
    HfApi(endpoint=hub.url, token=token).create_repo(repo)
    acked: list[tuple[str, str, bytes]] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_push_many, args=(servers[i % len(servers)].url, token, repo, i, acked, errors))
        for i in range(THREADS)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not any(t.is_alive() for t in threads)
    finally:
        for extra in servers[1:]:
            extra.stop()
    assert not errors, errors[:3]
    assert len(acked) == THREADS * COMMITS_EACH

    api = HfApi(endpoint=hub.url, token=token)
    history = [c.commit_id for c in reversed(api.list_repo_commits(repo))]  # oldest first
    by_oid = {oid: (path, data) for oid, path, data in acked}
    lost = set(by_oid) - set(history)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged commits are not in the history"
    assert len(history) == len(acked) + 1  # and nothing else: the initial commit plus one per push

    # At every commit the tree holds exactly the files of the commits before it, with their bytes.
    expected: dict[str, str] = {}
    for oid in history[1:]:
        path, data = by_oid[oid]
        expected[path] = git_blob_sha1(data)
        tree = {
            f.path: f.blob_id for f in api.list_repo_tree(repo, revision=oid, recursive=True) if hasattr(f, "blob_id")
        }
        tree.pop(".gitattributes")
        assert tree == expected, f"wrong files at {oid}"
    folder = Path(snapshot_download(repo, cache_dir=tmp_path / "cache", endpoint=hub.url, token=token))
    for _, path, data in acked:
        assert (folder / path).read_bytes() == data
