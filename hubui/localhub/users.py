"""Users, organizations and tokens of a local Hub.

They come from a small JSON/YAML users file (``--config FILE``), from the same text in the environment
variable ``HUBUI_LOCALHUB_USERS``, or from command-line flags (``--user alice:TOKEN:write``,
``--org team:alice,bob``), and live only in memory: the local Hub never writes a token to disk. Prefer the
file or the variable: a command line is readable by every local user (``ps``, ``/proc/PID/cmdline``), a
0600 file and a process's environment only by its owner.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hubui.errors import LocalHubConfigError

# \Z, not $: "$" also matches before a trailing newline, which let "alice\n" in as a name.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\Z")
ROLES = ("read", "write")
USERS_ENV = "HUBUI_LOCALHUB_USERS"


@dataclass(frozen=True)
class User:
    """A user of the local Hub and the one token that authenticates them.

    Args:
        name: The user name, which is also their namespace.
        token: The bearer token. Never printed.
        role: ``"read"`` or ``"write"``.
    """

    name: str
    token: str = field(repr=False)
    role: str = "write"

    @property
    def can_write(self) -> bool:
        return self.role == "write"


@dataclass(frozen=True)
class Org:
    """An organization: a namespace whose members may write to it."""

    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Directory:
    """Every user and org of one local Hub, with token lookup."""

    users: tuple[User, ...] = ()
    orgs: tuple[Org, ...] = ()

    def __post_init__(self) -> None:
        names = [u.name for u in self.users] + [o.name for o in self.orgs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise LocalHubConfigError(f"Name used twice for users/orgs: {', '.join(dupes)}")
        tokens = [u.token for u in self.users]
        if len(set(tokens)) != len(tokens):
            raise LocalHubConfigError("Two users share the same token.", "Give every user a token of their own.")
        known = {u.name for u in self.users}
        for org in self.orgs:
            unknown = [m for m in org.members if m not in known]
            if unknown:
                raise LocalHubConfigError(
                    f"Org {org.name!r} lists unknown member(s): {', '.join(unknown)}",
                    "Declare each member with --user first.",
                )

    def user_for_token(self, token: str) -> User | None:
        """Return the user owning ``token``, or ``None``."""
        for user in self.users:
            if user.token == token:
                return user
        return None

    def orgs_of(self, user: str) -> list[str]:
        """Names of the orgs ``user`` belongs to."""
        return [o.name for o in self.orgs if user in o.members]

    def is_member(self, user: str, namespace: str) -> bool:
        """True when ``user`` may act for ``namespace`` (it is them, or an org they are in)."""
        return user == namespace or namespace in self.orgs_of(user)

    def namespace_exists(self, namespace: str) -> bool:
        return any(u.name == namespace for u in self.users) or any(o.name == namespace for o in self.orgs)


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise LocalHubConfigError(f"Invalid {what} name: {name!r}")
    return name


def parse_user(spec: str) -> User:
    """Parse ``name:TOKEN[:read|write]`` (the role defaults to write).

    Raises:
        LocalHubConfigError: If the spec is malformed. The message never echoes the token.
    """
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        name = parts[0] if parts else ""
        raise LocalHubConfigError(f"Invalid --user value for user {name!r}: expected 'name:TOKEN[:read|write]'")
    name, token = parts[0], parts[1]
    role = parts[2] if len(parts) == 3 else "write"
    if role not in ROLES:
        raise LocalHubConfigError(f"Invalid role {role!r} for user {name!r}: use 'read' or 'write'")
    if len(token) < 8 or any(c.isspace() for c in token):
        raise LocalHubConfigError(f"The token of user {name!r} is too short or contains spaces")
    return User(_check_name(name, "user"), token, role)


def parse_org(spec: str) -> Org:
    """Parse ``org:member1,member2``."""
    name, _, members = spec.partition(":")
    member_names = tuple(m.strip() for m in members.split(",") if m.strip())
    return Org(_check_name(name, "org"), tuple(_check_name(m, "user") for m in member_names))


def load_config(path: str | Path) -> tuple[list[User], list[Org]]:
    """Read users and orgs from a JSON or YAML file.

    The file looks like ``{"users": [{"name": "alice", "token": "...", "role": "write"}],
    "orgs": [{"name": "team", "members": ["alice"]}]}``.

    Raises:
        LocalHubConfigError: If the file is missing or malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalHubConfigError(f"Cannot read local Hub config {str(path)!r}: {exc.strerror}") from exc
    return parse_config(text, repr(str(path)), as_json=path.suffix == ".json")


def parse_config(text: str, source: str, *, as_json: bool = False) -> tuple[list[User], list[Org]]:
    """Read users and orgs from the text of a users file (see :func:`load_config`).

    Args:
        text: JSON or YAML.
        source: Where it came from, for messages (a file name, or ``$HUBUI_LOCALHUB_USERS``). The text itself
            is never quoted back: it holds tokens.
        as_json: Parse as JSON only (a ``.json`` file).

    Returns:
        The users and the orgs.

    Raises:
        LocalHubConfigError: If the text is malformed.
    """
    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise LocalHubConfigError(f"Local Hub config {source} is not valid JSON/YAML") from exc
    if not isinstance(data, dict):
        raise LocalHubConfigError(f"Local Hub config {source} must be a mapping with 'users' and 'orgs'")
    users = []
    for entry in data.get("users") or []:
        if not isinstance(entry, dict) or "name" not in entry or "token" not in entry:
            raise LocalHubConfigError(f"Each user in {source} needs 'name' and 'token'")
        if not isinstance(entry["token"], str):
            # YAML reads an unquoted 01234567 as the number 342391: a token that silently differs.
            raise LocalHubConfigError(
                f"The token of user {entry['name']!r} in {source} is not a string", "Quote the token."
            )
        users.append(parse_user(f"{entry['name']}:{entry['token']}:{entry.get('role', 'write')}"))
    orgs = []
    for entry in data.get("orgs") or []:
        if not isinstance(entry, dict) or "name" not in entry:
            raise LocalHubConfigError(f"Each org in {source} needs a 'name'")
        members = tuple(_check_name(m, "user") for m in entry.get("members") or ())
        orgs.append(Org(_check_name(str(entry["name"]), "org"), members))
    return users, orgs


def readable_by_others(path: str | Path) -> bool:
    """True when users other than the owner may read ``path`` (its tokens are then not private)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def build_directory(
    user_specs: Iterable[str] = (),
    org_specs: Iterable[str] = (),
    config: str | Path | None = None,
    users_text: str | None = None,
) -> Directory:
    """Combine a users file, the text of one (``$HUBUI_LOCALHUB_USERS``) and flags into one :class:`Directory`.

    Args:
        user_specs: ``name:TOKEN[:read|write]`` values (``--user``).
        org_specs: ``org:member1,member2`` values (``--org``).
        config: A JSON/YAML users file (``--config``).
        users_text: The text of a users file, e.g. from the environment variable ``HUBUI_LOCALHUB_USERS``.

    Returns:
        Every user and org, from all the sources together.

    Raises:
        LocalHubConfigError: If a source is malformed, or a name or token is used twice.
    """
    users: list[User] = []
    orgs: list[Org] = []
    if config is not None:
        users, orgs = load_config(config)
    if users_text is not None and users_text.strip():
        more_users, more_orgs = parse_config(users_text, f"${USERS_ENV}", as_json=users_text.lstrip().startswith("{"))
        users += more_users
        orgs += more_orgs
    users += [parse_user(s) for s in user_specs]
    orgs += [parse_org(s) for s in org_specs]
    return Directory(tuple(users), tuple(orgs))
