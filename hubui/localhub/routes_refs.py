"""Local Hub routes for refs and history: the ``commits`` list, ``refs`` (branches, tags, pull requests), and
creating and deleting branches. (Tags are in :mod:`hubui.localhub.discussions_api`, with the rights of members.)

Each handler takes the app (:class:`~hubui.localhub.context.HubContext`) and the request; the server routes to them.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubui.localhub import repo_ops
from hubui.localhub.context import HubContext, truthy
from hubui.localhub.httperrors import HubHTTPError
from hubui.localhub.storage import Commit


async def list_commits(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}/commits/{rev}``: first-parent history, newest first."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    wanted = request.query_params.getlist("expand[]") + request.query_params.getlist("expand")
    if set(wanted) - {"formatted"}:
        raise HubHTTPError(400, f"The local Hub cannot expand commits with: {sorted(set(wanted) - {'formatted'})}")
    history = app.store.history(meta, "/".join(rest) or "main")
    return JSONResponse([repo_ops.formatted_commit(_commit_json(c)) if wanted else _commit_json(c) for c in history])


async def list_refs(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``GET /api/{type}s/{id}/refs``: branches, tags and (with ``include_prs``) pull request refs."""
    meta, _ = app._repo_for_read(request, repo_type, repo_id)
    refs = app.store.refs(meta)
    body: dict[str, Any] = {
        "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in refs["heads"].items()],
        "converts": [],
        "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in refs.get("tags", {}).items()],
    }
    if truthy(request.query_params.get("include_prs")):
        body["pullRequests"] = [
            {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c} for n, c in refs["prs"].items()
        ]
    return JSONResponse(body)


async def create_branch(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``POST /api/{type}s/{id}/branch/{name}``: a new branch at ``startingPoint`` (default main)."""
    meta, _ = app._repo_for_write(request, repo_type, repo_id)
    body = await app._json_body(request)
    start = body.get("startingPoint")
    if start is not None and not isinstance(start, str):
        raise HubHTTPError(400, f'"startingPoint" must be a branch or commit id, not {type(start).__name__}')
    await run_in_threadpool(app.store.create_branch, meta, "/".join(rest), start)
    return JSONResponse({})


async def delete_branch(app: HubContext, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``DELETE /api/{type}s/{id}/branch/{name}``: delete a branch other than main."""
    meta, _ = app._repo_for_write(request, repo_type, repo_id)
    await run_in_threadpool(app.store.delete_branch, meta, "/".join(rest))
    return JSONResponse({})


def _commit_json(c: Commit) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.summary,
        "message": c.message,
        "authors": [{"user": c.author}],
        "date": c.date,
        "parents": list(c.parents),
    }
