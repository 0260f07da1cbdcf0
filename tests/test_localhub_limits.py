"""One request must not take the local Hub down for everyone: size caps, auth before bodies, bounded YAML, header
timeouts, clear 4xx answers for malformed bodies, and 507 for a full disk.

Each test runs against a private ``hubui localhub`` subprocess, measured from outside (its /proc status), with the
real huggingface_hub client or raw HTTP as an attacker would send it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import threading
import uuid

import httpx
import pytest
from _hubextra import Tokens, host_port, peak_rss, reset_peak_rss, send_streamed, start_hub_with
from huggingface_hub import HfApi

GB = 1 << 30
MB = 1 << 20

# The 409-byte README of the report: nine levels of nine aliases expand to 9**9 strings.
ALIAS_BOMB = (
    "---\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "---\n# bomb\n"
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tokens = Tokens()
    env = {"HUBUI_LOCALHUB_HEADER_TIMEOUT": "2"}
    proc = start_hub_with(tmp_path_factory.mktemp("limits-hub"), tokens.users(), env=env, extra_args=["--faults"])
    yield proc, tokens
    proc.stop()


@pytest.fixture
def alice(hub) -> HfApi:
    proc, tokens = hub
    return HfApi(endpoint=proc.url, token=tokens.alice)


def _repo(alice: HfApi, private: bool = False) -> str:
    repo_id = f"alice/lim-{uuid.uuid4().hex[:8]}"
    alice.create_repo(repo_id, private=private)
    return repo_id


def _whoami_ok(url: str, token: str) -> bool:
    resp = httpx.get(f"{url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return resp.status_code == 200


# --- item 7: /api/validate-yaml ------------------------------------------------------------------------------
def test_validate_yaml_refuses_a_body_over_its_cap_with_413(hub):
    proc, _ = hub
    content = "---\nlicense: mit\ntags:\n" + "- x\n" * (800 * 1024) + "---\n"  # 3.2 MB
    resp = httpx.post(f"{proc.url}/api/validate-yaml", json={"content": content, "repoType": "model"}, timeout=120)
    assert resp.status_code == 413
    assert "1 MiB" in resp.json()["error"] or "1048576" in resp.json()["error"]


def test_validate_yaml_refuses_an_alias_bomb_naming_aliases(hub):
    proc, _ = hub
    resp = httpx.post(f"{proc.url}/api/validate-yaml", json={"content": ALIAS_BOMB, "repoType": "model"}, timeout=60)
    assert resp.status_code == 400
    assert "alias" in json.dumps(resp.json()).lower()


def test_validate_yaml_still_accepts_a_normal_card(hub):
    proc, _ = hub
    content = "---\nlicense: mit\ntags: [a, b]\nbase: &b {x: 1}\nother: *b\n---\n# card\n"
    resp = httpx.post(f"{proc.url}/api/validate-yaml", json={"content": content, "repoType": "model"}, timeout=60)
    assert resp.status_code == 200, resp.text


# --- item 8: alias bomb in a pushed README ----------------------------------------------------------------------
def test_an_alias_bomb_readme_is_refused_at_commit(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice)
    # huggingface_hub checks a README through /api/validate-yaml first; a raw client commits it directly.
    with pytest.raises(ValueError, match="aliases"):
        alice.upload_file(path_or_fileobj=ALIAS_BOMB.encode(), path_in_repo="README.md", repo_id=repo_id)
    lines = [
        {"key": "header", "value": {"summary": "bomb"}},
        {"key": "file", "value": {"path": "README.md", "content": base64.b64encode(ALIAS_BOMB.encode()).decode()}},
    ]
    resp = httpx.post(
        f"{proc.url}/api/models/{repo_id}/commit/main",
        content=_commit_lines(*lines),
        headers={"Authorization": f"Bearer {tokens.alice}"},
        timeout=60,
    )
    assert resp.status_code == 400 and "aliases" in resp.json()["error"]
    assert alice.list_repo_files(repo_id) == [".gitattributes"]


def commit_readme_through_lfs(url: str, token: str, repo_id: str, text: str) -> None:
    """Put ``text`` in README.md the way a raw client can: as an LFS object, which skips the inline README check."""
    data = text.encode()
    oid = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {token}"}
    batch = httpx.post(
        f"{url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
        headers=auth,
        timeout=60,
    ).json()
    assert httpx.put(batch["objects"][0]["actions"]["upload"]["href"], content=data, timeout=60).status_code == 200
    lines = [
        {"key": "header", "value": {"summary": "readme"}},
        {"key": "lfsFile", "value": {"path": "README.md", "algo": "sha256", "oid": oid, "size": len(data)}},
    ]
    resp = httpx.post(
        f"{url}/api/models/{repo_id}/commit/main", content=_commit_lines(*lines), headers=auth, timeout=60
    )
    assert resp.status_code == 200, resp.text


def test_an_alias_bomb_readme_keeps_repo_info_small(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice)
    commit_readme_through_lfs(proc.url, tokens.alice, repo_id, ALIAS_BOMB)
    received = 0
    with httpx.stream("GET", f"{proc.url}/api/models/{repo_id}", timeout=120) as resp:
        assert resp.status_code == 200
        for part in resp.iter_bytes():
            received += len(part)
            if received > 8 * MB:
                break
    assert received < MB, f"repo info answered {received} bytes for a 409-byte README"
    info = alice.model_info(repo_id)
    assert "README.md" in [s.rfilename for s in info.siblings]
    assert info.card_data is None or dict(info.card_data) == {}
    assert _whoami_ok(proc.url, tokens.bob)


# --- item 10: auth before bodies, capped bodies --------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/validate-yaml"),
        ("POST", "/alice/{repo}.git/info/lfs/objects/batch"),
        ("DELETE", "/api/repos/delete"),
        ("POST", "/api/repos/create"),
        ("POST", "/api/models/alice/{repo}/paths-info/main"),
        ("POST", "/api/models/alice/{repo}/preupload/main"),
        ("POST", "/api/models/alice/{repo}/commit/main"),
        ("PUT", "/api/models/alice/{repo}/settings"),
    ],
)
def test_an_anonymous_gigabyte_post_is_refused_without_growing_memory(hub, alice, method, path):
    proc, _ = hub
    repo_name = _repo(alice).split("/")[1]
    reset_peak_rss(proc.proc.pid)
    before = peak_rss(proc.proc.pid)
    answer = send_streamed(proc.url, method, path.format(repo=repo_name), GB)
    grew = peak_rss(proc.proc.pid) - before
    assert answer.status in (401, 413), answer.head
    assert answer.sent < GB // 4, f"the server read {answer.sent} bytes before answering"
    assert grew < 200 * MB, f"the Hub's peak memory grew by {grew / MB:.0f} MB"


def test_a_declared_gigabyte_is_refused_before_any_byte_is_read(hub):
    proc, _ = hub
    answer = send_streamed(proc.url, "POST", "/api/validate-yaml", GB, chunked=False)
    assert answer.status == 413, answer.head
    assert answer.sent < 64 * MB


def test_an_authenticated_json_body_over_the_cap_is_413(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice)
    auth = {"Authorization": f"Bearer {tokens.alice}"}
    answer = send_streamed(proc.url, "POST", f"/api/models/{repo_id}/preupload/main", GB, headers=auth)
    assert answer.status == 413, answer.head


def test_an_lfs_upload_is_streamed_not_held(hub, alice, tmp_path):
    """A 256 MB LFS upload (real huggingface_hub, from a file) passes through the Hub in blocks: its peak memory grows
    by far less than the file."""
    proc, _ = hub
    repo_id = _repo(alice)
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for _ in range(256):
            fh.write(os.urandom(MB))
    reset_peak_rss(proc.proc.pid)
    before = peak_rss(proc.proc.pid)
    alice.upload_file(path_or_fileobj=str(big), path_in_repo="big.bin", repo_id=repo_id)
    grew = peak_rss(proc.proc.pid) - before
    assert [f for f in alice.list_repo_files(repo_id) if f == "big.bin"] == ["big.bin"]
    assert grew < 96 * MB, f"the Hub's peak memory grew by {grew / MB:.0f} MB for a 256 MB upload"


# --- item 11: slowloris, header floods, malformed bodies, a full disk ----------------------------------------
def test_a_half_sent_header_is_closed_and_others_are_served(hub):
    proc, tokens = hub
    host, port = host_port(proc.url)
    socks = []
    for _ in range(20):
        s = socket.create_connection((host, port), timeout=60)
        s.sendall(b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    assert _whoami_ok(proc.url, tokens.bob)
    for s in socks:
        with s:
            assert _closed_by_server(s), "a half-sent header kept its connection open for 60 s"
    assert _whoami_ok(proc.url, tokens.bob)


def _closed_by_server(s: socket.socket) -> bool:
    """Read until the server closes (True) or the socket's 60 s safety timeout passes (False)."""
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_an_endless_header_is_cut_off(hub):
    proc, tokens = hub
    host, port = host_port(proc.url)
    sent = 0
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\n")
        try:
            while sent < 256 * MB:
                s.sendall(b"X-Pad: " + b"a" * 65536 + b"\r\n")
                sent += 65545
        except OSError:
            pass
    assert sent < 64 * MB, f"the Hub kept reading {sent} bytes of headers"
    assert _whoami_ok(proc.url, tokens.bob)


def test_ndjson_lines_are_split_in_linear_time():
    """A 64 MB line arriving in 1 KB pieces: a parser that re-scans its buffer for a newline per piece does ~2*10^12
    byte comparisons (minutes); a linear one needs about a second. The 60 s join is only a safety net."""
    from hubui.localhub.limits import ndjson_lines

    line = b'{"key":"file","value":"' + b"A" * (64 * MB) + b'"}'
    body = line + b"\n\n" + b'{"key":"header"}\n'

    async def chunks():
        for i in range(0, len(body), 1024):
            yield body[i : i + 1024]

    async def collect():
        return [x async for x in ndjson_lines(chunks(), max_line=96 * MB, max_total=GB)]

    result: list = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(collect())), daemon=True)
    worker.start()
    worker.join(60)
    assert result, "splitting a 64 MB line did not finish in 60 s"
    assert [len(x) for x in result[0]] == [len(line), len(b'{"key":"header"}')]
    assert result[0][0] == line


def _commit_lines(*items: dict) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


MALFORMED = [
    ("POST", "/api/models/alice/{repo}/preupload/main", {"files": [1]}, "files"),
    ("POST", "/api/models/alice/{repo}/preupload/main", {"files": "x"}, "files"),
    ("POST", "/api/models/alice/{repo}/preupload/main", {"files": [{"path": "a", "size": "big"}]}, "size"),
    ("POST", "/alice/{repo}.git/info/lfs/objects/batch", {"operation": "upload", "objects": [1]}, "objects"),
    ("POST", "/alice/{repo}.git/info/lfs/objects/batch", {"operation": "upload", "objects": 5}, "objects"),
    ("POST", "/api/repos/create", {"name": ["x"]}, "name"),
    ("POST", "/api/repos/create", {"name": "x", "organization": ["a"]}, "organization"),
    ("POST", "/api/models/alice/{repo}/branch/b1", {"startingPoint": {"a": 1}}, "startingPoint"),
    ("POST", "/api/models/alice/{repo}/paths-info/main", {"paths": 7}, "paths"),
    ("PUT", "/api/models/alice/{repo}/settings", {"visibility": 3}, "visibility"),
    ("PUT", "/api/models/alice/{repo}/settings", {"private": "maybe"}, "private"),
    ("POST", "/api/validate-yaml", {"content": 5}, "content"),
    ("POST", "/api/validate-yaml", [1, 2], "JSON object"),
]


@pytest.mark.parametrize(("method", "path", "body", "names"), MALFORMED, ids=[f"{m[1]}-{m[3]}" for m in MALFORMED])
def test_malformed_json_bodies_get_a_400_naming_the_problem(hub, alice, method, path, body, names):
    proc, tokens = hub
    repo_name = _repo(alice).split("/")[1]
    resp = httpx.request(
        method,
        proc.url + path.format(repo=repo_name),
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {tokens.alice}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert names in resp.json()["error"]


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (_commit_lines({"key": "header", "value": "not an object"}), "header"),
        (_commit_lines({"key": "header", "value": {"summary": "s"}}, {"key": "file", "value": [1]}), "file"),
        (_commit_lines({"key": "header", "value": {"summary": "s"}}, {"key": "deletedFile", "value": 3}), "deleted"),
        (b'{"key": "header", "value": {"summary": "s"}}\n{not json\n', "line 2"),
        (b"\xff\xfe\n", "line 1"),
    ],
    ids=["header-not-object", "file-not-object", "delete-not-object", "bad-json-line", "not-utf8"],
)
def test_malformed_commit_payloads_get_a_400_naming_the_problem(hub, alice, payload, names):
    proc, tokens = hub
    repo_id = _repo(alice)
    resp = httpx.post(
        f"{proc.url}/api/models/{repo_id}/commit/main",
        content=payload,
        headers={"Authorization": f"Bearer {tokens.alice}", "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert names in resp.json()["error"]
    assert alice.list_repo_commits(repo_id)[0].title == "initial commit"


def test_a_commit_line_over_its_cap_is_413(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice)
    auth = {"Authorization": f"Bearer {tokens.alice}", "Content-Type": "application/x-ndjson"}
    answer = send_streamed(proc.url, "POST", f"/api/models/{repo_id}/commit/main", GB, headers=auth)
    assert answer.status == 413, answer.head
    assert "line" in answer.head


def test_a_regular_file_of_48_mb_in_one_commit_line_lands(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice)
    data = os.urandom(36 * MB)
    payload = _commit_lines(
        {"key": "header", "value": {"summary": "big line"}},
        {"key": "file", "value": {"path": "big.txt", "encoding": "base64", "content": base64.b64encode(data).decode()}},
    )
    resp = httpx.post(
        f"{proc.url}/api/models/{repo_id}/commit/main",
        content=payload,
        headers={"Authorization": f"Bearer {tokens.alice}", "Content-Type": "application/x-ndjson"},
        timeout=300,
    )
    assert resp.status_code == 200, resp.text
    got = httpx.get(f"{proc.url}/{repo_id}/resolve/main/big.txt", timeout=120).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
