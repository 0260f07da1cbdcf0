"""Deploy hubui itself as a Hugging Face Space (``hubui space deploy``).

A Space installs ``requirements.txt`` and runs ``app.py``. hubui is not on PyPI, so the deploy uploads the
``space/`` folder of a hubui checkout *and* the ``hubui`` package source next to ``app.py``, where Python
imports it from the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from hubui import auth
from hubui.errors import HubUnreachableError, InvalidInputError, PushError
from hubui.publishing import validate_repo_id

SPACE_FILES = ("README.md", "app.py", "requirements.txt")


def default_space_dir() -> Path:
    """The ``space/`` folder of the checkout this hubui was installed from (editable installs)."""
    return Path(__file__).resolve().parents[1] / "space"


def _package_files() -> list[tuple[str, Path]]:
    package = Path(__file__).resolve().parent
    files = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((f"hubui/{path.relative_to(package).as_posix()}", path))
    return files


def space_files(space_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Every file a deploy uploads, as ``(path in the Space, local file)``.

    Raises:
        InvalidInputError: ``space_dir`` lacks one of README.md, app.py, requirements.txt.
    """
    folder = Path(space_dir) if space_dir is not None else default_space_dir()
    missing = [name for name in SPACE_FILES if not (folder / name).is_file()]
    if missing:
        raise InvalidInputError(
            f"{str(folder)!r} is not a hubui space folder: missing {', '.join(missing)}",
            "Run from a hubui checkout, or pass --space-dir pointing at its space/ folder.",
        )
    own = [(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return own + _package_files()


@dataclass(frozen=True)
class SpaceDeployResult:
    """Where the Space landed."""

    repo_id: str
    url: str
    commit_url: str
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "url": self.url, "commit_url": self.commit_url, "files": list(self.files)}


def deploy_space(
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    space_dir: str | Path | None = None,
    commit_message: str = "Deploy hubui",
) -> SpaceDeployResult:
    """Create (or update) a Gradio Space running hubui, in one commit.

    Args:
        repo_id: ``namespace/name`` of the Space.
        private: Create the Space private (an existing Space keeps its visibility).
        token: An explicit token; otherwise ``HF_TOKEN`` or the login cache.
        space_dir: The folder with README.md (Space YAML), app.py and requirements.txt.
        commit_message: The commit summary.

    Returns:
        The Space's URL and commit.

    Raises:
        InvalidRepoIdError, InvalidInputError: Bad repo id or space folder, before anything is sent.
        NotLoggedInError, InvalidTokenError, ReadOnlyTokenError, NamespaceForbiddenError: Auth problems.
        HubUnreachableError, PushError: The Hub failed; nothing was committed.
    """
    namespace, _ = validate_repo_id(repo_id)
    files = space_files(space_dir)
    endpoint = auth.endpoint()
    secret = auth.resolve_token(token)
    auth.require_write(auth.whoami(secret, endpoint=endpoint), namespace)
    api = HfApi(endpoint=endpoint, token=secret)
    try:
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local)) for path, local in files],
            commit_message=commit_message,
            repo_type="space",
        )
    except httpx2.TransportError as exc:
        raise HubUnreachableError(f"Lost the connection to the Hub at {endpoint} while deploying {repo_id}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PushError(f"The Hub refused the Space {repo_id!r} (HTTP {status}): {exc.server_message or ''}") from exc
    return SpaceDeployResult(repo_id, str(url), info.commit_url, tuple(path for path, _ in files))


__all__ = ["SpaceDeployResult", "default_space_dir", "deploy_space", "space_files"]
