"""Local Hub routes for accounts and whole repos: ``whoami``, create, delete, settings (visibility, gated), repo
info, the storage listing, access checks (``auth-check``), the Xet token refusal and ``validate-yaml``.

Each handler takes the app (:class:`~hubui.localhub.context.HubContext`) and the request; the server routes to them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubui.localhub import cardcheck, limits, repo_ops, yamlsafe
from hubui.localhub.context import TYPE_PREFIX, HubContext
from hubui.localhub.httperrors import HubHTTPError, error_response
from hubui.localhub.payloads import json_bytes, json_response, str_field
from hubui.localhub.storage import REPO_TYPES, Commit, RepoMeta, StorageError

RESERVED_NAMESPACES = {"api", "datasets", "spaces", "_lfs", "static"}


def whoami(app: HubContext, request: Request) -> Response:
    """``GET /api/whoami-v2``: the caller, their orgs and their token's role."""
    user = app._user(request)
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to call whoami")
    orgs = [{"type": "org", "name": o, "fullname": o, "roleInOrg": "write"} for o in app.directory.orgs_of(user.name)]
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


async def create_repo(app: HubContext, request: Request) -> Response:
    """``POST /api/repos/create``: a new repo (a Space gets its README), or 409 with the existing repo's URL."""
    user = app._user(request)
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to create a repo")
    body = await app._json_body(request)
    name = str_field(body, "name")
    namespace = str_field(body, "organization") or user.name
    if "/" in name:  # some clients send "ns/name" as the name
        namespace, name = name.split("/", 1)
    repo_type = str_field(body, "type") or "model"
    if repo_type not in REPO_TYPES:
        raise HubHTTPError(400, f"Invalid repo type {repo_type!r}")
    if namespace in RESERVED_NAMESPACES or not app.directory.namespace_exists(namespace):
        raise HubHTTPError(404, f"Namespace not found: {namespace!r}")
    app._check_can_write(user, namespace)
    private = body.get("visibility") == "private" or bool(body.get("private"))
    sdk = str_field(body, "sdk") or None
    if repo_type == "space" and not sdk:
        raise HubHTTPError(400, "A Space needs an 'sdk' (gradio, docker or static)")
    url = f"{app._base(request)}/{TYPE_PREFIX[repo_type]}{namespace}/{name}"
    try:
        meta = await run_in_threadpool(
            app.store.create_repo, repo_type, namespace, name, private=private, author=user.name, sdk=sdk
        )
    except StorageError as exc:
        if exc.status == 409:
            raise HubHTTPError(409, exc.message, url=url) from exc
        raise
    if repo_type == "space":
        await run_in_threadpool(repo_ops.add_space_readme, app.store, meta, user.name)
    return JSONResponse({"url": url, "name": meta.repo_id, "id": meta.repo_id})


async def delete_repo(app: HubContext, request: Request) -> Response:
    """``DELETE /api/repos/delete``: delete a repo the caller may write to."""
    user = app._user(request)
    if user is None:  # before the body: an anonymous caller gets nothing read
        raise HubHTTPError(401, "You must be authenticated to delete a repo")
    body = await app._json_body(request)
    repo_type = str_field(body, "type") or "model"
    namespace = str_field(body, "organization") or user.name
    repo_id = f"{namespace}/{str_field(body, 'name')}"
    meta, _ = app._repo_for_write(request, repo_type, repo_id)
    await run_in_threadpool(app.store.delete_repo, meta.repo_type, meta.repo_id)
    return JSONResponse({})


async def settings(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``PUT /api/{type}s/{id}/settings``: change ``private`` / ``visibility`` and ``gated``."""
    meta, _ = app._repo_for_write(request, repo_type, repo_id)
    body = await app._json_body(request)
    private = body.get("private")
    if private is not None and not isinstance(private, bool):
        raise HubHTTPError(400, f'"private" must be true or false, not {private!r}'[:200])
    if "visibility" in body:
        if body["visibility"] not in ("private", "public"):
            raise HubHTTPError(400, f'"visibility" must be "private" or "public", not {body["visibility"]!r}'[:200])
        private = body["visibility"] == "private"
    if "gated" in body:
        await run_in_threadpool(repo_ops.set_gated, app.store, meta, body["gated"])
    if private is not None:
        meta = await run_in_threadpool(app.store.set_private, meta, private)
    return JSONResponse({"private": meta.private})


async def validate_yaml(app: HubContext, request: Request) -> Response:
    """``POST /api/validate-yaml``: check a README's metadata as the Hub does (anyone may call it)."""
    # Anyone may call this: the body is capped, and the parse runs in a worker thread, two at a time at most,
    # so that big or hostile YAML never holds the event loop (or every worker thread).
    body = await app._json_body(request, limits.MAX_VALIDATE_YAML_BODY)
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise HubHTTPError(400, f'"content" must be the README text (a string), not {type(content).__name__}')
    plain = "text/plain" in request.headers.get("accept", "")
    repo_type = str_field(body, "repoType")

    def answer() -> Response:
        problem = yamlsafe.limit_problem(content or "")
        if problem:
            return error_response(400, problem, errors=[{"message": problem}], warnings=[])
        return cardcheck.validate_yaml_answer(content or "", repo_type, plain)

    return await anyio.to_thread.run_sync(answer, limiter=app._yaml_threads())


async def repo_info(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}[/revision/{rev}]``: repo info at a revision, limited by ``expand``."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    rev = "/".join(rest) if rest else "main"

    expand = request.query_params.getlist("expand")

    def build() -> bytes:  # reading the commit and the README, and the JSON of thousands of files: a thread
        info = _info_payload(app, meta, app._resolve_rev(meta, rev))
        return json_bytes(repo_ops.apply_expand(info, expand))

    return json_response(await run_in_threadpool(build))


def _info_payload(app: HubContext, meta: RepoMeta, commit: Commit) -> dict[str, Any]:
    card_data = app._cards.get(commit)  # bounded YAML, parsed once per README
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
        "gated": repo_ops.gated(app.store, meta),
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


async def storage_listing(app: HubContext, request: Request, namespace: str | None) -> Response:
    """``GET /api/[organizations/{ns}/]settings/repositories``: the bytes each repo of a namespace holds."""
    user = app._user(request)
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to list your repos' storage")
    namespace = namespace or user.name
    if not app.directory.is_member(user.name, namespace):
        raise HubHTTPError(403, f"Only members of {namespace!r} can list its repos' storage")
    return JSONResponse(await run_in_threadpool(repo_ops.storage_listing, app.store, namespace))


async def auth_check(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}/auth-check[/write]``: 200 when the caller may read (or write) the repo."""
    if rest == ["write"]:
        app._repo_for_write(request, repo_type, repo_id)
    else:
        app._repo_for_read(request, repo_type, repo_id)
    return JSONResponse({})


async def xet_token(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}/xet-{read,write}-token``: always refused, with what to set instead."""
    app._repo_for_read(request, repo_type, repo_id)
    raise HubHTTPError(501, repo_ops.XET_MESSAGE, "XetNotSupported")
