"""A commit of 8,000 files in 8,000 folders (a dataset of images in class folders) lists correctly, recursively and
not, without stopping the Hub: another user's whoami completes while a listing is being computed.

Times go to the report (printed with -s), never into an assertion.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import httpx
import pytest
from _hubextra import Tokens, start_hub_with
from huggingface_hub import HfApi

N = 8000


def seed_many_folders(url: str, token: str, repo_id: str, n: int = N) -> None:
    """One commit with ``n`` small files, each in its own folder ``class_i/img.txt``, sent as one NDJSON body."""
    lines = [json.dumps({"key": "header", "value": {"summary": f"{n} folders"}})]
    for i in range(n):
        content = base64.b64encode(f"image {i}".encode()).decode()
        lines.append(json.dumps({"key": "file", "value": {"path": f"class_{i:05d}/img.txt", "content": content}}))
    resp = httpx.post(
        f"{url}/api/datasets/{repo_id}/commit/main",
        content="\n".join(lines).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=600,
    )
    assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory):
    tokens = Tokens()
    proc = start_hub_with(tmp_path_factory.mktemp("tree-hub"), tokens.users(), extra_args=["--faults"])
    repo_id = f"alice/folders-{uuid.uuid4().hex[:6]}"
    HfApi(endpoint=proc.url, token=tokens.alice).create_repo(repo_id, repo_type="dataset")
    seed_many_folders(proc.url, tokens.alice, repo_id)
    yield proc, tokens, repo_id
    proc.stop()


def _in_flight(url: str, path_part: str) -> bool:
    log = httpx.get(f"{url}/_hubui/faults", timeout=30).json()["requests"]  # the loop must answer
    return any(path_part in r["path"] and not r["complete"] for r in log)


def test_listing_8000_folders_is_correct_and_does_not_stop_the_hub(big_repo):
    proc, tokens, repo_id = big_repo
    httpx.delete(f"{proc.url}/_hubui/faults", timeout=60)
    result: dict = {}

    def listing() -> None:
        start = time.monotonic()
        resp = httpx.get(f"{proc.url}/api/datasets/{repo_id}/tree/main?recursive=true", timeout=600)
        result.update(status=resp.status_code, entries=resp.json(), seconds=time.monotonic() - start)

    worker = threading.Thread(target=listing)
    worker.start()
    # Wait until the Hub has the listing request, then ask for whoami while it is (or was) being computed.
    while worker.is_alive() and not _in_flight(proc.url, "/tree/"):
        time.sleep(0.01)
    start = time.monotonic()
    who = httpx.get(f"{proc.url}/api/whoami-v2", headers={"Authorization": f"Bearer {tokens.bob}"}, timeout=30)
    whoami_s = time.monotonic() - start
    overlapped = worker.is_alive()
    worker.join(600)
    assert who.status_code == 200 and who.json()["name"] == "bob"
    assert result["status"] == 200
    entries = result["entries"]
    files = {e["path"] for e in entries if e["type"] == "file"}
    dirs = {e["path"] for e in entries if e["type"] == "directory"}
    assert files == {".gitattributes"} | {f"class_{i:05d}/img.txt" for i in range(N)}
    assert dirs == {f"class_{i:05d}" for i in range(N)}
    assert [e["path"] for e in entries] == sorted(e["path"] for e in entries)
    print(
        f"\nrecursive listing {result['seconds']:.2f}s; whoami meanwhile {whoami_s * 1000:.0f} ms; overlap={overlapped}"
    )


def test_non_recursive_listings_of_8000_folders(big_repo):
    proc, tokens, repo_id = big_repo
    api = HfApi(endpoint=proc.url, token=tokens.bob)
    start = time.monotonic()
    top = list(api.list_repo_tree(repo_id, repo_type="dataset"))
    top_s = time.monotonic() - start
    assert len(top) == N + 1
    folders = [e for e in top if e.path.startswith("class_")]
    assert all(type(e).__name__ == "RepoFolder" for e in folders)
    assert len({e.tree_id for e in folders}) == N, "each folder's oid depends on what it holds"
    inside = list(api.list_repo_tree(repo_id, path_in_repo="class_04321", repo_type="dataset"))
    assert [(e.path, e.size) for e in inside] == [("class_04321/img.txt", len("image 4321"))]
    info = api.get_paths_info(repo_id, ["class_00007", "class_00007/img.txt", "nope"], repo_type="dataset")
    assert sorted(type(e).__name__ for e in info) == ["RepoFile", "RepoFolder"]
    start = time.monotonic()
    files = api.list_repo_files(repo_id, repo_type="dataset")
    all_s = time.monotonic() - start
    assert len(files) == N + 1
    print(f"\nnon-recursive root listing {top_s:.2f}s; list_repo_files {all_s:.2f}s")
