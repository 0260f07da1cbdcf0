"""Shared fixtures: a real local Hub over HTTP, test users and a clean Hugging Face cache.

The environment is set at import time, before any test module imports huggingface_hub (which
reads HF_ENDPOINT, HF_HOME and HF_HUB_DISABLE_XET once, when it is imported). Tests never see the
developer's real token or cache.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if "huggingface_hub" in sys.modules:  # pragma: no cover - a plugin imported it before us
    raise RuntimeError("huggingface_hub was imported before tests/conftest.py could set HF_ENDPOINT")

sys.path.insert(0, str(Path(__file__).parent))
from _hubproc import HubProcess, start_hub

_TMP = Path(tempfile.mkdtemp(prefix="hubui-tests-"))
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
    os.environ.pop(var, None)
os.environ["HF_HOME"] = str(_TMP / "hf_home")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TORCH_HOME"] = str(_TMP / "torch_home")


@dataclass(frozen=True)
class HubUsers:
    """Tokens of the session's local Hub: write users (alice is in org 'team') and a read-only one.

    carol and dave are two more write users, so that load tests can run sessions for four users.

    alice is also a member of the orgs 'timm' and 'laion', so tests can seed weights where timm's and
    open_clip's pretrained configs look for them (``timm/<arch>.<tag>``).
    """

    alice: str = field(repr=False)
    bob: str = field(repr=False)
    reader: str = field(repr=False)
    carol: str = field(repr=False)
    dave: str = field(repr=False)
    org: str = "team"


# Random per run: nothing that looks like a token is ever committed. start_hub hands them to the Hub in its
# environment, not its command line (which every local user can read).
USERS = HubUsers(**{name: secrets.token_hex(16) for name in ("alice", "bob", "reader", "carol", "dave")})
_HUB: HubProcess = start_hub(
    _TMP / "hub",
    [
        f"alice:{USERS.alice}:write",
        f"bob:{USERS.bob}:write",
        f"reader:{USERS.reader}:read",
        f"carol:{USERS.carol}:write",
        f"dave:{USERS.dave}:write",
    ],
    # 'timm' and 'laion' let tests seed repos where the libraries' own pretrained configs look.
    [f"{USERS.org}:alice", "timm:alice", "laion:alice"],
)
os.environ["HF_ENDPOINT"] = _HUB.url


@atexit.register
def _cleanup() -> None:
    _HUB.stop()
    shutil.rmtree(_TMP, ignore_errors=True)


@dataclass(frozen=True)
class LocalHubHandle:
    url: str
    root: Path
    users: HubUsers
    pid: int


@pytest.fixture(scope="session")
def localhub() -> LocalHubHandle:
    """The session's local Hub, started on a free port in a temporary root; HF_ENDPOINT points at it."""
    if _HUB.proc.poll() is not None:
        pytest.fail(f"the session's local Hub exited with code {_HUB.proc.returncode}")
    return LocalHubHandle(_HUB.url, _HUB.root, USERS, _HUB.proc.pid)


def _api(localhub: LocalHubHandle, token: str):
    from huggingface_hub import HfApi  # imported here: HF_ENDPOINT must be set before huggingface_hub is

    return HfApi(endpoint=localhub.url, token=token)


@pytest.fixture
def alice(localhub):
    """An ``HfApi`` logged in as alice (write, member of 'team') on the session's Hub."""
    return _api(localhub, localhub.users.alice)


@pytest.fixture
def bob(localhub):
    """An ``HfApi`` logged in as bob (write)."""
    return _api(localhub, localhub.users.bob)


@pytest.fixture
def reader(localhub):
    """An ``HfApi`` logged in as the read-only user."""
    return _api(localhub, localhub.users.reader)


@pytest.fixture
def users(localhub: LocalHubHandle) -> HubUsers:
    return localhub.users


@pytest.fixture
def repo_name() -> str:
    """A repo name no other test uses."""
    return f"r-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fresh_cache(tmp_path: Path) -> Path:
    """An empty Hugging Face cache folder for downloads that must not hit an earlier copy."""
    path = tmp_path / "hf_cache"
    path.mkdir()
    return path


# Measured: a full run (CI=true, 2 cores) grew the disk by 5.3 GB at its peak: the session's Hub (2.3 GB),
# the Hugging Face cache (1.2 GB) and module-scoped ViT-B-32 folders. Without the slow tests less; 1 GB is a
# margin, not a measurement.
_DISK_NEEDED_FULL = 6 * 10**9
_DISK_NEEDED_QUICK = 10**9


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say up front when the disk is too small, instead of a hundred failures saying "No space left"."""
    slow = any(item.get_closest_marker("slow") for item in session.items)
    needed = _DISK_NEEDED_FULL if slow else _DISK_NEEDED_QUICK
    free = shutil.disk_usage(_TMP).free
    if free < needed:
        pytest.exit(
            f"only {free / 1e9:.1f} GB free on the disk of {_TMP.parent}; these tests need about {needed / 1e9:.0f} GB "
            "there while they run (they free it when they end). Free some space, or point TMPDIR at a larger disk.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI a skipped test is a test that does not exist: fail the run instead."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) were skipped; install what they need instead.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
