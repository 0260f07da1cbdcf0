"""Repo-level calls of the local Hub beyond create and delete: rename/transfer (``move_repo``), listing
(``list_models(author=...)``), the ``gated`` setting, and the answer to Xet token requests.

``gated`` is stored and reported, not enforced: the local Hub has no access requests (out of scope), so a
gated repo is readable like any other repo of its visibility.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hubui.localhub.httperrors import HubHTTPError
from hubui.localhub.storage import NAME_RE, REPO_TYPES, RepoMeta, StorageError, Store, _read_json, _write_atomic

GATED_VALUES = (False, "auto", "manual")
SETTINGS_FILE = "settings.json"
XET_MESSAGE = (
    "The local Hub does not speak Xet; it stores files through Git LFS. Set HF_HUB_DISABLE_XET=1 in the "
    "environment before huggingface_hub is imported (or uninstall hf_xet), then retry."
)


def _settings_path(store: Store, meta: RepoMeta) -> Path:
    return store._repo_dir(meta.repo_type, meta.repo_id) / SETTINGS_FILE


def gated(store: Store, meta: RepoMeta) -> str | bool:
    """The repo's ``gated`` setting: ``False``, ``"auto"`` or ``"manual"``."""
    path = _settings_path(store, meta)
    return _read_json(path).get("gated", False) if path.is_file() else False


def set_gated(store: Store, meta: RepoMeta, value: object) -> None:
    """Store ``gated``.

    Raises:
        StorageError: 400 for another value.
    """
    if value not in GATED_VALUES or value is True:
        raise StorageError(400, f"Invalid gated value {value!r}: use false, 'auto' or 'manual'")
    with store._lock(meta.repo_type, meta.repo_id):
        path = _settings_path(store, meta)
        data = _read_json(path) if path.is_file() else {}
        data["gated"] = value
        _write_atomic(path, json.dumps(data).encode())


def move_repo(store: Store, repo_type: str, from_id: str, to_id: str) -> RepoMeta:
    """Rename or transfer ``from_id`` to ``to_id`` (commits, refs, discussions and settings move along).

    Raises:
        StorageError: 400 for a bad type or name, 404 ``RepoNotFound``, 409 when the target exists.
    """
    if repo_type not in REPO_TYPES:
        raise StorageError(400, f"Invalid repo type {repo_type!r}")
    meta = store.get_repo(repo_type, from_id)
    if meta is None:
        raise StorageError(404, f"Repository not found: {from_id}", "RepoNotFound")
    if to_id.count("/") != 1 or not all(NAME_RE.match(p) and not p.endswith((".git", ".")) for p in to_id.split("/")):
        raise StorageError(400, f"Invalid repo id {to_id!r}: use 'namespace/name'")
    with contextlib.ExitStack() as stack:
        for key in sorted({from_id.lower(), to_id.lower()}):  # one order for every caller: no deadlock
            stack.enter_context(store._lock(repo_type, key))
        if store.get_repo(repo_type, to_id) is not None and to_id.lower() != from_id.lower():
            raise StorageError(409, f"A {repo_type} repository called {to_id} already exists")
        src, dest = store._repo_dir(repo_type, from_id), store._repo_dir(repo_type, to_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        namespace, name = to_id.split("/")
        new = replace(meta, namespace=namespace, name=name)
        _write_atomic(dest / "repo.json", json.dumps(asdict(new)).encode())
        # The old id keeps answering reads, as on the Hub, until a repo of that name is created again.
        redirects = _redirects(store, repo_type)
        redirects = {k: v for k, v in redirects.items() if k != to_id.lower()}
        redirects.update({k: to_id for k, v in redirects.items() if v.lower() == from_id.lower()})
        redirects[from_id.lower()] = to_id
        _write_atomic(_redirects_path(store, repo_type), json.dumps(redirects).encode())
    return new


def _redirects_path(store: Store, repo_type: str) -> Path:
    return store.root / "repos" / repo_type / "redirects.json"


def _redirects(store: Store, repo_type: str) -> dict[str, str]:
    path = _redirects_path(store, repo_type)
    return _read_json(path) if path.is_file() else {}


def renamed_to(store: Store, repo_type: str, repo_id: str) -> RepoMeta | None:
    """The repo ``repo_id`` was moved to, for reads of the old id (``None`` when it was not moved)."""
    target = _redirects(store, repo_type).get(repo_id.lower())
    return store.get_repo(repo_type, target) if target else None


SPACE_README = "---\ntitle: {name}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: green\nsdk: {sdk}\npinned: false\n---\n"


def add_space_readme(store: Store, meta: RepoMeta, author: str) -> None:
    """The README.md the Hub writes into a new Space (its YAML says the SDK); the creator usually replaces it."""
    from hubui.localhub.storage import AddFile

    text = SPACE_README.format(name=meta.name, sdk=meta.sdk or "static")
    entry = store.put_bytes(text.encode())
    store.commit(meta, "main", [AddFile("README.md", entry)], author=author, summary="initial README")


def listing(store: Store, repo_type: str, visible: Any, params: Any) -> list[dict[str, Any]]:
    """``GET /api/{type}s``: the repos ``visible(meta)`` lets the caller see, filtered by ``author`` and
    ``search`` (a substring of the id), at most ``limit``.

    Raises:
        StorageError: 400 for a filter the local Hub does not implement (rather than ignoring it).
    """
    unsupported = sorted(k for k in params if k not in ("author", "search", "limit", "sort", "direction", "full"))
    if unsupported:
        raise StorageError(400, f"The local Hub cannot filter repo lists by: {', '.join(unsupported)}")
    author, search = params.get("author"), (params.get("search") or "").lower()
    out = []
    for meta in store.list_repos():
        if meta.repo_type != repo_type or not visible(meta):
            continue
        if author and meta.namespace != author:
            continue
        if search and search not in meta.repo_id.lower():
            continue
        item: dict[str, Any] = {
            "_id": meta.repo_id,
            "id": meta.repo_id,
            "author": meta.namespace,
            "private": meta.private,
            "createdAt": meta.created_at,
            "gated": gated(store, meta),
            "downloads": 0,
            "likes": 0,
            "tags": [],
        }
        if repo_type == "model":
            item["modelId"] = meta.repo_id
        out.append(item)
    out.sort(key=lambda i: i["createdAt"], reverse=True)
    try:
        limit = int(params["limit"]) if params.get("limit") else None
    except ValueError as exc:
        raise StorageError(400, f"Invalid limit {params.get('limit')!r}") from exc
    return out[:limit] if limit is not None else out


async def handle_move(app: Any, request: Any) -> Any:
    """``POST /api/repos/move`` ``{fromRepo, toRepo, type}``: the caller must be able to write to both
    namespaces."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    user = app._user(request)
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to move a repo")
    body = await app._json_body(request)
    repo_type, from_id, to_id = str(body.get("type") or "model"), str(body.get("fromRepo")), str(body.get("toRepo"))
    app._repo_for_write(request, repo_type, from_id)
    namespace = to_id.split("/", 1)[0]
    if not app.directory.namespace_exists(namespace):
        raise HubHTTPError(404, f"Namespace not found: {namespace!r}")
    app._check_can_write(user, namespace)
    await run_in_threadpool(move_repo, app.store, repo_type, from_id, to_id)
    return JSONResponse({})


def lfs_size(store: Store, value: dict[str, Any]) -> int:
    """The size of an ``lfsFile`` commit line: its own, or, for a copy (the client sends none), the stored
    object's.

    Raises:
        KeyError: When there is no size and no such object (the caller answers 400).
    """
    if value.get("size") is not None:
        return int(value["size"])
    path = store.object_path(str(value["oid"]))
    if not (len(str(value["oid"])) == 64 and path.is_file()):
        raise KeyError("size")
    return path.stat().st_size


def find_ignoring_case(store: Store, repo_type: str, repo_id: str) -> RepoMeta | None:
    """The repo whose id equals ``repo_id`` but for case (the Hub's ids are case-insensitive), or ``None``."""
    if repo_id.count("/") != 1:
        return None
    wanted = repo_id.lower()
    return next((m for m in store.list_repos() if m.repo_type == repo_type and m.repo_id.lower() == wanted), None)


def apply_expand(info: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    """Repo info limited to the ``expand`` properties asked for, as the Hub answers ``?expand=...``.

    Raises:
        StorageError: 400 naming the properties the local Hub does not compute (never a silent omission).
    """
    if not expand:
        return info
    missing = sorted({e for e in expand if e not in info})
    if missing:
        raise StorageError(400, f"The local Hub cannot expand: {', '.join(missing)}; it has {', '.join(sorted(info))}")
    return {"_id": info.get("_id"), "id": info["id"], **{e: info[e] for e in expand}}


def storage_listing(store: Store, namespace: str) -> list[dict[str, Any]]:
    """``GET /api/settings/repositories`` (``hf repos ls``): every repo of ``namespace`` with the bytes its
    main branch holds and its share of the namespace's total."""
    rows: list[dict[str, Any]] = []
    for meta in store.list_repos():
        if meta.namespace != namespace:
            continue
        try:
            head = store.resolve(meta, "main")
        except StorageError:
            continue
        size = sum(e.size for e in head.files.values())
        visibility = "private" if meta.private else "public"
        rows.append(
            {
                "id": meta.repo_id,
                "type": meta.repo_type,
                "updatedAt": head.date,
                "visibility": visibility,
                "storage": size,
            }
        )
    total = sum(r["storage"] for r in rows) or 1
    for r in rows:
        r["storagePercent"] = round(100 * r["storage"] / total, 2)
    return sorted(rows, key=lambda r: r["updatedAt"], reverse=True)


def formatted_commit(item: dict[str, Any]) -> dict[str, Any]:
    """A commit entry with ``formatted`` (``expand[]=formatted``): title and message as HTML, escaped, as the
    Hub renders them (no Markdown rendering here: plain paragraphs)."""
    import html

    paragraphs = [p for p in str(item["message"]).split("\n\n") if p.strip()]
    message = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return {**item, "formatted": {"title": html.escape(str(item["title"])), "message": message}}
