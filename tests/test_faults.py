"""Faults injected into a real local Hub: server errors, rate limits, a server killed mid-upload, a
network drop during the verification, and a full disk while exporting.

The Hub here is a subprocess of its own started with ``--faults``; each test sets rules through
``/_hubui/faults`` (see hubui/localhub/faults.py) and reads back which requests the server saw.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _hubproc import HubProcess, free_port, start_hub
from huggingface_hub import HfApi

from hubui import cli
from hubui.errors import ExportError, HubUnreachableError, PushError
from hubui.pipeline import ConvertOptions, convert, publish
from hubui.publishing import PushRequest, push, verify_push
from hubui.spec import ModelSpec

USER = "fran"


@dataclass
class FaultyHub:
    """A local Hub with fault injection, and the token of its one write user."""

    hub: HubProcess
    token: str

    @property
    def url(self) -> str:
        return self.hub.url

    def add(self, *rules: dict[str, Any]) -> None:
        resp = httpx.post(f"{self.url}/_hubui/faults", json={"rules": list(rules)}, timeout=10)
        assert resp.status_code == 200, resp.text

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_hubui/faults", timeout=10).json()

    def reset(self) -> None:
        httpx.delete(f"{self.url}/_hubui/faults", timeout=10).raise_for_status()

    def fired(self) -> list[int]:
        return [r["fired"] for r in self.state()["rules"]]

    def requests(self, method: str, pattern: str) -> list[dict[str, Any]]:
        return [r for r in self.state()["requests"] if r["method"] == method and re.search(pattern, r["path"])]


@pytest.fixture(scope="module")
def faulty_hub(tmp_path_factory) -> Iterator[FaultyHub]:
    token = secrets.token_hex(16)
    hub = start_hub(tmp_path_factory.mktemp("faulty") / "hub", [f"{USER}:{token}:write"], faults=True)
    yield FaultyHub(hub, token)
    hub.stop()


@pytest.fixture
def hub(faulty_hub: FaultyHub, monkeypatch) -> Iterator[FaultyHub]:
    """The faulty Hub with no rules, as HF_ENDPOINT, and hubui's retries waiting 50 ms instead of seconds."""
    monkeypatch.setenv("HF_ENDPOINT", faulty_hub.url)
    monkeypatch.setenv("HUBUI_HTTP_BACKOFF", "0.05")
    faulty_hub.reset()
    yield faulty_hub
    faulty_hub.reset()


@pytest.fixture
def fast_hf_hub_backoff(monkeypatch) -> None:
    """huggingface_hub's own retries wait 1, 2, 4, 8, 8 s; shorten only the waits, not which calls retry."""
    import inspect

    from huggingface_hub.utils import _http

    for fn in (_http.http_backoff, inspect.unwrap(_http.http_stream_backoff)):
        monkeypatch.setitem(fn.__kwdefaults__, "base_wait_time", 0.05)
        monkeypatch.setitem(fn.__kwdefaults__, "max_wait_time", 0.2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "test_resnet"
    result = convert(ModelSpec("timm", "test_resnet", seed=4), ConvertOptions(out))
    assert result.passed
    return out


def _api(hub: FaultyHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.token)


def _new_repo() -> str:
    return f"{USER}/f-{secrets.token_hex(5)}"


def _commit_rule(repo: str, **fault: Any) -> dict[str, Any]:
    return {"method": "POST", "path": f"^/api/models/{re.escape(repo)}/commit/", **fault}


# --- the fault endpoint itself ----------------------------------------------------------------------
def test_fault_endpoint_is_off_unless_asked_for(localhub):
    # The session's Hub was started without --faults: the path is just an unknown repo page.
    assert httpx.get(f"{localhub.url}/_hubui/faults").status_code == 404
    assert httpx.post(f"{localhub.url}/_hubui/faults", json={"rules": []}).status_code in (404, 405)


def test_embedded_hub_serves_faults_only_when_asked(tmp_path):
    from hubui.localhub import LocalHub, build_directory

    users = build_directory([f"gus:{secrets.token_hex(8)}:write"])
    with LocalHub(tmp_path / "plain", users) as plain, LocalHub(tmp_path / "faulty", users, faults=True) as faulty:
        assert httpx.get(f"{plain.url}/_hubui/faults").status_code == 404
        httpx.post(f"{faulty.url}/_hubui/faults", json={"rules": [{"path": "health", "action": "status"}]})
        assert httpx.get(f"{faulty.url}/api/health").status_code == 503
        assert httpx.get(f"{faulty.url}/api/health").status_code == 200  # times=1 by default


def test_retry_settings_from_the_environment(monkeypatch):
    from hubui.errors import InvalidInputError
    from hubui.publishing import RetryPolicy

    monkeypatch.setenv("HUBUI_HTTP_RETRIES", "2")
    monkeypatch.setenv("HUBUI_HTTP_BACKOFF", "0.5")
    policy = RetryPolicy.from_env()
    assert (policy.retries, [policy.delay(i) for i in range(3)]) == (2, [0.5, 1.0, 2.0])
    monkeypatch.setenv("HUBUI_HTTP_RETRIES", "many")
    with pytest.raises(InvalidInputError, match=r"HUBUI_HTTP_RETRIES.*'many'"):
        RetryPolicy.from_env()


def test_bad_rules_are_refused_naming_the_field(hub):
    for rule, named in (
        ({"path": "(", "action": "status"}, "regex"),
        ({"path": "x", "action": "explode"}, "explode"),
        ({"path": "x", "action": "status", "status": 200}, "200"),
        ({"path": "x", "action": "status", "colour": "red"}, "colour"),
    ):
        resp = httpx.post(f"{hub.url}/_hubui/faults", json={"rules": [rule]})
        assert resp.status_code == 400 and named in resp.json()["error"]
    assert hub.state()["rules"] == []


# --- 5xx and 429 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 503])
def test_commit_answered_with_server_errors_is_retried(hub, exported, status):
    repo = _new_repo()
    hub.add(_commit_rule(repo, action="status", status=status, times=2))
    lines: list[str] = []
    result = publish(PushRequest(exported, repo, allow_random_weights=True), token=hub.token, progress=lines.append)
    assert hub.fired() == [2]
    assert len(hub.requests("POST", f"/api/models/{repo}/commit/")) == 3
    assert result.push.changed and result.verification is not None and result.verification.status == "passed"
    commits = _api(hub).list_repo_commits(repo)
    assert len(commits) == 2 and commits[0].commit_id == result.push.commit_oid
    assert sum(f"HTTP {status} from the Hub; retrying" in line for line in lines) == 2


def test_every_step_of_a_push_and_its_verification_survives_one_503(hub, exported, fast_hf_hub_backoff):
    # One 503 on each kind of request: hubui retries its own calls, huggingface_hub its preupload and LFS ones.
    repo = _new_repo()
    steps = [
        ("GET", r"^/api/whoami-v2$"),
        ("GET", f"^/api/models/{repo}$"),
        ("POST", r"^/api/repos/create$"),
        ("POST", f"^/api/models/{repo}/preupload/"),
        ("POST", f"^/{repo}.git/info/lfs/objects/batch$"),
        ("PUT", f"^/_lfs/model/{repo}/"),
        ("POST", f"^/api/models/{repo}/commit/"),
        ("GET", f"^/api/models/{repo}/tree/"),
        ("GET", f"^/{repo}/resolve/"),
    ]
    hub.add(*({"method": m, "path": p, "action": "status", "status": 503, "times": 1} for m, p in steps))
    result = publish(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    assert hub.fired() == [1] * len(steps), hub.state()["rules"]
    assert result.verification is not None and result.verification.status == "passed"
    assert set(_api(hub).list_repo_files(repo)) >= {"config.json", "model.safetensors", "README.md"}


def test_reading_the_existing_readme_survives_a_503(hub, exported):
    repo = _new_repo()
    push(
        PushRequest(exported, repo, allow_random_weights=True),
        token=hub.token,
        card="---\nlicense: mit\n---\nfirst card\n",
    )
    hub.add({"method": "GET", "path": f"^/{repo}/resolve/[^/]+/README.md$", "action": "status", "times": 1})
    again = push(
        PushRequest(exported, repo, commit_message="again", allow_random_weights=True),
        token=hub.token,
        card="second card\n",
    )
    assert hub.fired() == [1]
    # The existing README was read (readme_mode "keep"), so it is still the first one.
    assert not again.changed
    assert "first card" in Path(_api(hub).hf_hub_download(repo, "README.md", cache_dir=hub.hub.root / "c")).read_text()


def test_persistent_500_on_the_commit_ends_in_a_clear_error(hub, exported, monkeypatch):
    monkeypatch.setenv("HUBUI_HTTP_RETRIES", "2")
    repo = _new_repo()
    hub.add(_commit_rule(repo, action="status", status=500, times=None))
    with pytest.raises(PushError) as info:
        push(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    assert hub.fired() == [3]  # the first try and 2 retries
    err = info.value
    assert "HTTP 500" in err.message and repo in err.message and "after retries" in err.message
    assert "Nothing was committed" in err.hint and "push again" in err.hint
    assert hub.token not in str(err)
    assert [c.title for c in _api(hub).list_repo_commits(repo)] == ["initial commit"]


def test_429_with_retry_after_is_waited_for_then_retried(hub, exported):
    repo = _new_repo()
    hub.add(_commit_rule(repo, action="status", status=429, retry_after=1, times=1))
    lines: list[str] = []
    result = push(PushRequest(exported, repo, allow_random_weights=True), token=hub.token, progress=lines.append)
    assert hub.fired() == [1] and result.changed
    # The Hub's Retry-After (1 s) is what hubui waited, not its own 50 ms backoff.
    assert any("HTTP 429 from the Hub; retrying in 1.0s" in line for line in lines), lines
    assert len(_api(hub).list_repo_commits(repo)) == 2


def test_429_asking_for_an_hour_fails_at_once_saying_so(hub, exported):
    repo = _new_repo()
    hub.add(_commit_rule(repo, action="status", status=429, retry_after=3600, times=None))
    with pytest.raises(PushError) as info:
        push(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    assert hub.fired() == [1]
    assert "HTTP 429" in info.value.message and "3600s" in info.value.message
    assert "Wait" in info.value.hint


def test_a_pull_request_commit_is_not_resent_after_an_ambiguous_500(hub, exported, monkeypatch):
    # A 500 may come after the Hub opened the PR; sending the commit again could open a second one.
    repo = _new_repo()
    push(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    hub.add(_commit_rule(repo, action="status", status=500, times=None))
    changed = PushRequest(
        exported, repo, create_pr=True, commit_message="second", commit_description="x", allow_random_weights=True
    )
    with pytest.raises(PushError, match="HTTP 500"):
        push(changed, token=hub.token, card="---\nlicense: mit\n---\nchanged card\n")
    assert hub.fired() == [1]


# --- server killed mid-upload ---------------------------------------------------------------------
def _big_folder(exported: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "big"
    shutil.copytree(exported, folder)
    oids = {}
    for name in ("a.safetensors", "b.safetensors"):
        data = os.urandom(3 * 1024 * 1024)
        (folder / name).write_bytes(data)
        oids[name] = hashlib.sha256(data).hexdigest()
    return folder, oids


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_server_killed_mid_upload_then_the_same_push_resumes(tmp_path, exported, monkeypatch, fast_hf_hub_backoff):
    monkeypatch.setenv("HUBUI_HTTP_BACKOFF", "0.05")
    folder, oids = _big_folder(exported, tmp_path)
    token, port, root = secrets.token_hex(16), free_port(), tmp_path / "hub"
    users = [f"{USER}:{token}:write"]
    hub = FaultyHub(start_hub(root, users, port=port, faults=True), token)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    repo = _new_repo()
    # b.safetensors crawls at 128 KB/s, so a.safetensors is complete long before b is.
    hub.add({"method": "PUT", "path": oids["b.safetensors"], "action": "throttle", "rate": 128 * 1024, "times": None})
    failure: list[BaseException] = []

    def run() -> None:
        try:
            push(PushRequest(folder, repo, allow_random_weights=True), token=token)
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    pusher = threading.Thread(target=run)
    try:
        pusher.start()

        def a_done_b_started() -> bool:
            puts = {r["path"].split("/")[-2]: r for r in hub.requests("PUT", "^/_lfs/")}
            a, b = puts.get(oids["a.safetensors"]), puts.get(oids["b.safetensors"])
            return bool(a and a["complete"] and a["status"] == 200 and b and b["received"] > 0)

        _wait_for(a_done_b_started)
        hub.hub.kill()
        pusher.join(120)
        assert not pusher.is_alive()
    finally:
        hub.hub.kill()

    # A clear error that names the repo and says what to do; nothing committed.
    assert len(failure) == 1 and isinstance(failure[0], HubUnreachableError), failure
    err = failure[0]
    assert repo in err.message and "nothing was committed" in err.message
    assert "push again" in err.hint and "not sent again" in err.hint

    hub = FaultyHub(start_hub(root, users, port=port, faults=True), token)
    try:
        assert hub.url == f"http://127.0.0.1:{port}"
        api = _api(hub)
        assert [c.title for c in api.list_repo_commits(repo)] == ["initial commit"]
        assert api.list_repo_files(repo) == [".gitattributes"]

        result = push(PushRequest(folder, repo, allow_random_weights=True), token=token)
        assert result.changed
        uploaded = [r["path"].split("/")[-2] for r in hub.requests("PUT", "^/_lfs/")]
        assert oids["a.safetensors"] not in uploaded  # received before the kill: not sent again
        assert uploaded.count(oids["b.safetensors"]) == 1
        assert {"a.safetensors", "b.safetensors", "model.safetensors"} <= set(api.list_repo_files(repo))
        got = api.hf_hub_download(repo, "b.safetensors", cache_dir=tmp_path / "cache")
        assert hashlib.sha256(Path(got).read_bytes()).hexdigest() == oids["b.safetensors"]
    finally:
        hub.hub.stop()


def test_sigterm_mid_upload_removes_the_temporary_export_and_commits_nothing(hub, tmp_path):
    """``docker stop``, a CI timeout or ``kill`` send SIGTERM: `hubui push` must clean up like on Ctrl+C."""
    repo = _new_repo()
    hub.add({"method": "PUT", "path": "^/_lfs/", "action": "throttle", "rate": 16 * 1024, "times": None})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    argv = ["push", "--model", "test_resnet", "--seed", "4", "--allow-random-weights", "--repo-id", repo]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        _wait_for(lambda: any(r["received"] > 0 for r in hub.requests("PUT", "^/_lfs/")), timeout=180)
        # The temporary export is there mid-upload, so its absence below means it was removed.
        assert list(tmp.glob("hubui-push-*/export/model.safetensors"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("hubui")) == []
    assert [c.title for c in _api(hub).list_repo_commits(repo)] == ["initial commit"]
    assert hub.token not in out + err


# --- network drop during the verification ---------------------------------------------------------
DROP_DOWNLOADS = (
    {"method": "GET", "path": r"/tree/|/resolve/", "action": "drop", "times": None},
    {"method": "HEAD", "path": r"/resolve/", "action": "drop", "times": None},
)


def test_network_drop_during_verification_is_not_completed(hub, exported, fast_hf_hub_backoff):
    repo = _new_repo()
    hub.add(*DROP_DOWNLOADS)
    result = publish(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    assert result.push.changed
    assert _api(hub).list_repo_commits(repo)[0].commit_id == result.push.commit_oid  # the push landed
    verification = result.verification
    assert verification is not None and verification.status == "not completed"
    assert "The push landed" in verification.detail and hub.token not in verification.detail
    assert verification.parity is None
    # huggingface_hub retried the tree listing 5 times; hubui did not retry on top of that.
    tree = hub.requests("GET", f"^/api/models/{repo}/tree/")
    assert len(tree) == 6 and all(r["fault"] == "drop" and not r["complete"] for r in tree)


def test_verification_not_completed_when_the_hub_goes_away(tmp_path, exported, monkeypatch, fast_hf_hub_backoff):
    # A Hub of its own, stopped between the push and the re-download (moved here from test_publishing.py,
    # where huggingface_hub's full 23 s of backoff made it slow).
    from hubui.pipeline import reference_from_folder

    token = secrets.token_hex(12)
    gone = start_hub(tmp_path / "hub", [f"gail:{token}:write"])
    monkeypatch.setenv("HF_ENDPOINT", gone.url)
    monkeypatch.setenv("HUBUI_HTTP_BACKOFF", "0.05")
    try:
        result = push(PushRequest(exported, "gail/gone", allow_random_weights=True), token=token)
        gone.stop()
        verification = verify_push(result, reference_from_folder(exported), "fp32", token=token)
    finally:
        gone.stop()
    assert verification.status == "not completed"
    assert "The push landed" in verification.detail and token not in verification.detail


def test_network_drop_mid_file_during_verification(hub, exported):
    # The connection drops after 1000 bytes of every weights download.
    repo = _new_repo()
    result = push(PushRequest(exported, repo, allow_random_weights=True), token=hub.token)
    hub.add({"method": "GET", "path": f"^/{repo}/resolve/.*safetensors", "action": "drop", "after_bytes": 1000})
    from hubui.pipeline import reference_from_folder

    verification = verify_push(result, reference_from_folder(exported), "fp32", token=hub.token)
    # One drop: huggingface_hub resumes the download and the check completes.
    assert hub.fired() == [1]
    assert verification.status == "passed"


def test_cli_says_the_push_landed_and_the_verification_did_not_complete(
    hub, exported, monkeypatch, capsys, fast_hf_hub_backoff
):
    repo = _new_repo()
    hub.add(*DROP_DOWNLOADS)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    code = cli.main(["push", "--from", str(exported), "--repo-id", repo, "--allow-random-weights", "--json"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["commit_oid"] == _api(hub).list_repo_commits(repo)[0].commit_id  # the push landed
    assert data["verification"]["status"] == "not completed"
    assert "push landed" in err and "NOT completed" in err and "Traceback" not in err
    assert code == cli.EXIT_NOT_VERIFIED  # neither 0 (verified) nor 1 (nothing says the model is wrong)
    assert hub.token not in out + err


# --- full disk while exporting --------------------------------------------------------------------
def _fill_disk_after(nbytes: int, error: Exception):
    """A stand-in for safetensors.torch.save_file that writes ``nbytes`` and then hits a full disk."""

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        with open(filename, "wb") as fh:
            fh.write(b"\0" * nbytes)
        raise error

    return save_file


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        # What safetensors 0.8 itself raises when the disk fills.
        "safetensors",
    ],
)
def test_full_disk_while_exporting_leaves_nothing_that_looks_valid(tmp_path, monkeypatch, error):
    import safetensors
    import safetensors.torch

    from hubui.export import export_model
    from hubui.loading import load_model

    if error == "safetensors":
        error = safetensors.SafetensorError(
            'Error while serializing: I/O error: No space left on device (os error 28) at path "/x/.tmpAbC"'
        )
    loaded = load_model(ModelSpec("timm", "test_resnet", seed=1))
    monkeypatch.setattr(safetensors.torch, "save_file", _fill_disk_after(4096, error))
    parent = tmp_path / "exports"
    out = parent / "resnet"
    with pytest.raises(ExportError) as info:
        export_model(loaded, out)
    assert str(out) in info.value.message and "No space left" in info.value.message
    assert "Free some space" in info.value.hint and "another disk" in info.value.hint
    assert not out.exists()
    assert list(parent.iterdir()) == []  # no staging folder left behind
