"""The local Hub's HTTP API: an ASGI app that the real ``huggingface_hub`` client can talk to.

Routing is done on the *raw* request path, one URL-decoded segment at a time, because revisions
arrive quoted (``refs%2Fpr%2F1``) and a router that decodes ``%2F`` first would split them.
The endpoints and fields follow ``HUB_API.md`` (checked against huggingface_hub 2.4).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from hubui.localhub import browse, cardcheck, discussions_api, limits, repo_ops, signing, upload_rules, yamlsafe
from hubui.localhub.files import RangeError, content_headers, file_response, receive_pipelined
from hubui.localhub.limits import BodyError
from hubui.localhub.payloads import commit_line, json_bytes, json_response, list_of_objects, str_field
from hubui.localhub.repo_ops import lfs_size
from hubui.localhub.storage import (
    REPO_TYPES,
    SHA256_RE,
    AddFile,
    AddLfsFile,
    Commit,
    Delete,
    FileEntry,
    Operation,
    RepoMeta,
    StorageError,
    Store,
    check_path,
)
from hubui.localhub.treeindex import TreeIndexCache, file_json
from hubui.localhub.users import Directory, User
from hubui.localhub.yamlsafe import CardDataCache

logger = logging.getLogger("hubui.localhub")

PREFIXES = {"datasets": "dataset", "spaces": "space"}
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
RESERVED_NAMESPACES = {"api", "datasets", "spaces", "_lfs", "static"}

Handler = Callable[..., Awaitable[Response]]


def _error(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    # A control character (a path or name with a newline) in a header makes uvicorn drop the connection unanswered.
    text = "".join(c if " " <= c < "\x7f" else "?" for c in message)
    headers = {"X-Error-Message": text[:500], "X-Request-Id": uuid.uuid4().hex}  # the client quotes it in errors
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


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
        self._signer = signing.LinkSigner(store.signing_key())
        self._cards = CardDataCache(store)
        self._trees = TreeIndexCache()
        self._yaml_limiter: anyio.CapacityLimiter | None = None

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
        except BodyError as exc:
            response = _error(exc.status, exc.message)
        except RangeError as exc:
            response = _error(416, exc.message)
        except signing.LinkRefused as exc:
            response = _error(403, str(exc))
        except ClientDisconnect:
            return
        except OSError as exc:
            if not limits.is_storage_full(exc):
                logger.exception("Internal error on %s %s", request.method, scope.get("path"))
                response = _error(500, "Internal error in the local Hub; see its log.")
            else:
                # Not a 5xx that clients retry: the same request fails the same way until someone frees space.
                logger.error("Storage full under %s: %s (%s %s)", self.store.root, exc, request.method, scope["path"])
                response = _error(507, limits.storage_full_message(exc), "InsufficientStorage")
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
        if method == "GET" and (
            segs == ["settings", "repositories"] or segs[:1] + segs[2:] == ["organizations", "settings", "repositories"]
        ):
            return await self._storage_listing(request, segs[1] if segs[0] == "organizations" else None)
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
            ("GET", "auth-check"): self._auth_check,
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
        name = str_field(body, "name")
        namespace = str_field(body, "organization") or user.name
        if "/" in name:  # some clients send "ns/name" as the name
            namespace, name = name.split("/", 1)
        repo_type = str_field(body, "type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubHTTPError(400, f"Invalid repo type {repo_type!r}")
        if namespace in RESERVED_NAMESPACES or not self.directory.namespace_exists(namespace):
            raise HubHTTPError(404, f"Namespace not found: {namespace!r}")
        self._check_can_write(user, namespace)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        sdk = str_field(body, "sdk") or None
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
        if repo_type == "space":
            await run_in_threadpool(repo_ops.add_space_readme, self.store, meta, user.name)
        return JSONResponse({"url": url, "name": meta.repo_id, "id": meta.repo_id})

    async def _delete_repo(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:  # before the body: an anonymous caller gets nothing read
            raise HubHTTPError(401, "You must be authenticated to delete a repo")
        body = await self._json_body(request)
        repo_type = str_field(body, "type") or "model"
        namespace = str_field(body, "organization") or user.name
        repo_id = f"{namespace}/{str_field(body, 'name')}"
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        await run_in_threadpool(self.store.delete_repo, meta.repo_type, meta.repo_id)
        return JSONResponse({})

    async def _settings(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        body = await self._json_body(request)
        private = body.get("private")
        if private is not None and not isinstance(private, bool):
            raise HubHTTPError(400, f'"private" must be true or false, not {private!r}'[:200])
        if "visibility" in body:
            if body["visibility"] not in ("private", "public"):
                raise HubHTTPError(400, f'"visibility" must be "private" or "public", not {body["visibility"]!r}'[:200])
            private = body["visibility"] == "private"
        if "gated" in body:
            await run_in_threadpool(repo_ops.set_gated, self.store, meta, body["gated"])
        if private is not None:
            meta = await run_in_threadpool(self.store.set_private, meta, private)
        return JSONResponse({"private": meta.private})

    async def _validate_yaml(self, request: Request) -> Response:
        # Anyone may call this: the body is capped, and the parse runs in a worker thread, two at a time at most,
        # so that big or hostile YAML never holds the event loop (or every worker thread).
        body = await self._json_body(request, limits.MAX_VALIDATE_YAML_BODY)
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise HubHTTPError(400, f'"content" must be the README text (a string), not {type(content).__name__}')
        plain = "text/plain" in request.headers.get("accept", "")
        repo_type = str_field(body, "repoType")

        def answer() -> Response:
            problem = yamlsafe.limit_problem(content or "")
            if problem:
                return _error(400, problem, errors=[{"message": problem}], warnings=[])
            return cardcheck.validate_yaml_answer(content or "", repo_type, plain)

        return await anyio.to_thread.run_sync(answer, limiter=self._yaml_threads())

    def _yaml_threads(self) -> anyio.CapacityLimiter:
        if self._yaml_limiter is None:
            self._yaml_limiter = anyio.CapacityLimiter(2)
        return self._yaml_limiter

    def _resolve_rev(self, meta: RepoMeta, rev: str) -> Commit:
        return self.store.resolve(meta, rev)

    async def _repo_info(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        rev = "/".join(rest) if rest else "main"

        expand = request.query_params.getlist("expand")

        def build() -> bytes:  # reading the commit and the README, and the JSON of thousands of files: a thread
            info = self._info_payload(meta, self._resolve_rev(meta, rev))
            return json_bytes(repo_ops.apply_expand(info, expand))

        return json_response(await run_in_threadpool(build))

    def _info_payload(self, meta: RepoMeta, commit: Commit) -> dict[str, Any]:
        card_data = self._cards.get(commit)  # bounded YAML, parsed once per README
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
        patterns = upload_rules.lfs_patterns(self.store, commit)  # the repo's own .gitattributes
        gitignore = body.get("gitIgnore") if isinstance(body.get("gitIgnore"), str) else None
        if gitignore is None:
            gitignore = upload_rules.repo_gitignore(self.store, commit)
        for item in list_of_objects(body, "files"):
            path = upload_rules.checked_path(str_field(item, "path"))
            size = item.get("size", 0)
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise HubHTTPError(400, f'The "size" of {path!r} must be a whole number of bytes, not {size!r}'[:200])
            try:
                sample = base64.b64decode(str_field(item, "sample"))
            except ValueError as exc:
                raise HubHTTPError(400, f'The "sample" of {path!r} is not valid base64') from exc
            lfs = upload_rules.wants_lfs(patterns, path, size, sample)
            ignore = upload_rules.ignored(gitignore, path)
            entry: dict[str, Any] = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": ignore}
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
        number = 0
        lines = limits.ndjson_lines(request.stream(), max_line=limits.MAX_NDJSON_LINE, max_total=limits.MAX_COMMIT_BODY)
        async for line in lines:
            number += 1
            key, value = await commit_line(line, number)
            if len(ops) >= limits.MAX_COMMIT_OPERATIONS:
                raise BodyError(413, f"A commit may hold up to {limits.MAX_COMMIT_OPERATIONS} operations; split it")
            if key == "header":
                header = value
            elif key == "file":
                path = check_path(str_field(value, "path"))
                if value.get("encoding", "base64") != "base64":
                    raise HubHTTPError(400, f"Unsupported encoding for {path!r}")
                try:
                    data = base64.b64decode(str_field(value, "content"), validate=True)
                except ValueError as exc:
                    raise HubHTTPError(400, f"Content of {path!r} is not valid base64") from exc
                if path == "README.md":
                    problem = await anyio.to_thread.run_sync(
                        _readme_problem, data, meta.repo_type, limiter=self._yaml_threads()
                    )
                    if problem:
                        raise HubHTTPError(400, problem)
                entry: FileEntry = await run_in_threadpool(self.store.put_bytes, data)
                ops.append(AddFile(path, entry))
            elif key == "lfsFile":
                try:
                    ops.append(AddLfsFile(str(value["path"]), str(value["oid"]), lfs_size(self.store, value)))
                except (KeyError, TypeError, ValueError) as exc:
                    raise HubHTTPError(400, "An lfsFile needs path, oid and size") from exc
            elif key in ("deletedFile", "deletedFolder"):
                ops.append(Delete(check_path(str_field(value, "path").rstrip("/")), key == "deletedFolder"))
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
    async def _lfs_batch(self, request: Request, repo_type: str, repo_id: str) -> Response:
        self._user(request)  # a bad token is refused before the body is read
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
        ttl = signing.TTL[operation]
        out = []
        for obj in list_of_objects(body, "objects"):
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            # The stored id, not the URL's: ids are case-insensitive, the signed link names the repo exactly.
            link = f"{self._base(request)}/_lfs/{repo_type}/{meta.repo_id}/{oid}/{size}"
            claims = self._signer.claims_for(operation, repo_type, meta.repo_id, oid, size, meta.private)
            query = self._signer.query(claims)
            have = self.store.repo_has_lfs(meta, oid, size)
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if operation == "upload" and not have:
                entry["actions"] = {
                    "upload": {"href": f"{link}?{query}", "expires_in": ttl},
                    "verify": {"href": f"{link}/verify?{query}", "expires_in": ttl},
                }
            elif operation == "download":
                if have:
                    entry["actions"] = {"download": {"href": f"{link}?{query}", "expires_in": ttl}}
                else:
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
            out.append(entry)
        return JSONResponse({"transfer": "basic", "objects": out}, media_type="application/vnd.git-lfs+json")

    async def _lfs_transfer(self, request: Request, method: str, segs: list[str]) -> Response:
        # /_lfs/{type}/{ns}/{name}/{oid}/{size}[/verify]?op=..&vis=..&expires=..&sig=.. (see signing.py)
        verify = segs[-1:] == ["verify"]
        if verify:
            segs = segs[:-1]
        if len(segs) != 5:
            raise HubHTTPError(404, "Unknown LFS link")
        repo_type, repo_id, oid = segs[0], f"{segs[1]}/{segs[2]}", segs[3]
        try:
            size = int(segs[4])
        except ValueError as exc:
            raise HubHTTPError(400, "Malformed LFS link") from exc
        meta = self.store.get_repo(repo_type, repo_id)
        if meta is None:
            raise HubHTTPError(404, "Repository not found", "RepoNotFound")
        query = dict(request.query_params)
        self._signer.check(
            method=method,
            verify=verify,
            repo_type=repo_type,
            repo_id=repo_id,
            oid=oid,
            size=size,
            query=query,
            private_now=meta.private,
        )
        if verify and method == "POST":
            if not self.store.repo_has_lfs(meta, oid, size):
                raise HubHTTPError(404, f"Object {oid} of size {size} was not received")
            return JSONResponse({"oid": oid, "size": size})
        if method == "GET" and not verify:
            if not self.store.repo_has_lfs(meta, oid, size):
                raise HubHTTPError(404, "Object does not exist")
            headers = {"Content-Type": "application/octet-stream", "Content-Disposition": "attachment"}
            return await file_response(request, self.store.object_path(oid), size, headers)
        if method != "PUT" or verify:
            raise HubHTTPError(405, "Method not allowed")
        receiver = self.store.object_receiver(oid, size)
        try:
            await receive_pipelined(request, receiver)
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
        headers.update(content_headers(path))  # HTML, SVG and other active types as downloads, with nosniff
        return await file_response(request, self.store.object_path(entry.sha256), entry.size, headers)

    async def _tree(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        if not rest:
            raise HubHTTPError(404, "A tree request needs a revision")
        recursive = _truthy(request.query_params.get("recursive"))
        expand = _truthy(request.query_params.get("expand"))
        path = "/".join(rest[1:]).strip("/")

        def build() -> bytes:  # the index is built once per commit, in this worker thread, never on the loop
            commit = self._resolve_rev(meta, rest[0])
            if path and path in commit.files:
                raise HubHTTPError(404, f"{path!r} is a file, not a folder", "EntryNotFound")
            try:
                entries = self._trees.get(f"{meta.repo_type}/{meta.repo_id}", commit).listing(path, recursive)
            except KeyError:
                raise HubHTTPError(404, f"Folder not found: {path}", "EntryNotFound") from None
            if expand:
                entries = [dict(e) for e in entries]
                upload_rules.add_last_commits(self.store, meta, commit, entries)
            return json_bytes(entries)

        return json_response(await run_in_threadpool(build))

    async def _paths_info(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        paths, expand = await self._paths_field(request)

        def build() -> bytes:
            commit = self._resolve_rev(meta, "/".join(rest) or "main")
            index = self._trees.get(f"{meta.repo_type}/{meta.repo_id}", commit)
            out: list[dict[str, Any]] = []
            for p in paths:
                p = p.strip("/")
                if p in commit.files:
                    out.append(file_json(p, commit.files[p]))
                elif index.is_folder(p):
                    out.append(index.entry(p))
            if expand:
                out = [dict(e) for e in out]
                upload_rules.add_last_commits(self.store, meta, commit, out)
            return json_bytes(out)

        return json_response(await run_in_threadpool(build))

    async def _paths_field(self, request: Request) -> tuple[list[str], bool]:
        """The ``paths`` and ``expand`` of a paths-info request, sent as JSON or as a form (huggingface_hub sends
        a form)."""
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await self._json_body(request)
            paths: Any = body.get("paths") or []
            expand = body.get("expand") in (True, "true", "True", "1")
        else:
            raw = await limits.read_body(request, limits.MAX_JSON_BODY, "a paths-info request")
            try:
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError as exc:
                raise HubHTTPError(400, "The paths-info form is not UTF-8 text") from exc
            paths = form.get("paths", [])
            expand = _truthy((form.get("expand") or [""])[0])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HubHTTPError(400, '"paths" must be a list of paths in the repo')
        return paths, expand

    async def _commits(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_read(request, repo_type, repo_id)
        wanted = request.query_params.getlist("expand[]") + request.query_params.getlist("expand")
        if set(wanted) - {"formatted"}:
            raise HubHTTPError(400, f"The local Hub cannot expand commits with: {sorted(set(wanted) - {'formatted'})}")
        history = self.store.history(meta, "/".join(rest) or "main")
        return JSONResponse(
            [repo_ops.formatted_commit(_commit_json(c)) if wanted else _commit_json(c) for c in history]
        )

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
        body = await self._json_body(request)
        start = body.get("startingPoint")
        if start is not None and not isinstance(start, str):
            raise HubHTTPError(400, f'"startingPoint" must be a branch or commit id, not {type(start).__name__}')
        await run_in_threadpool(self.store.create_branch, meta, "/".join(rest), start)
        return JSONResponse({})

    async def _delete_branch(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        meta, _ = self._repo_for_write(request, repo_type, repo_id)
        await run_in_threadpool(self.store.delete_branch, meta, "/".join(rest))
        return JSONResponse({})

    async def _discussions(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        return await discussions_api.handle(self, request, request.method, repo_type, repo_id, rest)

    async def _storage_listing(self, request: Request, namespace: str | None) -> Response:
        user = self._user(request)
        if user is None:
            raise HubHTTPError(401, "You must be authenticated to list your repos' storage")
        namespace = namespace or user.name
        if not self.directory.is_member(user.name, namespace):
            raise HubHTTPError(403, f"Only members of {namespace!r} can list its repos' storage")
        return JSONResponse(await run_in_threadpool(repo_ops.storage_listing, self.store, namespace))

    async def _auth_check(self, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        if rest == ["write"]:
            self._repo_for_write(request, repo_type, repo_id)
        else:
            self._repo_for_read(request, repo_type, repo_id)
        return JSONResponse({})

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


def _commit_json(c: Commit) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.summary,
        "message": c.message,
        "authors": [{"user": c.author}],
        "date": c.date,
        "parents": list(c.parents),
    }


def _readme_problem(data: bytes, repo_type: str) -> str | None:
    """Why a README may not be committed: a YAML limit first (bounded work), then the card rules."""
    problem = yamlsafe.limit_problem(data.decode("utf-8", "replace"))
    return problem or cardcheck.readme_error(data, repo_type)
