"""The local Hub's HTTP API: an ASGI app that the real ``huggingface_hub`` client can talk to.

Routing is done on the *raw* request path, one URL-decoded segment at a time, because revisions
arrive quoted (``refs%2Fpr%2F1``) and a router that decodes ``%2F`` first would split them.
The endpoints and fields follow ``HUB_API.md`` (checked against huggingface_hub 2.4).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import mimetypes
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from hubui.localhub import browse, cardcheck, discussions_api, repo_ops
from hubui.localhub.repo_ops import lfs_size
from hubui.localhub.storage import (
    REPO_TYPES,
    SHA256_RE,
    AddFile,
    AddLfsFile,
    Commit,
    Delete,
    FileEntry,
    ObjectReceiver,
    Operation,
    RepoMeta,
    StorageError,
    Store,
    check_path,
    wants_lfs,
)
from hubui.localhub.users import Directory, User

logger = logging.getLogger("hubui.localhub")

PREFIXES = {"datasets": "dataset", "spaces": "space"}
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
RESERVED_NAMESPACES = {"api", "datasets", "spaces", "_lfs", "static"}
CHUNK = 1024 * 1024
UPLOAD_LINK_TTL = 3600
MAX_NDJSON_LINE = 96 * 1024 * 1024  # a base64 regular file of up to MAX_REGULAR_FILE, plus JSON

Handler = Callable[..., Awaitable[Response]]


def _error(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    # A control character (a path or name with a newline) in a header makes uvicorn drop the connection unanswered.
    text = "".join(c if " " <= c < "\x7f" else "?" for c in message)
    headers = {"X-Error-Message": text[:500]}
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


_UPLOAD_BLOCK = 8 << 20


async def _receive_pipelined(request: Request, receiver: ObjectReceiver) -> None:
    """Stream an upload into ``receiver``, hashing and writing one block in a worker thread while the event loop
    receives the next: done inline, the disk write and the sha256 sat between reads and halved the upload speed.
    At most two blocks (16 MB) per upload are in memory."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    block: list[bytes] = []
    held = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            block.append(chunk)
            held += len(chunk)
            if held >= _UPLOAD_BLOCK:
                data, block, held = b"".join(block), [], 0
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, receiver.write, data)
        if pending is not None:
            await pending
            pending = None
        if block:
            await run_in_threadpool(receiver.write, b"".join(block))
    finally:
        if pending is not None:
            # Whatever went wrong, let the worker finish before the caller closes the receiver's file.
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)


class HubHTTPError(Exception):
    """Raised inside handlers; becomes an error response."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class LocalHubApp:
    """ASGI application serving one :class:`Store` for one :class:`Directory` of users.

    Args:
        store: Where repos live.
        directory: Users, orgs and tokens.
    """

    def __init__(self, store: Store, directory: Directory) -> None:
        self.store = store
        self.directory = directory
        self._key = store.signing_key()

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
            response = _error(exc.status, exc.message, exc.code, **exc.extra)
        except StorageError as exc:
            response = _error(exc.status, exc.message, exc.code)
        except ClientDisconnect:
            return
        except Exception:
            logger.exception("Internal error on %s %s", request.method, scope.get("path"))
            response = _error(500, "Internal error in the local Hub; see its log.")
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
            return await self._lfs_transfer(request, method, segs[1:])
        repo_type = "model"
        if segs[0] in PREFIXES and len(segs) >= 3:
            repo_type, segs = PREFIXES[segs[0]], segs[1:]
        if len(segs) >= 2 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            if method != "POST":
                raise HubHTTPError(405, "Method not allowed")
            return await self._lfs_batch(request, repo_type, f"{segs[0]}/{segs[1][:-4]}")
        if len(segs) >= 3 and segs[1] == "resolve" and method in ("GET", "HEAD"):
            raise HubHTTPError(404, f"Repository not found: {segs[0]}", "RepoNotFound")  # one-word (canonical) id
        if len(segs) >= 4 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return await self._resolve(request, repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        if len(segs) >= 2 and method == "GET":
            return await self._browse(request, repo_type, f"{segs[0]}/{segs[1]}", segs[2:])
        raise HubHTTPError(404, f"Not found: {raw_path}")

    async def _api(self, request: Request, method: str, segs: list[str]) -> Response:
        if segs == ["whoami-v2"] and method == "GET":
            return self._whoami(request)
        if segs == ["repos", "create"] and method == "POST":
            return await self._create_repo(request)
        if segs == ["repos", "delete"] and method == "DELETE":
            return await self._delete_repo(request)
        if segs == ["validate-yaml"] and method == "POST":
            return await self._validate_yaml(request)
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
        routes: dict[tuple[str, str], Handler] = {
            ("GET", ""): self._repo_info,
            ("GET", "revision"): self._repo_info,
            ("POST", "preupload"): self._preupload,
            ("POST", "commit"): self._commit,
            ("GET", "tree"): self._tree,
            ("POST", "paths-info"): self._paths_info,
            ("GET", "commits"): self._commits,
            ("GET", "refs"): self._refs,
            ("POST", "branch"): self._create_branch,
            ("DELETE", "branch"): self._delete_branch,
            ("POST", "discussions"): self._discussions,
            ("GET", "discussions"): self._discussions,
            ("POST", "tag"): self._tag,
            ("DELETE", "tag"): self._tag,
            ("PUT", "settings"): self._settings,
            ("GET", "xet-write-token"): self._xet_token,
            ("GET", "xet-read-token"): self._xet_token,
        }
        handler = routes.get((method, head))
        if handler is None and self.store.get_repo(repo_type, repo_id) is None:
            raise HubHTTPError(404, f"Repository not found: {repo_id}", "RepoNotFound")  # e.g. a one-word id
        if handler is None:
            raise HubHTTPError(404, f"Unknown API route for {repo_type} {repo_id}: {method} {'/'.join(rest)}")
        return await handler(request, repo_type, repo_id, rest[1:])

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
        meta = self.store.get_repo(repo_type, repo_id)
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

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise HubHTTPError(400, "The request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise HubHTTPError(400, "The request body must be a JSON object")
        return body

    # --- account --------------------------------------------------------------------------------------
    def _whoami(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            raise HubHTTPError(401, "You must be authenticated to call whoami")
        orgs = [
            {"type": "org", "name": o, "fullname": o, "roleInOrg": "write"} for o in self.directory.orgs_of(user.name)
        ]
        return JSONResponse(
            {
                "type": "user",
                "id": hashlib.sha1(user.name.encode()).hexdigest()[:24],
                "name": user.name,
                "fullname": user.name,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "canPay": False,
                "avatarUrl": "",
                "orgs": orgs,
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"{user.name}-{user.role}", "role": user.role},
                },
            }
        )

    # --- repos ----------------------------------------------------------------------------------------
    async def _create_repo(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            raise HubHTTPError(401, "You must be authenticated to create a repo")
        body = await self._json_body(request)
        name = str(body.get("name") or "")
        namespace = body.get("organization") or user.name
        if "/" in name:  # some clients send "ns/name" as the name
            namespace, name = name.split("/", 1)
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubHTTPError(400, f"Invalid repo type {repo_type!r}")
        if namespace in RESERVED_NAMESPACES or not self.directory.namespace_exists(namespace):
            raise HubHTTPError(404, f"Namespace not found: {namespace!r}")
        self._check_can_write(user, namespace)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        sdk = body.get("sdk")
        if repo_type == "space" and not sdk:
            raise HubHTTPError(400, "A Space needs an 'sdk' (gradio, docker or static)")
        url = f"{self._base(request)}/{TYPE_PREFIX[repo_type]}{namespace}/{name}"
        try:
            meta = await run_in_threadpool(
                self.store.create_repo, repo_type, namespace, name, private=private, author=user.name, sdk=sdk
            )
        except StorageError as exc:
            if exc.status == 409:
                raise HubHTTPError(409, exc.message, url=url) from exc
            raise
        return JSONResponse({"url": url, "name": meta.repo_id, "id": meta.repo_id})

    async def _delete_repo(self, request: Request) -> Response:
        user = self._user(request)
        body = await self._json_body(request)
        repo_type = body.get("type") or "model"
        namespace = body.get("organization") or (user.name if user else "")
        repo_id = f"{namespace}/{body.get('name')}"
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        await run_in_threadpool(self.store.delete_repo, meta.repo_type, meta.repo_id)
        return JSONResponse({})

    async def _settings(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        body = await self._json_body(request)
        private = body.get("private")
        if "visibility" in body:
            private = body["visibility"] == "private"
        if "gated" in body:
            await run_in_threadpool(repo_ops.set_gated, self.store, meta, body["gated"])
        if private is not None:
            meta = self.store.set_private(meta, bool(private))
        return JSONResponse({"private": meta.private})

    async def _validate_yaml(self, request: Request) -> Response:
        body = await self._json_body(request)
        plain = "text/plain" in request.headers.get("accept", "")
        return cardcheck.validate_yaml_answer(str(body.get("content") or ""), str(body.get("repoType") or ""), plain)

    def _resolve_rev(self, meta: RepoMeta, rev: str) -> Commit:
        return self.store.resolve(meta, rev)

    async def _repo_info(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        rev = "/".join(rest) if rest else "main"
        commit = self._resolve_rev(meta, rev)
        return JSONResponse(self._info_payload(meta, commit))

    def _info_payload(self, meta: RepoMeta, commit: Commit) -> dict[str, Any]:
        card_data = browse.read_card_data(self.store, commit)
        siblings = []
        for path, e in commit.files.items():
            sib: dict[str, Any] = {"rfilename": path, "size": e.size, "blobId": e.blob_id}
            if e.lfs:
                sib["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": e.pointer_size()}
            siblings.append(sib)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{meta.repo_type}/{meta.repo_id}".encode()).hexdigest()[:24],
            "id": meta.repo_id,
            "author": meta.namespace,
            "sha": commit.id,
            "lastModified": commit.date,
            "createdAt": meta.created_at,
            "private": meta.private,
            "gated": repo_ops.gated(self.store, meta),
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list(card_data.get("tags") or []) if isinstance(card_data.get("tags"), list) else [],
            "siblings": siblings,
            "cardData": card_data,
        }
        if meta.repo_type == "model":
            info["modelId"] = meta.repo_id
            for key in ("library_name", "pipeline_tag"):
                if isinstance(card_data.get(key), str):
                    info[key] = card_data[key]
        if meta.repo_type == "space":
            info["sdk"] = meta.sdk
            info["runtime"] = {"stage": "NO_APP_FILE", "hardware": {"current": None, "requested": None}}
        return info

    # --- uploads --------------------------------------------------------------------------------------
    async def _preupload(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        create_pr = _truthy(request.query_params.get("create_pr"))
        revision = "/".join(rest) or "main"
        meta, _ = discussions_api.repo_for_commit(self, request, repo_type, repo_id, revision, create_pr)
        commit = self._resolve_rev(meta, revision)
        body = await self._json_body(request)
        out = []
        for item in body.get("files") or []:
            path = check_path(str(item.get("path", "")))
            try:
                size = int(item.get("size", 0))
                sample = base64.b64decode(item.get("sample") or "")
            except (TypeError, ValueError) as exc:
                raise HubHTTPError(400, f"Bad size or sample for {path!r}") from exc
            lfs = wants_lfs(path, size, sample)
            entry: dict[str, Any] = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            existing = commit.files.get(path)
            if existing is not None and existing.lfs == lfs:
                entry["oid"] = existing.sha256 if lfs else existing.blob_id
            out.append(entry)
        return JSONResponse({"files": out, "commitOid": commit.id})

    async def _commit(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        revision = "/".join(rest) or "main"
        create_pr = _truthy(request.query_params.get("create_pr"))
        meta, user = discussions_api.repo_for_commit(self, request, repo_type, repo_id, revision, create_pr)
        header: dict[str, Any] | None = None
        ops: list[Operation] = []
        async for line in _ndjson_lines(request.stream()):
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (ValueError, KeyError, TypeError) as exc:
                raise HubHTTPError(400, "Malformed commit payload: each line must be {key, value}") from exc
            if key == "header":
                header = value
            elif key == "file":
                path = check_path(str(value.get("path", "")))
                if value.get("encoding", "base64") != "base64":
                    raise HubHTTPError(400, f"Unsupported encoding for {path!r}")
                try:
                    data = base64.b64decode(value.get("content") or "", validate=True)
                except ValueError as exc:
                    raise HubHTTPError(400, f"Content of {path!r} is not valid base64") from exc
                if path == "README.md" and (problem := cardcheck.readme_error(data, meta.repo_type)):
                    raise HubHTTPError(400, problem)
                entry: FileEntry = await run_in_threadpool(self.store.put_bytes, data)
                ops.append(AddFile(path, entry))
            elif key == "lfsFile":
                try:
                    ops.append(AddLfsFile(str(value["path"]), str(value["oid"]), lfs_size(self.store, value)))
                except (KeyError, TypeError, ValueError) as exc:
                    raise HubHTTPError(400, "An lfsFile needs path, oid and size") from exc
            elif key in ("deletedFile", "deletedFolder"):
                ops.append(Delete(check_path(str(value.get("path", "")).rstrip("/")), key == "deletedFolder"))
            else:
                raise HubHTTPError(400, f"Unsupported commit operation {key!r}")
        if header is None:
            raise HubHTTPError(400, "The commit payload has no header line")
        commit, pr_num = await run_in_threadpool(
            lambda: self.store.commit(
                meta,
                revision,
                ops,
                author=user.name,
                summary=str(header.get("summary") or ""),
                description=str(header.get("description") or ""),
                parent_commit=header.get("parentCommit"),
                create_pr=create_pr,
            )
        )
        url = self._repo_url(request, meta)
        return JSONResponse(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{url}/commit/{commit.id}",
                "pullRequestUrl": f"{url}/discussions/{pr_num}" if pr_num is not None else None,
                "hookOutput": "",
            }
        )

    # --- LFS ------------------------------------------------------------------------------------------
    def _sign(self, repo_type: str, repo_id: str, oid: str, size: int, expires: int) -> str:
        msg = f"{repo_type}/{repo_id}/{oid}/{size}/{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    async def _lfs_batch(self, request: Request, repo_type: str, repo_id: str) -> Response:
        body = await self._json_body(request)
        operation = body.get("operation")
        if operation == "upload":
            # Anyone with a write token may upload objects to a repo they can read: they only enter the repo
            # through a commit, which for a non-member must be a pull request.
            meta, _ = discussions_api.contributor(self, request, repo_type, repo_id)
        elif operation == "download":
            meta, _ = self._repo_for_read(request, repo_type, repo_id)
        else:
            raise HubHTTPError(400, f"Unsupported LFS operation {operation!r}")
        expires = int(time.time()) + UPLOAD_LINK_TTL
        out = []
        for obj in body.get("objects") or []:
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            link = f"{self._base(request)}/_lfs/{repo_type}/{repo_id}/{oid}/{size}"
            query = f"expires={expires}&sig={self._sign(repo_type, repo_id, oid, size, expires)}"
            have = self.store.repo_has_lfs(meta, oid, size)
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if operation == "upload" and not have:
                entry["actions"] = {
                    "upload": {"href": f"{link}?{query}", "expires_in": UPLOAD_LINK_TTL},
                    "verify": {"href": f"{link}/verify?{query}", "expires_in": UPLOAD_LINK_TTL},
                }
            elif operation == "download":
                if have:
                    entry["actions"] = {"download": {"href": f"{link}?{query}", "expires_in": UPLOAD_LINK_TTL}}
                else:
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
            out.append(entry)
        return JSONResponse({"transfer": "basic", "objects": out}, media_type="application/vnd.git-lfs+json")

    async def _lfs_transfer(self, request: Request, method: str, segs: list[str]) -> Response:
        # /_lfs/{type}/{ns}/{name}/{oid}/{size}[/verify]?expires=..&sig=..
        verify = segs[-1:] == ["verify"]
        if verify:
            segs = segs[:-1]
        if len(segs) != 5:
            raise HubHTTPError(404, "Unknown LFS link")
        repo_type, repo_id, oid = segs[0], f"{segs[1]}/{segs[2]}", segs[3]
        try:
            size, expires = int(segs[4]), int(request.query_params.get("expires", "0"))
        except ValueError as exc:
            raise HubHTTPError(400, "Malformed LFS link") from exc
        expected = self._sign(repo_type, repo_id, oid, size, expires)
        if not hmac.compare_digest(expected, request.query_params.get("sig", "")) or expires < time.time():
            raise HubHTTPError(403, "This upload link is invalid or has expired; ask the batch endpoint for a new one")
        meta = self.store.get_repo(repo_type, repo_id)
        if meta is None:
            raise HubHTTPError(404, "Repository not found", "RepoNotFound")
        if verify and method == "POST":
            if not self.store.repo_has_lfs(meta, oid, size):
                raise HubHTTPError(404, f"Object {oid} of size {size} was not received")
            return JSONResponse({"oid": oid, "size": size})
        if method == "GET" and not verify:
            if not self.store.repo_has_lfs(meta, oid, size):
                raise HubHTTPError(404, "Object does not exist")
            return await _file_response(request, self.store.object_path(oid), size, {})
        if method != "PUT" or verify:
            raise HubHTTPError(405, "Method not allowed")
        receiver = self.store.object_receiver(oid, size)
        try:
            await _receive_pipelined(request, receiver)
            await run_in_threadpool(receiver.finish)
        finally:
            receiver.abort()
        self.store.mark_lfs(meta, oid)
        return Response(status_code=200)

    # --- reads ----------------------------------------------------------------------------------------
    async def _resolve(self, request: Request, repo_type: str, repo_id: str, rev: str, path: str) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        commit = self._resolve_rev(meta, rev)
        entry = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.id, "Accept-Ranges": "bytes"}
        if entry is None:
            resp = _error(404, f"Entry not found: {path}", "EntryNotFound")
            resp.headers.update(headers)
            return resp
        if entry.lfs:
            headers.update({"ETag": f'"{entry.sha256}"', "X-Linked-Etag": f'"{entry.sha256}"'})
            headers["X-Linked-Size"] = str(entry.size)
        else:
            headers["ETag"] = f'"{entry.blob_id}"'
        headers["Content-Type"] = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}"
        return await _file_response(request, self.store.object_path(entry.sha256), entry.size, headers)

    def _tree_entries(self, commit: Commit, path: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = path.rstrip("/") + "/" if path else ""
        if path and path in commit.files:
            raise HubHTTPError(404, f"{path!r} is a file, not a folder", "EntryNotFound")
        under = {p: e for p, e in commit.files.items() if p.startswith(prefix)}
        if path and not under:
            raise HubHTTPError(404, f"Folder not found: {path}", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for p, e in under.items():
            rel = p[len(prefix) :].split("/")
            dirs = range(len(rel) - 1) if recursive else range(min(1, len(rel) - 1))
            for i in dirs:
                d = prefix + "/".join(rel[: i + 1])
                entries.setdefault(d, {"type": "directory", "path": d})
            if recursive or len(rel) == 1:
                entries[p] = _file_json(p, e)
        for d, entry in entries.items():
            if entry["type"] == "directory":
                listing = "".join(f"{p}:{e.blob_id}\n" for p, e in sorted(under.items()) if p.startswith(d + "/"))
                entry["oid"] = hashlib.sha1(listing.encode()).hexdigest()
        return [entries[k] for k in sorted(entries)]

    async def _tree(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        if not rest:
            raise HubHTTPError(404, "A tree request needs a revision")
        commit = self._resolve_rev(meta, rest[0])
        recursive = _truthy(request.query_params.get("recursive"))
        return JSONResponse(self._tree_entries(commit, "/".join(rest[1:]), recursive))

    async def _paths_info(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        commit = self._resolve_rev(meta, "/".join(rest) or "main")
        if request.headers.get("content-type", "").startswith("application/json"):
            paths = (await self._json_body(request)).get("paths") or []
        else:
            form = await request.form()
            paths = form.getlist("paths")
        out: list[dict[str, Any]] = []
        for p in paths:
            p = str(p).strip("/")
            if p in commit.files:
                out.append(_file_json(p, commit.files[p]))
            elif any(f.startswith(p + "/") for f in commit.files):
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
        return JSONResponse(out)

    async def _commits(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        history = self.store.history(meta, "/".join(rest) or "main")
        return JSONResponse([_commit_json(c) for c in history])

    async def _refs(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        refs = self.store.refs(meta)
        body: dict[str, Any] = {
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in refs["heads"].items()],
            "converts": [],
            "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in refs.get("tags", {}).items()],
        }
        if _truthy(request.query_params.get("include_prs")):
            body["pullRequests"] = [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c} for n, c in refs["prs"].items()
            ]
        return JSONResponse(body)

    async def _create_branch(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        body = await self._json_body(request) if await request.body() else {}
        await run_in_threadpool(self.store.create_branch, meta, "/".join(rest), body.get("startingPoint"))
        return JSONResponse({})

    async def _delete_branch(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        await run_in_threadpool(self.store.delete_branch, meta, "/".join(rest))
        return JSONResponse({})

    async def _discussions(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        return await discussions_api.handle(self, request, request.method, repo_type, repo_id, rest)

    async def _xet_token(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        self._repo_for_read(request, repo_type, repo_id)
        raise HubHTTPError(501, repo_ops.XET_MESSAGE, "XetNotSupported")

    async def _tag(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        return await discussions_api.handle_tag(self, request, request.method, repo_type, repo_id, rest)

    # --- pages for people -----------------------------------------------------------------------------
    async def _index(self, request: Request) -> Response:
        user = self._optional_user(request)
        repos = [m for m in self.store.list_repos() if self._can_read(m, user)]
        return HTMLResponse(browse.index_page(repos))

    def _optional_user(self, request: Request) -> User | None:
        try:
            return self._user(request)
        except HubHTTPError:
            return None

    async def _browse(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        user = self._optional_user(request)
        meta = self.store.get_repo(repo_type, repo_id)
        if meta is None or not self._can_read(meta, user):
            return HTMLResponse(browse.not_found_page(repo_id), status_code=404)
        refs = self.store.refs(meta)
        revision = request.query_params.get("revision") or "main"
        if rest[:1] == ["commit"] and len(rest) == 2:
            revision = rest[1]
        elif rest[:1] == ["discussions"] and len(rest) == 2 and rest[1] in refs["prs"]:
            revision = f"refs/pr/{rest[1]}"
        elif rest[:1] == ["tree"] and len(rest) >= 2:
            revision = rest[1]
        elif rest:
            return HTMLResponse(browse.not_found_page(f"{repo_id}/{'/'.join(rest)}"), status_code=404)
        try:
            commit = self._resolve_rev(meta, revision)
        except StorageError:
            return HTMLResponse(browse.not_found_page(f"{repo_id}@{revision}"), status_code=404)
        history = self.store.history(meta, commit.id)
        page = browse.repo_page(meta, revision, commit, history, refs, self.store.discussions(meta))
        return HTMLResponse(page)


def _file_json(path: str, e: FileEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "file", "oid": e.blob_id, "size": e.size, "path": path}
    if e.lfs:
        data["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": e.pointer_size()}
    return data


def _commit_json(c: Commit) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.summary,
        "message": c.message,
        "authors": [{"user": c.author}],
        "date": c.date,
        "parents": list(c.parents),
    }


async def _ndjson_lines(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split a streamed body into lines without holding more than one line in memory."""
    buf = b""
    async for chunk in stream:
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
        if len(buf) > MAX_NDJSON_LINE:
            raise HubHTTPError(413, "A commit line is too large; upload big files through LFS")
    if buf.strip():
        yield buf


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` into an inclusive range, or ``None`` for all."""
    if not header or not header.startswith("bytes="):
        return None
    spec = header[len("bytes=") :].split(",")[0].strip()
    start_s, _, end_s = spec.partition("-")
    try:
        if not start_s:
            n = int(end_s)
            start, end = max(0, size - n), size - 1
        else:
            start = int(start_s)
            end = int(end_s) if end_s else size - 1
    except ValueError as exc:
        raise HubHTTPError(416, f"Invalid range {header!r}") from exc
    if (start >= size and size > 0) or start > end + 1:
        raise HubHTTPError(416, f"Range {header!r} is outside a file of {size} bytes")
    return start, min(end, size - 1)


async def _file_response(request: Request, path: Any, size: int, headers: dict[str, str]) -> Response:
    rng = _parse_range(request.headers.get("range"), size)
    status = 200
    start, end = 0, size - 1
    if rng is not None:
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)

    async def body() -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as fh:
            await fh.seek(start)
            remaining = length
            while remaining > 0:
                chunk = await fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers)
