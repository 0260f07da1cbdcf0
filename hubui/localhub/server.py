"""The local Hub's HTTP API: an ASGI app that the real ``huggingface_hub`` client can talk to.

Routing is done on the *raw* request path, one URL-decoded segment at a time, because revisions
arrive quoted (``refs%2Fpr%2F1``) and a router that decodes ``%2F`` first would split them.
The endpoints and fields follow ``HUB_API.md`` (checked against huggingface_hub 2.4).

This module is the entry point and the router, and serves the two HTML pages; the handlers live by area in
``routes_repos`` (accounts, whole repos), ``routes_upload`` (preupload, commit, LFS), ``routes_files`` (downloads,
trees, paths-info), ``routes_refs`` (history, refs, branches) and ``discussions_api`` (discussions, pull requests,
tags). They share :class:`~hubui.localhub.context.HubContext`, the base of :class:`LocalHubApp`, and never import
this module.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from hubui.localhub import (
    browse,
    discussions_api,
    limits,
    repo_ops,
    routes_files,
    routes_refs,
    routes_repos,
    routes_upload,
    signing,
)
from hubui.localhub.context import HubContext
from hubui.localhub.files import RangeError
from hubui.localhub.httperrors import HubHTTPError, error_response
from hubui.localhub.limits import BodyError
from hubui.localhub.storage import REPO_TYPES, StorageError

__all__ = ["HubHTTPError", "LocalHubApp"]

logger = logging.getLogger("hubui.localhub")

PREFIXES = {"datasets": "dataset", "spaces": "space"}

# A repo API handler: (app, request, repo_type, repo_id, the path after the route's first segment).
Handler = Callable[[HubContext, Request, str, str, list[str]], Awaitable[Response]]


async def _discussions(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    return await discussions_api.handle(app, request, request.method, repo_type, repo_id, rest)


async def _tag(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    return await discussions_api.handle_tag(app, request, request.method, repo_type, repo_id, rest)


REPO_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", ""): routes_repos.repo_info,
    ("GET", "revision"): routes_repos.repo_info,
    ("POST", "preupload"): routes_upload.preupload,
    ("POST", "commit"): routes_upload.create_commit,
    ("GET", "tree"): routes_files.tree,
    ("POST", "paths-info"): routes_files.paths_info,
    ("GET", "commits"): routes_refs.list_commits,
    ("GET", "refs"): routes_refs.list_refs,
    ("POST", "branch"): routes_refs.create_branch,
    ("DELETE", "branch"): routes_refs.delete_branch,
    ("POST", "discussions"): _discussions,
    ("GET", "discussions"): _discussions,
    ("POST", "tag"): _tag,
    ("DELETE", "tag"): _tag,
    ("PUT", "settings"): routes_repos.settings,
    ("GET", "auth-check"): routes_repos.auth_check,
    ("GET", "xet-write-token"): routes_repos.xet_token,
    ("GET", "xet-read-token"): routes_repos.xet_token,
}


class LocalHubApp(HubContext):
    """ASGI application serving one :class:`Store` for one :class:`Directory` of users.

    Args:
        store: Where repos live.
        directory: Users, orgs and tokens.
    """

    # --- ASGI entry point -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._dispatch(request)
        except HubHTTPError as exc:
            response = error_response(exc.status, exc.message, exc.code, **exc.extra)
        except StorageError as exc:
            response = error_response(exc.status, exc.message, exc.code)
        except BodyError as exc:
            response = error_response(exc.status, exc.message)
        except RangeError as exc:
            response = error_response(416, exc.message)
        except signing.LinkRefused as exc:
            response = error_response(403, str(exc))
        except ClientDisconnect:
            return
        except OSError as exc:
            if not limits.is_storage_full(exc):
                logger.exception("Internal error on %s %s", request.method, scope.get("path"))
                response = error_response(500, "Internal error in the local Hub; see its log.")
            else:
                # Not a 5xx that clients retry: the same request fails the same way until someone frees space.
                logger.error("Storage full under %s: %s (%s %s)", self.store.root, exc, request.method, scope["path"])
                response = error_response(507, limits.storage_full_message(exc), "InsufficientStorage")
        except Exception:
            logger.exception("Internal error on %s %s", request.method, scope.get("path"))
            response = error_response(500, "Internal error in the local Hub; see its log.")
        await response(scope, receive, send)

    # --- routing --------------------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        raw_path = raw.decode("latin-1").split("?", 1)[0]
        segs = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        method = request.method
        if not segs:
            return await self._index(request)
        if segs[0] == "api":
            return await self._api(request, method, segs[1:])
        if segs[0] == "_lfs":
            return await routes_upload.lfs_transfer(self, request, method, segs[1:])
        repo_type = "model"
        if segs[0] in PREFIXES and len(segs) >= 3:
            repo_type, segs = PREFIXES[segs[0]], segs[1:]
        if len(segs) >= 2 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            if method != "POST":
                raise HubHTTPError(405, "Method not allowed")
            return await routes_upload.lfs_batch(self, request, repo_type, f"{segs[0]}/{segs[1][:-4]}")
        if len(segs) >= 3 and segs[1] == "resolve" and method in ("GET", "HEAD"):
            raise HubHTTPError(404, f"Repository not found: {segs[0]}", "RepoNotFound")  # one-word (canonical) id
        if len(segs) >= 4 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return await routes_files.resolve(
                self, request, repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:])
            )
        if len(segs) >= 2 and method == "GET":
            return await self._browse(request, repo_type, f"{segs[0]}/{segs[1]}", segs[2:])
        raise HubHTTPError(404, f"Not found: {raw_path}")

    async def _api(self, request: Request, method: str, segs: list[str]) -> Response:
        if segs == ["whoami-v2"] and method == "GET":
            return routes_repos.whoami(self, request)
        if segs == ["repos", "create"] and method == "POST":
            return await routes_repos.create_repo(self, request)
        if segs == ["repos", "delete"] and method == "DELETE":
            return await routes_repos.delete_repo(self, request)
        if segs == ["validate-yaml"] and method == "POST":
            return await routes_repos.validate_yaml(self, request)
        if method == "GET" and (
            segs == ["settings", "repositories"] or segs[:1] + segs[2:] == ["organizations", "settings", "repositories"]
        ):
            return await routes_repos.storage_listing(self, request, segs[1] if segs[0] == "organizations" else None)
        if segs == ["repos", "move"] and method == "POST":
            return await repo_ops.handle_move(self, request)
        if len(segs) == 1 and segs[0].endswith("s") and segs[0][:-1] in REPO_TYPES and method == "GET":
            user = self._optional_user(request)
            visible = lambda m: self._can_read(m, user)  # noqa: E731
            return JSONResponse(repo_ops.listing(self.store, segs[0][:-1], visible, request.query_params))
        if len(segs) == 2 and segs[0].endswith("s") and segs[0][:-1] in REPO_TYPES:
            raise HubHTTPError(404, f"Repository not found: {segs[1]}", "RepoNotFound")  # one-word (canonical) id
        if len(segs) >= 3 and segs[0].endswith("s") and segs[0][:-1] in REPO_TYPES:
            repo_type, repo_id, rest = segs[0][:-1], f"{segs[1]}/{segs[2]}", segs[3:]
            return await self._repo_api(request, method, repo_type, repo_id, rest)
        if segs == ["health"]:
            return JSONResponse({"status": "ok"})
        raise HubHTTPError(404, f"Unknown API route: /api/{'/'.join(segs)}")

    async def _repo_api(self, request: Request, method: str, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        head = rest[0] if rest else ""
        handler = REPO_ROUTES.get((method, head))
        if handler is None and self.store.get_repo(repo_type, repo_id) is None:
            raise HubHTTPError(404, f"Repository not found: {repo_id}", "RepoNotFound")  # e.g. a one-word id
        if handler is None:
            raise HubHTTPError(404, f"Unknown API route for {repo_type} {repo_id}: {method} {'/'.join(rest)}")
        return await handler(self, request, repo_type, repo_id, rest[1:])

    # --- pages for people -----------------------------------------------------------------------------
    async def _index(self, request: Request) -> Response:
        user = self._optional_user(request)
        repos = [m for m in self.store.list_repos() if self._can_read(m, user)]
        return HTMLResponse(browse.index_page(repos), headers=browse.PAGE_HEADERS)

    async def _browse(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        user = self._optional_user(request)
        meta = self.store.get_repo(repo_type, repo_id)
        if meta is None or not self._can_read(meta, user):
            return HTMLResponse(browse.not_found_page(repo_id), status_code=404, headers=browse.PAGE_HEADERS)
        # Off the event loop: a page reads files for its card and diffs.
        revision = request.query_params.get("revision")
        status, page = await run_in_threadpool(browse.render, self.store, meta, rest, revision)
        return HTMLResponse(page, status_code=status, headers=browse.PAGE_HEADERS)
