"""A full disk is answered 507 Insufficient Storage, naming the problem, and the client does not retry it.

The Hub's root is a real 24 MB tmpfs when the tests run as root (a real ENOSPC); otherwise the Hub runs under a
24 MB file-size limit (RLIMIT_FSIZE, a real EFBIG from the kernel). Either way the write really fails.
"""

from __future__ import annotations

import os
import resource
import subprocess
import uuid

import httpx
import pytest
from _hubextra import Tokens, start_hub_with
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

MB = 1 << 20
LIMIT = 24 * MB


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("small-disk")
    mounted = False
    preexec = None
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={LIMIT}", "tmpfs", str(root)]).returncode == 0
    if not mounted:

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    tokens = Tokens()
    proc = start_hub_with(root, tokens.users(), extra_args=["--faults"], preexec_fn=preexec)
    yield proc, tokens
    proc.stop()
    if mounted:
        subprocess.run(["umount", str(root)], check=False)


def test_a_full_disk_is_507_and_not_retried(small_hub):
    proc, tokens = small_hub
    api = HfApi(endpoint=proc.url, token=tokens.alice)
    repo_id = f"alice/full-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo_id)
    httpx.delete(f"{proc.url}/_hubui/faults", timeout=30)
    with pytest.raises(RuntimeError, match=r"w\.bin") as exc:  # huggingface_hub wraps the LFS upload's error
        api.upload_file(path_or_fileobj=os.urandom(LIMIT + 4 * MB), path_in_repo="w.bin", repo_id=repo_id)
    cause = exc.value.__cause__
    assert isinstance(cause, HfHubHTTPError) and cause.response.status_code == 507
    message = cause.response.json()["error"]
    assert "storage is full" in message
    puts = [r for r in httpx.get(f"{proc.url}/_hubui/faults", timeout=30).json()["requests"] if r["method"] == "PUT"]
    assert len(puts) == 1, "a 507 must not be retried"
    assert api.list_repo_files(repo_id) == [".gitattributes"]
    # The Hub stays up and answers everything else.
    assert api.whoami(cache=False)["name"] == "alice"
    api.upload_file(path_or_fileobj=b"small", path_in_repo="ok.txt", repo_id=repo_id)
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "ok.txt"]


def test_hubui_does_not_retry_507():
    from hubui.publishing import RETRYABLE_STATUS

    assert 507 not in RETRYABLE_STATUS
