"""Local Hub routes that read a revision's files: ``resolve`` (download, with ranges), ``tree`` and ``paths-info``.

Each handler takes the app (:class:`~hubui.localhub.context.HubContext`) and the request; the server routes to them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from hubui.localhub import limits, upload_rules
from hubui.localhub.context import HubContext, truthy
from hubui.localhub.files import content_headers, file_response
from hubui.localhub.httperrors import HubHTTPError, error_response
from hubui.localhub.payloads import json_bytes, json_response
from hubui.localhub.treeindex import file_json


async def resolve(app: HubContext, request: Request, repo_type: str, repo_id: str, rev: str, path: str) -> Response:
    """``GET|HEAD /{id}/resolve/{rev}/{path}``: a file's bytes (with ranges) and the headers the client reads."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    commit = app._resolve_rev(meta, rev)
    entry = commit.files.get(path)
    headers = {"X-Repo-Commit": commit.id, "Accept-Ranges": "bytes"}
    if entry is None:
        resp = error_response(404, f"Entry not found: {path}", "EntryNotFound")
        resp.headers.update(headers)
        return resp
    if entry.lfs:
        headers.update({"ETag": f'"{entry.sha256}"', "X-Linked-Etag": f'"{entry.sha256}"'})
        headers["X-Linked-Size"] = str(entry.size)
    else:
        headers["ETag"] = f'"{entry.blob_id}"'
    headers.update(content_headers(path))  # HTML, SVG and other active types as downloads, with nosniff
    return await file_response(request, app.store.object_path(entry.sha256), entry.size, headers)


async def tree(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}/tree/{rev}[/{path}]``: a folder's listing, optionally recursive and expanded."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    if not rest:
        raise HubHTTPError(404, "A tree request needs a revision")
    recursive = truthy(request.query_params.get("recursive"))
    expand = truthy(request.query_params.get("expand"))
    path = "/".join(rest[1:]).strip("/")

    def build() -> bytes:  # the index is built once per commit, in this worker thread, never on the loop
        commit = app._resolve_rev(meta, rest[0])
        if path and path in commit.files:
            raise HubHTTPError(404, f"{path!r} is a file, not a folder", "EntryNotFound")
        try:
            entries = app._trees.get(f"{meta.repo_type}/{meta.repo_id}", commit).listing(path, recursive)
        except KeyError:
            raise HubHTTPError(404, f"Folder not found: {path}", "EntryNotFound") from None
        if expand:
            entries = [dict(e) for e in entries]
            upload_rules.add_last_commits(app.store, meta, commit, entries)
        return json_bytes(entries)

    return json_response(await run_in_threadpool(build))


async def paths_info(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``POST /api/{type}s/{id}/paths-info/{rev}``: the entries of the paths asked for (missing ones left out)."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    paths, expand = await _paths_field(app, request)

    def build() -> bytes:
        commit = app._resolve_rev(meta, "/".join(rest) or "main")
        index = app._trees.get(f"{meta.repo_type}/{meta.repo_id}", commit)
        out: list[dict[str, Any]] = []
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(file_json(p, commit.files[p]))
            elif index.is_folder(p):
                out.append(index.entry(p))
        if expand:
            out = [dict(e) for e in out]
            upload_rules.add_last_commits(app.store, meta, commit, out)
        return json_bytes(out)

    return json_response(await run_in_threadpool(build))


async def _paths_field(app: HubContext, request: Request) -> tuple[list[str], bool]:
    """The ``paths`` and ``expand`` of a paths-info request, sent as JSON or as a form (huggingface_hub sends
    a form)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await app._json_body(request)
        paths: Any = body.get("paths") or []
        expand = body.get("expand") in (True, "true", "True", "1")
    else:
        raw = await limits.read_body(request, limits.MAX_JSON_BODY, "a paths-info request")
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise HubHTTPError(400, "The paths-info form is not UTF-8 text") from exc
        paths = form.get("paths", [])
        expand = truthy((form.get("expand") or [""])[0])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise HubHTTPError(400, '"paths" must be a list of paths in the repo')
    return paths, expand
