"""`hubui localhub` as a person starts it: flags, config file, start-up line, errors, HTML pages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from _hubproc import start_hub
from huggingface_hub import HfApi

from hubui.localhub import LocalHub, build_directory


def _run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=timeout)


def test_first_stdout_line_is_the_base_url_on_loopback(localhub):
    # The session fixture already started it with --port 0 and parsed the first line.
    assert localhub.url.startswith("http://127.0.0.1:")
    assert int(localhub.url.rsplit(":", 1)[1]) > 0
    assert httpx.get(f"{localhub.url}/api/health").json() == {"status": "ok"}


def test_users_and_orgs_from_a_config_file(tmp_path):
    token = os.urandom(12).hex()
    config = tmp_path / "hub.json"
    config.write_text(
        json.dumps(
            {
                "users": [{"name": "erin", "token": token, "role": "write"}],
                "orgs": [{"name": "lab", "members": ["erin"]}],
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", "localhub", "--root", str(tmp_path / "r"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        api = HfApi(endpoint=url, token=token)
        me = api.whoami(cache=False)
        assert me["name"] == "erin" and [o["name"] for o in me["orgs"]] == ["lab"]
        assert api.create_repo("lab/from-config").repo_id == "lab/from-config"
    finally:
        proc.terminate()
        proc.wait(10)


def test_default_root_is_in_the_user_cache(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", "localhub", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().startswith("http://127.0.0.1:")
        assert (tmp_path / "cache" / "hubui" / "localhub" / "repos").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("alice", "expected 'name:TOKEN[:read|write]'"),
        ("alice:short", "too short"),
        ("alice:longenoughtoken:admin", "Invalid role 'admin'"),
        ("bad name:longenoughtoken", "Invalid user name"),
    ],
)
def test_bad_user_flags_exit_2_with_a_clear_message(flag, message):
    result = _run_cli("localhub", "--user", flag)
    assert result.returncode == 2
    assert message in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    # The token part of a malformed flag is never echoed.
    assert "longenoughtoken" not in result.stderr


def test_org_with_unknown_member_is_refused():
    result = _run_cli("localhub", "--user", "ann:longenoughtoken", "--org", "lab:ann,zed")
    assert result.returncode == 2 and "unknown member(s): zed" in result.stderr


def test_browse_pages_show_files_sizes_and_commits(localhub, repo_name):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(f"alice/{repo_name}")
    api.upload_file(
        path_or_fileobj=b"x" * 2048,
        path_in_repo="weights.txt",
        repo_id=f"alice/{repo_name}",
        commit_message="Add weights <b>bold</b>",
    )
    page = httpx.get(f"{localhub.url}/alice/{repo_name}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "weights.txt" in page.text and "2.05 kB" in page.text  # SI, as the Hub shows sizes
    assert "Add weights &lt;b&gt;bold&lt;/b&gt;" in page.text  # escaped, not injected
    assert "alice" in page.text and "initial commit" in page.text

    api.create_repo(f"team/{repo_name}", repo_type="space", space_sdk="gradio")
    assert httpx.get(f"{localhub.url}/spaces/team/{repo_name}").status_code == 200

    pr = api.upload_file(path_or_fileobj=b"y", path_in_repo="pr.txt", repo_id=f"alice/{repo_name}", create_pr=True)
    pr_page = httpx.get(pr.pr_url)
    assert pr_page.status_code == 200 and "pr.txt" in pr_page.text
    commit_page = httpx.get(pr.commit_url)
    assert commit_page.status_code == 200 and "pr.txt" in commit_page.text

    index = httpx.get(localhub.url + "/")
    assert f"alice/{repo_name}" in index.text


def test_private_repo_page_is_not_shown_to_anonymous(localhub, repo_name):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(f"alice/{repo_name}", private=True)
    assert httpx.get(f"{localhub.url}/alice/{repo_name}").status_code == 404
    assert f"alice/{repo_name}" not in httpx.get(localhub.url + "/").text
    shown = httpx.get(f"{localhub.url}/alice/{repo_name}", headers={"Authorization": f"Bearer {localhub.users.alice}"})
    assert shown.status_code == 200


def test_two_servers_on_two_roots_are_independent(tmp_path):
    token = os.urandom(12).hex()
    a = start_hub(tmp_path / "a", [f"fay:{token}:write"])
    b = start_hub(tmp_path / "b", [f"fay:{token}:write"])
    try:
        HfApi(endpoint=a.url, token=token).create_repo("fay/only-on-a")
        assert HfApi(endpoint=a.url, token=token).repo_exists("fay/only-on-a")
        assert not HfApi(endpoint=b.url, token=token).repo_exists("fay/only-on-a")
    finally:
        a.stop()
        b.stop()


def _server_side_socket(port: int, client_port: int) -> socket.socket:
    """The server's end of a loopback connection in this process (Linux: found through /proc/self/fd)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            candidate = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            if (
                candidate.family in (socket.AF_INET, socket.AF_INET6)
                and candidate.getsockname()[1] == port
                and candidate.getpeername()[1] == client_port
            ):
                return candidate
        except OSError:
            pass
        candidate.close()
    raise AssertionError(f"no server socket for 127.0.0.1:{client_port} -> {port}")


def test_connections_are_served_without_nagle_delay(tmp_path):
    """With Nagle on, every response after the first on a kept-alive connection waited for the client's delayed
    ACK (~40 ms per Hub call, 9 calls per push). asyncio turns it off only for sockets created as IPPROTO_TCP."""
    with LocalHub(tmp_path, build_directory([])) as hub:
        port = int(hub.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 401")
            server_side = _server_side_socket(port, client.getsockname()[1])
            with server_side:
                assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
