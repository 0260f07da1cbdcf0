"""What every route handler of the local Hub shares: the store, the users, the caches and signer, who the caller is
and what they may read or write, URLs of repos, and the capped JSON body.

:class:`HubContext` is the base of :class:`~hubui.localhub.server.LocalHubApp`; the route modules
(``routes_*``, :mod:`~hubui.localhub.discussions_api`) take it as their first argument and never import the server.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hubui.localhub import limits, repo_ops, signing
from hubui.localhub.httperrors import HubHTTPError
from hubui.localhub.storage import Commit, RepoMeta, Store
from hubui.localhub.treeindex import TreeIndexCache
from hubui.localhub.users import Directory, User
from hubui.localhub.yamlsafe import CardDataCache

TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class HubContext:
    """The state and checks shared by the local Hub's handlers.

    The methods keep the underscore names they had on ``LocalHubApp``: they are for the ``localhub`` route modules,
    not for users of the package.

    Args:
        store: Where repos live.
        directory: Users, orgs and tokens.
    """

    def __init__(self, store: Store, directory: Directory) -> None:
        self.store = store
        self.directory = directory
        self._signer = signing.LinkSigner(store.signing_key())
        self._cards = CardDataCache(store)
        self._trees = TreeIndexCache()
        self._yaml_limiter: anyio.CapacityLimiter | None = None

    # --- auth helpers ---------------------------------------------------------------------------------
    def _user(self, request: Request) -> User | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        user = self.directory.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        return user

    def _can_read(self, meta: RepoMeta, user: User | None) -> bool:
        return not meta.private or (user is not None and self.directory.is_member(user.name, meta.namespace))

    def _repo_for_read(self, request: Request, repo_type: str, repo_id: str) -> tuple[RepoMeta, User | None]:
        user = self._user(request)
        meta = self.store.get_repo(repo_type, repo_id) or repo_ops.find_ignoring_case(self.store, repo_type, repo_id)
        if meta is None and request.method in ("GET", "HEAD"):  # reads of a moved repo's old id, never writes
            meta = repo_ops.renamed_to(self.store, repo_type, repo_id)
        if meta is None or not self._can_read(meta, user):
            raise HubHTTPError(404, "Repository not found", "RepoNotFound")
        return meta, user

    def _repo_for_write(self, request: Request, repo_type: str, repo_id: str) -> tuple[RepoMeta, User]:
        meta, user = self._repo_for_read(request, repo_type, repo_id)
        if user is None:
            raise HubHTTPError(401, "You must be authenticated to write to a repo")
        self._check_can_write(user, meta.namespace)
        return meta, user

    def _check_can_write(self, user: User, namespace: str) -> None:
        if not user.can_write:
            raise HubHTTPError(403, "You have read access only: this token's role is 'read'")
        if not self.directory.is_member(user.name, namespace):
            raise HubHTTPError(403, f"You don't have the rights to write to the namespace {namespace!r}")

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def _repo_url(self, request: Request, meta: RepoMeta) -> str:
        return f"{self._base(request)}/{TYPE_PREFIX[meta.repo_type]}{meta.repo_id}"

    async def _json_body(self, request: Request, limit: int = limits.MAX_JSON_BODY) -> dict[str, Any]:
        """The request's JSON object body (``{}`` when empty), read up to ``limit`` bytes."""
        what = f"{request.method} {request.url.path}"
        raw = await limits.read_body(request, limit, what)
        if len(raw) > 256 * 1024:  # a big body is parsed in a worker thread, not on the event loop
            return await run_in_threadpool(limits.parse_json_object, raw, what)
        return limits.parse_json_object(raw, what)

    def _yaml_threads(self) -> anyio.CapacityLimiter:
        if self._yaml_limiter is None:
            self._yaml_limiter = anyio.CapacityLimiter(2)
        return self._yaml_limiter

    def _resolve_rev(self, meta: RepoMeta, rev: str) -> Commit:
        return self.store.resolve(meta, rev)

    def _optional_user(self, request: Request) -> User | None:
        try:
            return self._user(request)
        except HubHTTPError:
            return None
