"""Who is pushing: token resolution, ``whoami`` and the write checks made before any upload.

A token is looked for in this order: an explicit argument, the ``HF_TOKEN`` environment variable
(``HUGGING_FACE_HUB_TOKEN`` for older setups), then whatever ``hf auth login`` stored, read through
huggingface_hub's own helpers so that hubui and the ``hf`` CLI always agree.

Every failure has its own error class (see :mod:`hubui.errors`). A token is never printed, logged,
stored on :class:`Identity` or put in an error message: text that comes from elsewhere (an HTTP
error, a transport error) is scrubbed of the token before it is used in a message.

Example:
    >>> from hubui.auth import whoami, require_write
    >>> me = whoami()                       # doctest: +SKIP
    >>> require_write(me, "my-org")         # doctest: +SKIP
    'my-org'
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, OIDCError
from huggingface_hub.utils import build_hf_headers, get_session, get_token, hf_raise_for_status

from hubui.errors import (
    HubUnreachableError,
    InvalidTokenError,
    NamespaceForbiddenError,
    NotLoggedInError,
    ReadOnlyTokenError,
)

logger = logging.getLogger(__name__)

_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Scopes of a fine-grained token that allow creating repos and committing to them.
_WRITE_PERMISSIONS = frozenset({"repo.write"})
_NAMESPACE_ENTITIES = frozenset({"user", "org"})
_REPO_ENTITIES = frozenset({"model", "dataset", "space"})
# huggingface_hub's shared client has no timeout: a server that accepts the connection and never answers
# (a wrong HF_ENDPOINT, a stuck proxy) would leave the login waiting forever.
WHOAMI_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to, and what it may do. Holds no token, so it is safe to print and log.

    Args:
        name: The user name, which is also the user's own namespace.
        orgs: Organizations the user belongs to.
        can_write: Whether the token may create repos and commit (``write`` role, or a fine-grained
            token with at least one ``repo.write`` scope).
        role: The token's role as the Hub reports it: ``"read"``, ``"write"`` or ``"fineGrained"``.
        token_name: The token's display name on the Hub, when it has one.
        endpoint: The Hub this identity was checked against.
        write_namespaces: For fine-grained tokens, the namespaces the token may write to; ``None``
            when the role alone decides (``read``/``write`` tokens).
    """

    name: str
    orgs: tuple[str, ...]
    can_write: bool
    role: str
    token_name: str | None
    endpoint: str
    write_namespaces: tuple[str, ...] | None = None

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The user's own namespace followed by their organizations."""
        return (self.name, *self.orgs)


def endpoint() -> str:
    """Return the Hub endpoint in use: ``HF_ENDPOINT`` when set, else huggingface_hub's default.

    ``HF_ENDPOINT`` is read at call time (huggingface_hub reads it once, at import), so a value
    set later in the process still takes effect here.

    Returns:
        The endpoint URL without a trailing slash, e.g. ``"https://huggingface.co"``.
    """
    return _current_endpoint()


def _current_endpoint() -> str:
    # A separate name because whoami() has a parameter called ``endpoint``.
    value = os.environ.get("HF_ENDPOINT", "").strip() or constants.ENDPOINT
    return value.rstrip("/")


def _check_token(raw: object, where: str) -> str:
    """Clean a token like huggingface_hub does, but reject empty and malformed ones instead of ignoring them."""
    if not isinstance(raw, str):
        raise InvalidTokenError(f"The token from {where} is not text (got {type(raw).__name__}).")
    token = raw.replace("\r", "").replace("\n", "").strip()
    if not token:
        # What to do depends on where the empty value came from: an argument, a variable, a file.
        hint = (
            "Set a real token, or unset the variable to fall back to `hf auth login`."
            if "environment variable" in where
            else "Pass a real token (from your Hub settings page), or leave it out to use HF_TOKEN or `hf auth login`."
        )
        raise InvalidTokenError(f"The token from {where} is empty: the token is empty or only whitespace.", hint)
    # A Hub token is printable ASCII without spaces; anything else would fail later inside the HTTP
    # layer with an error that may quote part of the token.
    if any(not ("!" <= c <= "~") for c in token):
        raise InvalidTokenError(f"The token from {where} contains spaces or characters a token never has.")
    return token


def _resolve(token: str | None) -> tuple[str, str]:
    """Return ``(token, where it came from)``; ``where`` is safe to show."""
    if token is not None:
        return _check_token(token, "the token argument"), "the token argument"
    for var in _ENV_VARS:
        raw = os.environ.get(var)
        if raw is not None:
            # Set but empty is a mistake worth reporting (a CI secret that did not expand), not "no token".
            return _check_token(raw, f"the {var} environment variable"), f"the {var} environment variable"
    try:
        found = get_token()
    except OIDCError as exc:
        raise NotLoggedInError(
            f"HF_OIDC_RESOURCE is set but no token could be obtained through OIDC: {exc}",
            "Unset HF_OIDC_RESOURCE, or run where the CI provider can mint an id token.",
        ) from exc
    token_path = Path(constants.HF_TOKEN_PATH)
    if found is not None:
        return _check_token(found, f"the login cache ({token_path})"), f"the login cache ({token_path})"
    # get_token() treats an empty token file as "not logged in"; say what is really wrong.
    try:
        if token_path.is_file() and not token_path.read_text(encoding="utf-8").strip():
            raise InvalidTokenError(
                f"The login cache ({token_path}) holds no token: the token is empty.",
                "Run `hf auth login` again.",
            )
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTokenError(
            f"The login cache ({token_path}) cannot be read: {type(exc).__name__}.",
            "Run `hf auth login` again.",
        ) from exc
    raise NotLoggedInError("No Hugging Face token found (argument, HF_TOKEN, or `hf auth login`).")


def resolve_token(token: str | None = None) -> str:
    """Find the token to use.

    Args:
        token: An explicit token. It wins over everything else.

    Returns:
        The token, stripped of surrounding whitespace.

    Raises:
        InvalidTokenError: If the token found (argument, ``HF_TOKEN`` or the login cache) is empty,
            whitespace-only or malformed. An empty token is an error, never "no token".
        NotLoggedInError: If no token is found anywhere.
    """
    return _resolve(token)[0]


def _scrub(text: str, token: str) -> str:
    """Remove the token from text that came from a third party, before it goes into a message."""
    return text.replace(token, "<token>") if token else text


def _parse_identity(payload: Any, url: str) -> Identity:
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise HubUnreachableError(
            f"{url} answered whoami without a user name: it does not look like a Hugging Face Hub."
        )
    orgs = tuple(str(org["name"]) for org in payload.get("orgs") or [] if isinstance(org, dict) and org.get("name"))
    access = ((payload.get("auth") or {}).get("accessToken")) or {}
    role = str(access.get("role") or "read")
    token_name = access.get("displayName") or None
    write_namespaces: tuple[str, ...] | None = None
    if role == "fineGrained":
        scoped = (access.get("fineGrained") or {}).get("scoped") or []
        allowed: list[str] = []
        for scope in scoped:
            if not isinstance(scope, dict) or not _WRITE_PERMISSIONS & set(scope.get("permissions") or []):
                continue
            entity = scope.get("entity") or {}
            name = str(entity.get("name") or "")
            # A scope on a single repo is counted for its namespace: coarse, but the Hub has the final say.
            if entity.get("type") in _NAMESPACE_ENTITIES and name:
                allowed.append(name)
            elif entity.get("type") in _REPO_ENTITIES and "/" in name:
                allowed.append(name.split("/", 1)[0])
        write_namespaces = tuple(dict.fromkeys(allowed))
        can_write = bool(write_namespaces)
    else:
        can_write = role == "write"
    return Identity(
        name=payload["name"],
        orgs=orgs,
        can_write=can_write,
        role=role,
        token_name=str(token_name) if token_name else None,
        endpoint=url,
        write_namespaces=write_namespaces,
    )


def whoami(token: str | None = None, endpoint: str | None = None) -> Identity:
    """Ask the Hub who the token belongs to.

    Args:
        token: An explicit token; otherwise :func:`resolve_token` finds one.
        endpoint: The Hub URL; defaults to :func:`endpoint` (``HF_ENDPOINT``).

    Returns:
        The :class:`Identity` behind the token. It does not hold the token.

    Raises:
        NotLoggedInError: If no token is found.
        InvalidTokenError: If the token is empty or malformed, or the Hub rejects it (HTTP 401/403).
        HubUnreachableError: If the Hub cannot be reached (connection refused, timeout, offline mode)
            or does not answer like a Hub. The message names the endpoint URL.
    """
    url = (endpoint or _current_endpoint()).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise HubUnreachableError(f"The Hub endpoint {url!r} is not an http(s) URL.")
    secret, where = _resolve(token)
    logger.debug("Calling whoami on %s with the token from %s", url, where)
    try:
        payload = _whoami_request(url, secret)
    except OfflineModeIsEnabled as exc:
        raise HubUnreachableError(
            f"Cannot reach the Hub at {url}: offline mode is enabled.", "Unset HF_HUB_OFFLINE and try again."
        ) from exc
    except httpx2.TimeoutException as exc:
        raise HubUnreachableError(
            f"The Hub at {url} did not answer whoami within {WHOAMI_TIMEOUT_S:g} s.",
            "Check HF_ENDPOINT and your network or proxy, then try again.",
        ) from exc
    except httpx2.TransportError as exc:
        reason = _scrub(str(exc) or type(exc).__name__, secret)
        raise HubUnreachableError(f"Cannot reach the Hub at {url}: {reason}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise InvalidTokenError(
                f"The Hub at {url} rejected the token from {where} (HTTP 401): it is invalid, mistyped or revoked."
            ) from exc
        if status == 403:
            raise InvalidTokenError(
                f"The Hub at {url} refused the token from {where} (HTTP 403).",
                "Use a token that may read your account details (a 'read' or 'write' token).",
            ) from exc
        if status == 404:
            raise HubUnreachableError(
                f"{url} has no /api/whoami-v2 (HTTP 404): it does not look like a Hugging Face Hub."
            ) from exc
        if status == 429:
            raise HubUnreachableError(
                f"The Hub at {url} is rate-limiting whoami (HTTP 429).", "Wait a minute and try again."
            ) from exc
        raise HubUnreachableError(f"The Hub at {url} answered whoami with HTTP {status}.") from exc
    except ValueError as exc:
        # The body was not JSON: something answers on that port, but it is not a Hub.
        raise HubUnreachableError(
            f"{url} did not answer whoami with JSON: it does not look like a Hugging Face Hub."
        ) from exc
    identity = _parse_identity(payload, url)
    logger.debug("Token from %s belongs to %s (role %s)", where, identity.name, identity.role)
    return identity


def _whoami_request(url: str, secret: str) -> Any:
    # HfApi.whoami's own request, with a timeout (it takes none). The shared session keeps the library's
    # offline-mode check. Never cached: a revoked token or a changed role must show up now, and a cache
    # keyed by token would keep the secret alive in a long-lived dict.
    response = get_session().get(
        f"{url}/api/whoami-v2", headers=build_hf_headers(token=secret), timeout=WHOAMI_TIMEOUT_S
    )
    hf_raise_for_status(response)
    return response.json()


def require_write(identity: Identity, namespace: str | None = None) -> str:
    """Check that ``identity`` may create repos and commit in ``namespace``, before any upload.

    Args:
        identity: The result of :func:`whoami`.
        namespace: The target namespace (user or org); defaults to the user's own.

    Returns:
        The namespace that was checked.

    Raises:
        ReadOnlyTokenError: If the token cannot write (a ``read`` token, or a fine-grained token
            without write access to ``namespace``).
        NamespaceForbiddenError: If ``namespace`` is neither the user nor one of their orgs. The
            hint lists the namespaces that are allowed.
    """
    target = namespace or identity.name
    if not identity.can_write:
        raise ReadOnlyTokenError(
            f"The token of {identity.name!r} ({identity.token_name or 'unnamed'}) has the {identity.role!r} role "
            "and cannot create repos or push."
        )
    if target not in identity.namespaces:
        raise NamespaceForbiddenError(
            f"{identity.name!r} cannot push to namespace {target!r}: it is neither the user nor one of their orgs.",
            f"Use one of: {', '.join(identity.namespaces)}.",
        )
    if identity.write_namespaces is not None and target not in identity.write_namespaces:
        allowed = ", ".join(identity.write_namespaces) or "none"
        raise ReadOnlyTokenError(
            f"The fine-grained token {identity.token_name or 'unnamed'!r} of {identity.name!r} "
            f"has no write access to namespace {target!r} (it can write to: {allowed})."
        )
    return target


__all__ = ["Identity", "endpoint", "require_write", "resolve_token", "whoami"]
