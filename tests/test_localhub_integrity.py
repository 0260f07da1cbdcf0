"""What the local Hub promises about data: stale parents refused, bad bytes never stored,
atomic commits across a crash, everything intact across a restart, bodies streamed, concurrency."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _hubproc import start_hub
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from hubui.localhub import Store


def _lfs_batch(localhub, repo: str, oid: str, size: int) -> dict:
    resp = httpx.post(
        f"{localhub.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
        headers={"Authorization": f"Bearer {localhub.users.alice}", "Accept": "application/vnd.git-lfs+json"},
    )
    resp.raise_for_status()
    return resp.json()["objects"][0]


def _stored_objects(root: Path) -> set[str]:
    return {p.name for p in (root / "objects").glob("*/*")}


def test_stale_parent_commit_is_refused(alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    base = alice.model_info(repo).sha
    alice.upload_file(path_or_fileobj=b"first", path_in_repo="a.txt", repo_id=repo, parent_commit=base)
    with pytest.raises(HfHubHTTPError) as exc:
        alice.upload_file(path_or_fileobj=b"second", path_in_repo="b.txt", repo_id=repo, parent_commit=base)
    assert exc.value.response.status_code == 412
    assert "b.txt" not in alice.list_repo_files(repo)


def test_bytes_that_do_not_match_their_sha256_never_land(localhub, alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    good = os.urandom(4096)
    oid = hashlib.sha256(good).hexdigest()
    action = _lfs_batch(localhub, repo, oid, len(good))
    href = action["actions"]["upload"]["href"]

    tampered = bytearray(good)
    tampered[100] ^= 0xFF
    resp = httpx.put(href, content=bytes(tampered))
    assert resp.status_code == 400 and "sha256" in resp.json()["error"]
    too_long = httpx.put(href, content=good + b"extra")
    assert too_long.status_code == 400
    assert oid not in _stored_objects(localhub.root)
    assert list((localhub.root / "tmp").iterdir()) == []

    # Without a stored object, a commit that points at it is refused as a whole.
    lines = [
        {"key": "header", "value": {"summary": "pointer to nothing", "description": ""}},
        {"key": "file", "value": {"path": "ok.txt", "content": "aGk=", "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(good)}},
    ]
    resp = httpx.post(
        f"{localhub.url}/api/models/{repo}/commit/main",
        content="".join(json.dumps(line) + "\n" for line in lines),
        headers={"Authorization": f"Bearer {localhub.users.alice}", "Content-Type": "application/x-ndjson"},
    )
    assert resp.status_code == 400 and "w.bin" in resp.json()["error"]
    assert alice.list_repo_files(repo) == [".gitattributes"]

    # The honest upload still works, and the object is then stored once.
    assert httpx.put(href, content=good).status_code == 200
    assert oid in _stored_objects(localhub.root)


def test_upload_link_is_signed(localhub, alice, repo_name):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    data = b"payload" * 100
    action = _lfs_batch(localhub, repo, hashlib.sha256(data).hexdigest(), len(data))
    href = action["actions"]["upload"]["href"]
    forged = href[:-4] + ("0000" if not href.endswith("0000") else "1111")
    assert httpx.put(forged, content=data).status_code == 403


def test_already_stored_objects_are_skipped(localhub, alice, repo_name, tmp_path):
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(50_000))
    alice.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo)
    oid = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "actions" not in _lfs_batch(localhub, repo, oid, weights.stat().st_size)


def _run_crashing_commit(root: Path) -> subprocess.CompletedProcess:
    # A real process that dies (os._exit, no cleanup) between writing the commit and moving the ref.
    code = textwrap.dedent(
        f"""
        import os
        from hubui.localhub import storage
        store = storage.Store({str(root)!r})
        meta = store.get_repo("model", "alice/crash")
        real = storage._write_atomic
        def dying(path, data):
            if path.name == "refs.json":
                os._exit(9)
            real(path, data)
        storage._write_atomic = dying
        entry = store.put_bytes(b"new content")
        store.commit(meta, "main", [storage.AddFile("a.txt", entry)], author="alice", summary="doomed")
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_crash_mid_commit_leaves_previous_revision_whole(tmp_path):
    store = Store(tmp_path)
    meta = store.create_repo("model", "alice", "crash", private=False, author="alice")
    from hubui.localhub.storage import AddFile

    first, _ = store.commit(
        meta, "main", [AddFile("a.txt", store.put_bytes(b"old content"))], author="alice", summary="good"
    )
    store.close()  # one Store per root: the crashing process must get the root
    result = _run_crashing_commit(tmp_path)
    assert result.returncode == 9, result.stderr

    reopened = Store(tmp_path)
    head = reopened.resolve(meta, "main")
    assert head.id == first.id
    entry = head.files["a.txt"]
    assert reopened.object_path(entry.sha256).read_bytes() == b"old content"
    # The store keeps working after the crash.
    after, _ = reopened.commit(
        meta, "main", [AddFile("b.txt", reopened.put_bytes(b"b"))], author="alice", summary="after"
    )
    assert after.parents == (first.id,)


def test_restart_keeps_everything(tmp_path, fresh_cache):
    token = os.urandom(12).hex()
    hub = start_hub(tmp_path / "root", [f"carol:{token}:write"])
    files = {"model.safetensors": os.urandom(300_000), "config.json": b'{"x": 1}'}
    try:
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo("carol/kept")
        api.create_commit("carol/kept", [CommitOperationAdd(p, d) for p, d in files.items()], commit_message="weights")
        api.create_branch("carol/kept", branch="dev")
        pr = api.upload_file(path_or_fileobj=b"pr", path_in_repo="pr.txt", repo_id="carol/kept", create_pr=True)
        sha = api.model_info("carol/kept").sha
    finally:
        hub.stop()

    hub2 = start_hub(tmp_path / "root", [f"carol:{token}:write"])
    try:
        api = HfApi(endpoint=hub2.url, token=token)
        assert api.model_info("carol/kept").sha == sha
        for name, data in files.items():
            path = hf_hub_download("carol/kept", name, cache_dir=fresh_cache, endpoint=hub2.url, token=token)
            assert Path(path).read_bytes() == data
        refs = api.list_repo_refs("carol/kept", include_pull_requests=True)
        assert {b.name for b in refs.branches} == {"main", "dev"}
        assert [p.ref for p in refs.pull_requests] == [pr.pr_revision]
        assert api.list_repo_commits("carol/kept")[0].title == "weights"
    finally:
        hub2.stop()


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def test_large_bodies_are_streamed_not_held_in_memory(tmp_path, fresh_cache):
    # 256 MB through upload and download: the server's peak RSS must grow far less than that.
    token = os.urandom(12).hex()
    hub = start_hub(tmp_path / "root", [f"dave:{token}:write"])
    try:
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo("dave/big")
        big = tmp_path / "big.bin"
        chunk = os.urandom(1024 * 1024)
        with big.open("wb") as fh:
            for i in range(256):
                fh.write(chunk[i:] + chunk[:i])
        before = _peak_rss_kib(hub.proc.pid)
        api.upload_file(path_or_fileobj=str(big), path_in_repo="big.bin", repo_id="dave/big")
        path = hf_hub_download("dave/big", "big.bin", cache_dir=fresh_cache, endpoint=hub.url, token=token)
        grown_mib = (_peak_rss_kib(hub.proc.pid) - before) / 1024
        assert os.path.getsize(path) == big.stat().st_size
        assert grown_mib < 64, f"server peak RSS grew by {grown_mib:.0f} MiB for a 256 MiB file"
    finally:
        hub.stop()


def test_concurrent_commits_all_land(localhub, alice, repo_name):
    repo = f"team/{repo_name}"
    alice.create_repo(repo)
    bob = HfApi(endpoint=localhub.url, token=localhub.users.bob)
    bob.create_repo(f"bob/{repo_name}")

    def push(i: int) -> str:
        api, target = (alice, repo) if i % 2 == 0 else (bob, f"bob/{repo_name}")
        data = os.urandom(20_000)
        api.upload_file(path_or_fileobj=data, path_in_repo=f"w{i}.safetensors", repo_id=target)
        return target

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(push, range(16)))
    assert len([f for f in alice.list_repo_files(repo) if f.startswith("w")]) == 8
    assert len([f for f in bob.list_repo_files(f"bob/{repo_name}") if f.startswith("w")]) == 8
    authors = {a for c in alice.list_repo_commits(repo) for a in c.authors}
    assert authors == {"alice"}


def test_requests_are_served_while_an_upload_is_in_flight(localhub, alice, repo_name):
    # A slow upload must not block other clients: the server is asynchronous.
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    data = os.urandom(1024 * 1024)
    action = _lfs_batch(localhub, repo, hashlib.sha256(data).hexdigest(), len(data))
    release = threading.Event()

    def slow_body():
        yield data[:1000]
        release.wait(20)
        yield data[1000:]

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: httpx.put(action["actions"]["upload"]["href"], content=slow_body(), timeout=60))
        try:
            assert alice.whoami(cache=False)["name"] == "alice"
            assert alice.repo_exists(repo)
        finally:
            release.set()
        assert future.result().status_code == 200
