"""The names a push targets, checked the way the Hub and git check them, before anything is sent: the repo id
(``namespace/name``), the branch and the tag."""

from __future__ import annotations

import re

from hubui.errors import InvalidRepoIdError, InvalidRevisionError

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """Check ``namespace/name`` the way the Hub does, before anything is sent.

    Args:
        repo_id: The target repo, ``namespace/name``.

    Returns:
        ``(namespace, name)``.

    Raises:
        InvalidRepoIdError: Naming the bad value and, where it is one part, that part.
    """
    if not isinstance(repo_id, str):
        raise InvalidRepoIdError(f"Repo id must be text in the form 'namespace/name', not {type(repo_id).__name__}")
    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(f"Repo id must be in the form 'namespace/name': {repo_id!r}")
    namespace, name = repo_id.split("/")
    for part in (namespace, name):
        # fullmatch, not match: '$' would let a trailing newline through ('alice/x\n').
        if not _NAME_RE.fullmatch(part) or ".." in part or "--" in part or part.endswith(".git"):
            raise InvalidRepoIdError(
                f"Invalid repo id {repo_id!r}: {part!r} must be 1-96 letters, digits, '-', '_' or '.', "
                "not start or end with '-' or '.', and contain no '..' or '--'"
            )
    return namespace, name


def _branch_problem(branch: str) -> str | None:
    """Why git or the Hub would refuse ``branch`` as a branch name, or ``None``."""
    checks = (
        (not branch.strip(), "it is empty"),
        (".." in branch, "it contains '..'"),
        (any(c.isspace() for c in branch), "it contains whitespace"),
        (any(ord(c) < 32 or ord(c) == 127 for c in branch), "it contains control characters"),
        (any(c in "~^:?*[\\" for c in branch), "it contains one of ~ ^ : ? * [ \\"),
        (branch.startswith(("/", "-")), "it starts with '/' or '-'"),
        (branch.startswith("refs/"), "it starts with 'refs/' (give the short name)"),
        (branch.endswith(("/", ".", ".lock")), "it ends with '/', '.' or '.lock'"),
        ("//" in branch or "/." in branch or "@{" in branch, "it contains '//', '/.' or '@{'"),
        (branch in ("HEAD", "@"), "it is a reserved name"),
        (len(branch) > 200, f"it is {len(branch)} characters long (at most 200)"),
    )
    return next((why for bad, why in checks if bad), None)


def validate_branch(branch: str | None) -> str | None:
    """Check a target branch name (``None`` means main).

    Args:
        branch: The branch to push to, or ``None``/``"main"`` for main.

    Returns:
        The branch, or ``None`` for main.

    Raises:
        InvalidRevisionError: For names git or the Hub would refuse, naming the value and why.
    """
    if branch is None or branch == "main":
        return None
    if not isinstance(branch, str):
        raise InvalidRevisionError(f"Branch name must be text, not {type(branch).__name__}")
    problem = _branch_problem(branch)
    if problem is not None:
        raise InvalidRevisionError(f"Invalid branch name {branch!r}: {problem}")
    return branch


def validate_tag(tag: str | None) -> str | None:
    """Check the name of a tag to put on the pushed commit (``None``: no tag).

    Args:
        tag: The tag, e.g. ``v1`` or ``v1.0.2``.

    Returns:
        The tag, or ``None``.

    Raises:
        InvalidRevisionError: For names git or the Hub would refuse, naming the value and why.
    """
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise InvalidRevisionError(f"Tag name must be text, not {type(tag).__name__}")
    problem = _branch_problem(tag)
    if problem is not None:
        raise InvalidRevisionError(
            f"Invalid tag name {tag!r}: {problem}",
            "Use a tag like 'v1' or 'v1.0.2': no spaces, '..', '~', '^', ':' or a leading '/'.",
        )
    return tag


__all__ = ["validate_branch", "validate_repo_id", "validate_tag"]
