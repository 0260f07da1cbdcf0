"""conftest.py for huggingface_hub's own tests when they run against hubui's local Hub.

The sdist on PyPI ships the tests without their conftest.py, so the conformance runner copies this file
in as ``tests/conftest.py``. It gives the tests the fixtures and markers they expect (``api``,
``repo_factory``, ``RepoFactory``, ``xet``/``no_xet``/``production``/``deprecated``/``git_lfs``), written for
the local Hub:

- ``production`` tests and the ``api_prod`` fixture need huggingface.co, which this machine cannot reach:
  they are skipped with the reason ``production Hub``.
- ``xet`` tests are skipped: the local Hub speaks LFS, not Xet (uploads run with HF_HUB_DISABLE_XET=1).
  ``no_xet`` tests run.
- Each test gets a fresh Hugging Face cache and token path, and a 180 s alarm, so one hang cannot eat the
  whole run.
"""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Generator
from contextlib import ExitStack
from typing import Protocol

import pytest
from huggingface_hub import HfApi, RepoUrl, constants
from huggingface_hub.utils import SoftTemporaryDirectory

from .testing_constants import ENDPOINT_STAGING, TOKEN
from .testing_utils import repo_name

TEST_TIMEOUT_S = int(os.environ.get("HUBUI_CONFORMANCE_TEST_TIMEOUT", "180"))


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _alarm() -> Generator[None, None, None]:
    def fire(signum: int, frame: object) -> None:
        raise _TestTimeout(f"test ran longer than {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def patch_constants(monkeypatch: pytest.MonkeyPatch) -> Generator[None, None, None]:
    with SoftTemporaryDirectory() as cache_dir:
        for name, sub in (
            ("HF_HOME", ""),
            ("HF_HUB_CACHE", "hub"),
            ("HUGGINGFACE_HUB_CACHE", "hub"),
            ("HF_XET_CACHE", "xet"),
            ("HF_ASSETS_CACHE", "assets"),
            ("HF_TOKEN_PATH", "token"),
            ("HF_STORED_TOKENS_PATH", "stored_tokens"),
        ):
            if hasattr(constants, name):
                monkeypatch.setattr(constants, name, os.path.join(cache_dir, sub) if sub else cache_dir)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_EXPERIMENTAL_WARNING", True, raising=False)
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "200")
        try:
            from huggingface_hub.cli._output import out

            out.set_mode()
            out.set_no_truncate(False)
        except (ImportError, AttributeError):
            pass
        yield


@pytest.fixture(autouse=True)
def _markers(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    node = request.node
    if node.get_closest_marker("production") is not None:
        pytest.skip("production Hub: needs huggingface.co")
    if node.get_closest_marker("xet") is not None:
        pytest.skip("Xet: the local Hub speaks LFS, not Xet")
    if node.get_closest_marker("git_lfs") is not None:
        pytest.skip("git-lfs: pushes through git, not the HTTP API")
    names = [n for m in node.iter_markers("deprecated") for n in m.args]
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(pytest.warns(FutureWarning, match=rf".*'{name}'.*"))
        yield


@pytest.fixture(scope="session")
def api() -> HfApi:
    return HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN)


@pytest.fixture(scope="session")
def api_prod() -> HfApi:
    pytest.skip("production Hub: needs huggingface.co")


class RepoFactory(Protocol):
    def __call__(self, repo_type: str = "model", **kwargs: object) -> RepoUrl: ...


@pytest.fixture
def repo_factory(api: HfApi) -> Generator[RepoFactory, None, None]:
    created: list[tuple[str, str, object]] = []

    def make(repo_type: str = "model", **kwargs: object) -> RepoUrl:
        if repo_type == "space":
            kwargs.setdefault("space_sdk", "gradio")
        token = kwargs.get("token")
        repo_id = kwargs.pop("repo_id", None) or repo_name(prefix=repo_type)
        url = api.create_repo(repo_id=repo_id, repo_type=repo_type, **kwargs)
        created.append((url.repo_id, repo_type, token))
        return url

    yield make
    for repo_id, repo_type, token in created:
        try:
            api.delete_repo(repo_id=repo_id, repo_type=repo_type, token=token, missing_ok=True)
        except Exception as exc:  # cleanup only: the test's outcome is already decided
            warnings.warn(f"could not delete {repo_id}: {exc}", stacklevel=1)


@pytest.fixture
def new_repo_id(api: HfApi) -> Generator[str, None, None]:
    """A repo id in the test user's namespace that does not exist yet; deleted after the test."""
    repo_id = f"{api.whoami()['name']}/{repo_name()}"
    yield repo_id
    try:
        api.delete_repo(repo_id=repo_id, missing_ok=True)
    except Exception as exc:  # cleanup only
        warnings.warn(f"could not delete {repo_id}: {exc}", stacklevel=1)
