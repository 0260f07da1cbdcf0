"""Local Hub routes that bring files in: ``preupload`` (regular or LFS, ignored or not), the NDJSON ``commit``, the
LFS batch API, and the signed LFS links that receive an object (and serve it back on download).

Each handler takes the app (:class:`~hubui.localhub.context.HubContext`) and the request; the server routes to them.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubui.localhub import cardcheck, discussions_api, limits, signing, upload_rules, yamlsafe
from hubui.localhub.context import HubContext, truthy
from hubui.localhub.files import file_response, receive_pipelined
from hubui.localhub.httperrors import HubHTTPError
from hubui.localhub.limits import BodyError
from hubui.localhub.payloads import commit_line, list_of_objects, str_field
from hubui.localhub.repo_ops import lfs_size
from hubui.localhub.storage import SHA256_RE, AddFile, AddLfsFile, Delete, FileEntry, Operation, check_path


async def preupload(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``POST /api/{type}s/{id}/preupload/{rev}``: for each file, LFS or regular, ignored or not, and its oid."""
    create_pr = truthy(request.query_params.get("create_pr"))
    revision = "/".join(rest) or "main"
    meta, _ = discussions_api.repo_for_commit(app, request, repo_type, repo_id, revision, create_pr)
    commit = app._resolve_rev(meta, revision)
    body = await app._json_body(request)
    out = []
    patterns = upload_rules.lfs_patterns(app.store, commit)  # the repo's own .gitattributes
    gitignore = body.get("gitIgnore") if isinstance(body.get("gitIgnore"), str) else None
    if gitignore is None:
        gitignore = upload_rules.repo_gitignore(app.store, commit)
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


async def create_commit(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``POST /api/{type}s/{id}/commit/{rev}``: apply an NDJSON commit (optionally as a new pull request)."""
    revision = "/".join(rest) or "main"
    create_pr = truthy(request.query_params.get("create_pr"))
    meta, user = discussions_api.repo_for_commit(app, request, repo_type, repo_id, revision, create_pr)
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
                    _readme_problem, data, meta.repo_type, limiter=app._yaml_threads()
                )
                if problem:
                    raise HubHTTPError(400, problem)
            entry: FileEntry = await run_in_threadpool(app.store.put_bytes, data)
            ops.append(AddFile(path, entry))
        elif key == "lfsFile":
            try:
                ops.append(AddLfsFile(str(value["path"]), str(value["oid"]), lfs_size(app.store, value)))
            except (KeyError, TypeError, ValueError) as exc:
                raise HubHTTPError(400, "An lfsFile needs path, oid and size") from exc
        elif key in ("deletedFile", "deletedFolder"):
            ops.append(Delete(check_path(str_field(value, "path").rstrip("/")), key == "deletedFolder"))
        else:
            raise HubHTTPError(400, f"Unsupported commit operation {key!r}")
    if header is None:
        raise HubHTTPError(400, "The commit payload has no header line")
    commit, pr_num = await run_in_threadpool(
        lambda: app.store.commit(
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
    url = app._repo_url(request, meta)
    return JSONResponse(
        {
            "success": True,
            "commitOid": commit.id,
            "commitUrl": f"{url}/commit/{commit.id}",
            "pullRequestUrl": f"{url}/discussions/{pr_num}" if pr_num is not None else None,
            "hookOutput": "",
        }
    )


def _readme_problem(data: bytes, repo_type: str) -> str | None:
    """Why a README may not be committed: a YAML limit first (bounded work), then the card rules."""
    problem = yamlsafe.limit_problem(data.decode("utf-8", "replace"))
    return problem or cardcheck.readme_error(data, repo_type)


async def lfs_batch(app: HubContext, request: Request, repo_type: str, repo_id: str) -> Response:
    """``POST /{id}.git/info/lfs/objects/batch``: signed upload or download links for LFS objects."""
    app._user(request)  # a bad token is refused before the body is read
    body = await app._json_body(request)
    operation = body.get("operation")
    if operation == "upload":
        # Anyone with a write token may upload objects to a repo they can read: they only enter the repo
        # through a commit, which for a non-member must be a pull request.
        meta, _ = discussions_api.contributor(app, request, repo_type, repo_id)
    elif operation == "download":
        meta, _ = app._repo_for_read(request, repo_type, repo_id)
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
        link = f"{app._base(request)}/_lfs/{repo_type}/{meta.repo_id}/{oid}/{size}"
        claims = app._signer.claims_for(operation, repo_type, meta.repo_id, oid, size, meta.private)
        query = app._signer.query(claims)
        have = app.store.repo_has_lfs(meta, oid, size)
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


async def lfs_transfer(app: HubContext, request: Request, method: str, segs: list[str]) -> Response:
    """``/_lfs/...``: a signed link that receives an LFS object (PUT), verifies it (POST) or serves it (GET)."""
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
    meta = app.store.get_repo(repo_type, repo_id)
    if meta is None:
        raise HubHTTPError(404, "Repository not found", "RepoNotFound")
    query = dict(request.query_params)
    app._signer.check(
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
        if not app.store.repo_has_lfs(meta, oid, size):
            raise HubHTTPError(404, f"Object {oid} of size {size} was not received")
        return JSONResponse({"oid": oid, "size": size})
    if method == "GET" and not verify:
        if not app.store.repo_has_lfs(meta, oid, size):
            raise HubHTTPError(404, "Object does not exist")
        headers = {"Content-Type": "application/octet-stream", "Content-Disposition": "attachment"}
        return await file_response(request, app.store.object_path(oid), size, headers)
    if method != "PUT" or verify:
        raise HubHTTPError(405, "Method not allowed")
    receiver = app.store.object_receiver(oid, size)
    try:
        await receive_pipelined(request, receiver)
        await run_in_threadpool(receiver.finish)
    finally:
        receiver.abort()
    app.store.mark_lfs(meta, oid)
    return Response(status_code=200)
