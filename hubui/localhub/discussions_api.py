"""HTTP side of discussions, pull requests and tags, and who may do what.

Who may do what, as on the Hub:
- anyone who can read a repo may read its discussions;
- any user with a write token may open a discussion or a pull request on a repo they can read, comment,
  and push to a pull request they opened; members of the repo's namespace may do all of it anywhere;
- the author of a discussion, or a member, may rename, close and reopen it;
- only members merge pull requests and create or delete tags.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubui.localhub.context import HubContext
from hubui.localhub.discussions import DiscussionBook
from hubui.localhub.httperrors import HubHTTPError
from hubui.localhub.storage import Discussion, RepoMeta
from hubui.localhub.tags import create_tag, delete_tag
from hubui.localhub.users import User

PAGE_SIZE = 50


def _http_error(status: int, message: str, code: str | None = None) -> Exception:
    return HubHTTPError(status, message, code)


def contributor(app: HubContext, request: Request, repo_type: str, repo_id: str) -> tuple[RepoMeta, User]:
    """A repo the caller can read, and the caller, who must hold a write token (member or not).

    Raises:
        HubHTTPError: 404 for a repo they cannot see, 401 without a token, 403 with a read token.
    """
    meta, user = app._repo_for_read(request, repo_type, repo_id)
    if user is None:
        raise _http_error(401, "You must be authenticated to take part in discussions")
    if not user.can_write:
        raise _http_error(403, "You have read access only: this token's role is 'read'")
    return meta, user


def is_member(app: HubContext, user: User, meta: RepoMeta) -> bool:
    return app.directory.is_member(user.name, meta.namespace)


def repo_for_commit(
    app: HubContext, request: Request, repo_type: str, repo_id: str, revision: str, create_pr: bool
) -> tuple[RepoMeta, User]:
    """Access check for preupload and commit: members write anywhere; others only open a pull request or
    push to an open pull request of their own.

    Raises:
        HubHTTPError: 401/403/404 as :func:`contributor`, 403 for a non-member writing to a branch.
    """
    meta, user = contributor(app, request, repo_type, repo_id)
    if is_member(app, user, meta) or create_pr:
        return meta, user
    if revision.startswith("refs/pr/") and revision[len("refs/pr/") :].isdigit():
        d = _find(app, meta, int(revision[len("refs/pr/") :]))
        if d is not None and d.author == user.name and d.status == "open":
            return meta, user
    raise _http_error(
        403,
        f"You don't have the rights to write to {meta.repo_id}: open a pull request instead (create_pr=True)",
    )


def _find(app: HubContext, meta: RepoMeta, num: int) -> Discussion | None:
    return next((d for d in app.store.discussions(meta) if d.num == num), None)


def _book(app: HubContext) -> DiscussionBook:
    return DiscussionBook(app.store)


def discussion_json(app: HubContext, meta: RepoMeta, d: Discussion) -> dict[str, Any]:
    return {
        "num": d.num,
        "title": d.title,
        "status": d.status,
        "isPullRequest": d.is_pull_request,
        "createdAt": d.created_at,
        "author": {"name": d.author, "type": "user"},
        "repo": {"name": meta.repo_id, "type": meta.repo_type},
        "pinned": False,
        "numComments": _book(app).num_comments(meta, d),
        "topReactions": [],
    }


async def handle(
    app: HubContext, request: Request, method: str, repo_type: str, repo_id: str, rest: list[str]
) -> Response:
    """``/api/{type}s/{ns}/{name}/discussions[/...]``."""
    if method == "GET":
        meta, _ = app._repo_for_read(request, repo_type, repo_id)
        if not rest:
            return _listing(app, request, meta)
        if len(rest) == 1:
            return JSONResponse(await run_in_threadpool(_details, app, request, meta, _num(rest[0])))
        raise _http_error(404, f"Unknown discussion route: {'/'.join(rest)}")
    if method != "POST":
        raise _http_error(405, "Method not allowed")
    if not rest:
        return await _create(app, request, repo_type, repo_id)
    meta, user = contributor(app, request, repo_type, repo_id)
    num = _num(rest[0])
    d = _find(app, meta, num)
    if d is None:
        raise _http_error(404, f"Discussion #{num} not found in {meta.repo_id}")
    body = await app._json_body(request)  # capped; {} when empty
    action = rest[1:]
    book = _book(app)
    moderator = is_member(app, user, meta) or d.author == user.name
    if action == ["comment"]:
        event = await run_in_threadpool(book.comment, meta, num, user.name, str(body.get("comment") or ""))
        return JSONResponse({"newMessage": event})
    if action in (["title"], ["status"]) and not moderator:
        raise _http_error(403, f"Only the author of #{num} or a member of {meta.namespace!r} can change it")
    if action == ["title"]:
        event = await run_in_threadpool(book.rename, meta, num, user.name, str(body.get("title") or ""))
        return JSONResponse({"newTitle": event})
    if action == ["status"]:
        status, comment = str(body.get("status") or ""), str(body.get("comment") or "")
        event = await run_in_threadpool(book.set_status, meta, num, user.name, status, comment)
        return JSONResponse({"newStatus": event})
    if action == ["merge"]:
        if not is_member(app, user, meta):
            raise _http_error(403, f"Only members of {meta.namespace!r} can merge pull requests of {meta.repo_id}")
        await run_in_threadpool(book.merge, meta, num, user.name, str(body.get("comment") or ""))
        return JSONResponse({})
    if len(action) == 3 and action[0] == "comment" and action[2] in ("edit", "hide"):
        comment_id = action[1]
        event = book.find_comment(meta, num, comment_id)
        if action[2] == "edit" and event["author"]["name"] != user.name:
            raise _http_error(403, "Only the author of a comment can edit it")
        if action[2] == "hide" and not (is_member(app, user, meta) or event["author"]["name"] == user.name):
            raise _http_error(403, "Only the comment's author or a member can hide it")
        text = str(body.get("content") or "") if action[2] == "edit" else None
        updated = await run_in_threadpool(
            lambda: book.update_comment(meta, num, comment_id, user.name, text=text, hide=action[2] == "hide")
        )
        return JSONResponse({"updatedComment": updated})
    raise _http_error(404, f"Unknown discussion route: {'/'.join(rest)}")


def _num(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise _http_error(404, f"Discussion #{text} not found")
    return int(text)


async def _create(app: HubContext, request: Request, repo_type: str, repo_id: str) -> Response:
    meta, user = contributor(app, request, repo_type, repo_id)
    body = await app._json_body(request)
    title = str(body.get("title") or "").strip()
    if not title or len(title) > 200:
        raise _http_error(400, "A discussion needs a title of 1 to 200 characters")
    num = await run_in_threadpool(
        app.store.create_discussion,
        meta,
        title,
        str(body.get("description") or ""),
        user.name,
        bool(body.get("pullRequest")),
    )
    return JSONResponse({"num": num, "url": f"{app._repo_url(request, meta)}/discussions/{num}"})


def _listing(app: HubContext, request: Request, meta: RepoMeta) -> Response:
    q = request.query_params
    kind, status, author = q.get("type") or "all", q.get("status") or "all", q.get("author")
    if kind not in ("all", "discussion", "pull_request") or status not in ("all", "open", "closed"):
        raise _http_error(400, f"Invalid discussion filter type={kind!r} status={status!r}")
    items = list(reversed(app.store.discussions(meta)))
    if kind != "all":
        items = [d for d in items if d.is_pull_request == (kind == "pull_request")]
    if status == "open":
        items = [d for d in items if d.status in ("open", "draft")]
    elif status == "closed":
        items = [d for d in items if d.status in ("closed", "merged")]
    if author:
        items = [d for d in items if d.author == author]
    try:
        page = max(0, int(q.get("p") or 0))
    except ValueError as exc:
        raise _http_error(400, f"Invalid page {q.get('p')!r}") from exc
    start = page * PAGE_SIZE
    shown = [discussion_json(app, meta, d) for d in items[start : start + PAGE_SIZE]]
    closed = sum(1 for d in app.store.discussions(meta) if d.status in ("closed", "merged"))
    return JSONResponse({"discussions": shown, "count": len(items), "start": start, "numClosedDiscussions": closed})


def _details(app: HubContext, request: Request, meta: RepoMeta, num: int) -> dict[str, Any]:
    d = _find(app, meta, num)
    if d is None:
        raise _http_error(404, f"Discussion #{num} not found in {meta.repo_id}")
    book = _book(app)
    data = discussion_json(app, meta, d)
    data.update({"events": book.events(meta, d), "filesWithConflicts": []})
    if d.is_pull_request:
        changes: dict[str, Any] = {"base": f"refs/heads/{d.base or 'main'}"}
        merged = book.merge_commit_id(meta, num)
        if merged:
            changes["mergeCommitId"] = merged
        data["changes"] = changes
        data["targetCommit"] = app.store.refs(meta)["prs"].get(str(num))
        data["diffUrl"] = f"{app._repo_url(request, meta)}/discussions/{num}/files"
        if request.query_params.get("diff") in ("1", "true"):
            data["diff"] = book.diff(meta, d)
    return data


async def handle_tag(
    app: HubContext, request: Request, method: str, repo_type: str, repo_id: str, rest: list[str]
) -> Response:
    """``POST /api/{type}s/{id}/tag/{revision}`` ``{tag, message?}`` and ``DELETE .../tag/{tag}``."""
    if not rest:
        raise _http_error(404, "A tag route needs a revision or a tag name")
    meta, _ = app._repo_for_write(request, repo_type, repo_id)
    name = "/".join(rest)
    if method == "POST":
        body = await app._json_body(request)
        await run_in_threadpool(create_tag, app.store, meta, str(body.get("tag") or ""), name)
    else:
        await run_in_threadpool(delete_tag, app.store, meta, name)
    return JSONResponse({})
