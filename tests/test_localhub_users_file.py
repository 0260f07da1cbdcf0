"""Tokens of the local Hub stay out of the process list: users come from a file or the environment, and a token
given with --user gets a warning (every local user can read /proc/PID/cmdline)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _hubproc import HubProcess
from huggingface_hub import HfApi

from hubui.errors import LocalHubConfigError
from hubui.localhub import build_directory


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _launch(tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None) -> tuple[HubProcess, list[str]]:
    """Start ``hubui localhub`` with ``args``; return it once it printed its URL, and its stderr lines so far."""
    cmd = [sys.executable, "-m", "hubui", "localhub", "--root", str(tmp_path / "root"), "--port", "0", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if not first or not first[0].startswith("http://"):
        proc.kill()
        proc.wait()
        pytest.fail(f"local Hub did not start: {first!r} {proc.stderr.read()}")
    hub = HubProcess(first[0].strip(), tmp_path / "root", proc)
    err: list[str] = []
    # "serving ROOT" is the last start-up line on stderr: the warnings come before it.
    for line in proc.stderr:
        err.append(line)
        if line.startswith("serving "):
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return hub, err


def test_the_session_hub_has_no_token_on_its_command_line(localhub):
    cmdline = _cmdline(localhub.pid)
    assert b"localhub" in cmdline  # it is the right process
    # Names only in the failure message: it must not print the tokens it looks for.
    leaked = [
        name
        for name in ("alice", "bob", "reader", "carol", "dave")
        if getattr(localhub.users, name).encode() in cmdline
    ]
    assert not leaked, f"tokens of {leaked} are in /proc/{localhub.pid}/cmdline"
    assert HfApi(endpoint=localhub.url, token=localhub.users.alice).whoami()["name"] == "alice"


def test_users_from_the_environment_variable(tmp_path):
    token = secrets.token_hex(16)
    text = json.dumps({"users": [{"name": "uma", "token": token}], "orgs": [{"name": "uma-lab", "members": ["uma"]}]})
    hub, err = _launch(tmp_path, env_extra={"HUBUI_LOCALHUB_USERS": text})
    try:
        assert token.encode() not in _cmdline(hub.proc.pid)
        me = HfApi(endpoint=hub.url, token=token).whoami()
        assert me["name"] == "uma" and [o["name"] for o in me["orgs"]] == ["uma-lab"]
        assert not any("warning" in line for line in err), err
    finally:
        hub.stop()


def test_users_from_a_private_yaml_file_start_without_a_warning(tmp_path):
    token = secrets.token_hex(16)
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  - name: vic\n    token: '{token}'\n    role: write\n")
    users.chmod(0o600)
    hub, err = _launch(tmp_path, "--config", str(users))
    try:
        assert token.encode() not in _cmdline(hub.proc.pid)
        assert HfApi(endpoint=hub.url, token=token).whoami()["name"] == "vic"
        assert not any("warning" in line for line in err), err
    finally:
        hub.stop()


def test_a_users_file_others_can_read_gets_a_warning(tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": [{"name": "vic", "token": secrets.token_hex(16)}]}))
    users.chmod(0o644)
    hub, err = _launch(tmp_path, "--config", str(users))
    hub.stop()
    warning = [line for line in err if "other local users can read it" in line]
    assert warning and "chmod 600" in warning[0] and str(users) in warning[0], err


def test_a_token_on_the_command_line_gets_a_warning_that_names_no_token(tmp_path):
    token = secrets.token_hex(16)
    hub, err = _launch(tmp_path, "--user", f"wes:{token}:write")
    try:
        assert HfApi(endpoint=hub.url, token=token).whoami()["name"] == "wes"  # still works, for scripts
    finally:
        hub.stop()
    warning = [line for line in err if "--user" in line and "visible to every local user" in line]
    assert len(warning) == 1, err
    assert "HUBUI_LOCALHUB_USERS" in warning[0] and "--config" in warning[0]
    assert token not in "".join(err)


def test_help_says_argv_tokens_are_visible():
    out = subprocess.run(
        [sys.executable, "-m", "hubui", "localhub", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    flat = " ".join(out.split())
    assert "visible to every local user" in flat and "HUBUI_LOCALHUB_USERS" in flat and "--config FILE" in flat


def test_an_unquoted_yaml_token_that_yaml_reads_as_a_number_is_refused(tmp_path):
    # YAML 1.1 reads 01234567 as the octal number 342391: the Hub would silently expect another token.
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  - name: xan\n    token: 012345670123\n")
    with pytest.raises(LocalHubConfigError) as err:
        build_directory(config=users)
    assert "xan" in err.value.message and "012345670123" not in str(err.value)
    assert "Quote" in err.value.hint


def test_a_malformed_environment_variable_names_the_variable_not_its_text():
    token = secrets.token_hex(16)
    with pytest.raises(LocalHubConfigError) as err:
        build_directory(users_text='{"users": [{"name": "yui", "token": "' + token + '"')  # cut short
    assert "HUBUI_LOCALHUB_USERS" in err.value.message and token not in str(err.value)
