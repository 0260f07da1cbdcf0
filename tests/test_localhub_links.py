"""Signed LFS links are bound to their operation, repo, object and visibility, expire quickly, and never reach a
log; files that a browser would run (HTML, SVG) are served as downloads.

Each test talks to a private ``hubui localhub`` subprocess (access log on) with the real huggingface_hub client or
plain HTTP, as a client holding a leaked link would.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

import httpx
import pytest
from _hubextra import Tokens, start_hub_with
from huggingface_hub import HfApi, hf_hub_download


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tokens = Tokens()
    proc = start_hub_with(tmp_path_factory.mktemp("links-hub"), tokens.users(), extra_args=["--log-level", "debug"])
    yield proc, tokens
    proc.stop()


@pytest.fixture
def alice(hub) -> HfApi:
    proc, tokens = hub
    return HfApi(endpoint=proc.url, token=tokens.alice)


def _repo(alice: HfApi, private: bool) -> str:
    repo_id = f"alice/links-{uuid.uuid4().hex[:8]}"
    alice.create_repo(repo_id, private=private)
    return repo_id


def _batch(url: str, repo_id: str, operation: str, data: bytes, token: str | None) -> dict:
    oid = hashlib.sha256(data).hexdigest()
    headers = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"operation": operation, "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}
    resp = httpx.post(f"{url}/{repo_id}.git/info/lfs/objects/batch", json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["objects"][0]


def _upload_lfs(alice: HfApi, repo_id: str, data: bytes, name: str = "weights.bin") -> None:
    alice.upload_file(path_or_fileobj=data, path_in_repo=name, repo_id=repo_id)


def test_an_upload_link_cannot_download_a_private_object(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice, private=True)
    data = os.urandom(4096)
    obj = _batch(proc.url, repo_id, "upload", data, tokens.alice)
    href = obj["actions"]["upload"]["href"]
    assert httpx.put(href, content=data, timeout=30).status_code == 200
    leaked = httpx.get(href, timeout=30)  # no token: just the link, as found in a log
    assert leaked.status_code == 403, "an upload link must not download the object"
    assert data not in leaked.content
    assert "upload" in leaked.json()["error"]


def test_a_download_link_cannot_upload(hub, alice):
    proc, _tokens = hub
    repo_id = _repo(alice, private=False)
    data = os.urandom(4096)
    _upload_lfs(alice, repo_id, data)
    href = _batch(proc.url, repo_id, "download", data, None)["actions"]["download"]["href"]
    assert httpx.get(href, timeout=30).content == data
    put = httpx.put(href, content=data, timeout=30)
    assert put.status_code == 403, "a download link must not accept a PUT"
    assert "download" in put.json()["error"]
    verify = httpx.post(href.replace("?", "/verify?", 1), json={}, timeout=30)
    assert verify.status_code == 403


def test_changing_the_operation_in_a_link_breaks_its_signature(hub, alice):
    proc, _tokens = hub
    repo_id = _repo(alice, private=False)
    data = os.urandom(2048)
    _upload_lfs(alice, repo_id, data)
    href = _batch(proc.url, repo_id, "download", data, None)["actions"]["download"]["href"]
    assert "op=download" in href
    forged = href.replace("op=download", "op=upload")
    assert httpx.put(forged, content=data, timeout=30).status_code == 403
    assert httpx.get(forged, timeout=30).status_code == 403


def test_a_public_download_link_dies_when_the_repo_becomes_private(hub, alice):
    proc, _tokens = hub
    repo_id = _repo(alice, private=False)
    data = os.urandom(4096)
    _upload_lfs(alice, repo_id, data)
    href = _batch(proc.url, repo_id, "download", data, None)["actions"]["download"]["href"]
    assert httpx.get(href, timeout=30).content == data
    alice.update_repo_settings(repo_id, private=True)
    after = httpx.get(href, timeout=30)
    assert after.status_code == 403
    assert "private" in after.json()["error"]
    assert data not in after.content


def test_links_expire_within_minutes(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice, private=False)
    data = os.urandom(1024)
    _upload_lfs(alice, repo_id, data)
    down = _batch(proc.url, repo_id, "download", data, None)["actions"]["download"]
    assert down["expires_in"] <= 300, "a download link must expire within 5 minutes"
    up = _batch(proc.url, repo_id, "upload", os.urandom(1024), tokens.alice)["actions"]["upload"]
    assert up["expires_in"] <= 3600
    expired = down["href"].replace("expires=", "expires=1")  # a tampered expiry breaks the signature too
    assert httpx.get(expired, timeout=30).status_code == 403


def test_signed_links_never_reach_the_server_log(hub, alice):
    proc, tokens = hub
    repo_id = _repo(alice, private=True)
    data = os.urandom(4096)
    _upload_lfs(alice, repo_id, data)
    obj = _batch(proc.url, repo_id, "download", data, tokens.alice)
    assert httpx.get(obj["actions"]["download"]["href"], timeout=30).content == data
    sig = obj["actions"]["download"]["href"].split("sig=", 1)[1]
    log = "".join(proc.stderr_tail)
    assert "/_lfs/" in log, "the access log is on, so it would show the links"
    assert "sig=" not in log and sig not in log


def test_signed_links_never_reach_the_clients_verbose_log(hub, alice, caplog, capsys):
    from hubui import cli

    cli.main(["-v", "models", "timm", "resnet18"])  # sets up hubui's logging as every CLI command does
    capsys.readouterr()
    repo_id = _repo(alice, private=True)
    with caplog.at_level(logging.DEBUG):
        _upload_lfs(alice, repo_id, os.urandom(4096), "secret.bin")
    assert "/_lfs/" in caplog.text, "httpx logs each request at INFO"
    assert "sig=" not in caplog.text


# --- item 14: active content is served as a download -------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("page.html", b"<html><script>fetch('/api/whoami-v2')</script></html>"),
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("notes.xhtml", b"<html xmlns='http://www.w3.org/1999/xhtml'><script>1</script></html>"),
    ],
)
def test_active_content_is_served_as_a_download(hub, alice, tmp_path, name, content):
    proc, _tokens = hub
    repo_id = _repo(alice, private=False)
    alice.upload_file(path_or_fileobj=content, path_in_repo=name, repo_id=repo_id)
    resp = httpx.get(f"{proc.url}/{repo_id}/resolve/main/{name}", timeout=30)
    assert resp.status_code == 200 and resp.content == content
    assert resp.headers["content-disposition"].startswith("attachment")
    assert resp.headers["x-content-type-options"] == "nosniff"
    got = hf_hub_download(repo_id, name, endpoint=proc.url, cache_dir=tmp_path / "cache", token=False)
    assert Path(got).read_bytes() == content


def test_plain_text_stays_inline_with_nosniff(hub, alice):
    proc, _tokens = hub
    repo_id = _repo(alice, private=False)
    alice.upload_file(path_or_fileobj=b"hello", path_in_repo="notes.txt", repo_id=repo_id)
    resp = httpx.get(f"{proc.url}/{repo_id}/resolve/main/notes.txt", timeout=30)
    assert resp.headers["content-disposition"].startswith("inline")
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["x-content-type-options"] == "nosniff"
