"""What a batch does with each entry: skip it, or convert and push it.

An entry is skipped, without a commit, when its repo at its revision already holds the files the entry would
push (compared by content: the LFS sha256 or the git blob id the Hub lists) and a ``parity.json`` whose verdict
is ``pass``. ``parity.json`` and ``README.md`` are not compared byte for byte: the first holds the library
versions of the machine that ran parity, and an existing README is kept on purpose (``readme: keep``).

What the files would be is known exactly only after converting. The journal (one JSON line per verified
entry, written by the driver) saves that work on a re-run: an entry whose fingerprint (its fields and the
contents of its checkpoint and card) is in the journal, and whose repo still holds the journal's files at the
journal's commit or later, is skipped without converting. Everything else is converted, then compared.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubui.batching.manifest import BatchEntry

NOT_COMPARED = ("parity.json", "README.md")


@dataclass(frozen=True)
class FileDigest:
    """A file's content ids: sha256 (what the Hub lists for LFS files) and the git blob sha1 (regular files)."""

    sha256: str
    git_sha1: str
    size: int


@dataclass(frozen=True)
class HubState:
    """A repo at one revision, as the Hub lists it (no file is downloaded but ``parity.json``).

    Args:
        exists: Whether the repo and revision exist.
        head: The commit the revision points at.
        files: ``path -> (sha256 or None, git blob id, size)``.
        parity_verdict: The verdict of its ``parity.json``, or ``None``.
    """

    exists: bool
    head: str | None = None
    files: dict[str, tuple[str | None, str, int]] | None = None
    parity_verdict: str | None = None


def file_digest(path: Path) -> FileDigest:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    size = path.stat().st_size
    sha1.update(f"blob {size}\0".encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha256.update(block)
            sha1.update(block)
    return FileDigest(sha256.hexdigest(), sha1.hexdigest(), size)


def folder_digests(folder: Path, overrides: dict[str, bytes] | None = None) -> dict[str, dict[str, Any]]:
    """The compared files of an export folder as ``path -> {sha256, git_sha1, size}`` (what the journal holds).

    Args:
        folder: The exported folder.
        overrides: Files pushed with other content than the folder's (see :func:`hubui.export.hub_config_override`).
    """
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        # What a push sends: regular files, none hidden (``.hubui-export`` and the like never travel).
        if not path.is_file() or rel in NOT_COMPARED or any(part.startswith(".") for part in rel.split("/")):
            continue
        if overrides and rel in overrides:
            data = overrides[rel]
            sha1 = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            out[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "git_sha1": sha1, "size": len(data)}
        else:
            d = file_digest(path)
            out[rel] = {"sha256": d.sha256, "git_sha1": d.git_sha1, "size": d.size}
    return out


def hub_state(repo_id: str, revision: str | None, token: str | None) -> HubState:
    """List the repo's files at ``revision`` (default main) with their content ids, and read its ``parity.json``.

    Raises:
        HfHubHTTPError, httpx2.TransportError: The Hub failed (the caller reports the entry as failed).
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    from hubui import auth

    api = HfApi(endpoint=auth.endpoint(), token=token)
    try:
        info = api.model_info(repo_id, revision=revision)
        entries = list(api.list_repo_tree(repo_id, revision=info.sha, recursive=True))
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return HubState(False)
    files: dict[str, tuple[str | None, str, int]] = {}
    for e in entries:
        if not isinstance(e, RepoFile):
            continue  # a folder
        files[e.path] = (e.lfs.sha256 if e.lfs is not None else None, e.blob_id, int(e.size))
    verdict = None
    if "parity.json" in files:
        try:
            path = hf_hub_download(repo_id, "parity.json", revision=info.sha, token=token, endpoint=auth.endpoint())
            verdict = json.loads(Path(path).read_text(encoding="utf-8")).get("verdict")
        except (EntryNotFoundError, OSError, ValueError, AttributeError):
            verdict = None
    return HubState(True, info.sha, files, verdict)


def _header(data: bytes) -> tuple[int, Any]:
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8 : 8 + n])


def _remote_bytes(repo_id: str, revision: str, path: str, start: int, end: int, token: str | None) -> bytes:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    from hubui import auth

    url = hf_hub_url(repo_id, path, revision=revision, endpoint=auth.endpoint())
    headers = {**build_hf_headers(token=token), "Range": f"bytes={start}-{end - 1}"}
    response = get_session().get(url, headers=headers, follow_redirects=True)
    response.raise_for_status()
    return response.content[: end - start]


def adopt_hub_headers(
    expected: dict[str, dict[str, Any]], folder: Path, state: HubState, repo_id: str, token: str | None
) -> dict[str, dict[str, Any]]:
    """``expected`` with each safetensors file that holds the same tensors as the Hub's given the Hub's ids.

    safetensors writes its metadata mapping in no fixed order, so two exports of the same weights can differ in
    the order of a few header keys and in nothing else. For such a file only the header is downloaded (a range
    request): when it parses to the same header as ours, the Hub's file must be its header followed by our
    tensor bytes, and that is checked exactly: its sha256 must be the Hub's LFS sha256.
    """
    out = dict(expected)
    for path, want in expected.items():
        have = (state.files or {}).get(path)
        if not path.endswith(".safetensors") or have is None or have[0] in (None, want["sha256"]):
            continue
        if have[2] != want["size"] or state.head is None:
            continue
        ours = (folder / path).read_bytes()
        n, header = _header(ours)
        try:
            theirs = _remote_bytes(repo_id, state.head, path, 0, 8 + n, token)
        except Exception:  # no range reads: the file simply counts as different
            continue
        if len(theirs) != 8 + n or _header(theirs) != (n, header):
            continue
        if hashlib.sha256(theirs + ours[8 + n :]).hexdigest() == have[0]:
            out[path] = {"sha256": have[0], "git_sha1": have[1], "size": have[2]}
    return out


def differences(expected: dict[str, dict[str, Any]], state: HubState) -> list[str]:
    """Why ``state`` does not already hold ``expected`` with a passing parity (empty: it does)."""
    if not state.exists:
        return ["the repo or revision does not exist"]
    out = []
    files = state.files or {}
    for path, want in expected.items():
        have = files.get(path)
        if have is None:
            out.append(f"{path} is missing")
        elif (have[0] or None) != want["sha256"] and have[1] != want["git_sha1"]:
            out.append(f"{path} differs")
    if state.parity_verdict != "pass":
        out.append(f"its parity.json verdict is {state.parity_verdict!r}, not 'pass'")
    return out


class Journal:
    """The driver's record of verified entries: one JSON object a line, appended under a lock.

    A line holds the entry's ``fingerprint``, ``repo_id``, ``revision`` (the PR ref for a pull request), the
    ``commit`` and the compared ``files``. The last line per fingerprint wins.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def records(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                record = json.loads(line)
                out[record["fingerprint"]] = record
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
        return out

    def add(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(json.dumps(record, sort_keys=True) + "\n")
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def default_journal(manifest_path: Path | None) -> Path:
    """``.<manifest name>.hubui-batch.jsonl`` beside the manifest (the working folder without one)."""
    if manifest_path is None:
        return Path(".hubui-batch.jsonl").resolve()
    return manifest_path.resolve().with_name(f".{manifest_path.name}.hubui-batch.jsonl")


def record_revision(entry: BatchEntry, record: dict[str, Any] | None) -> str | None:
    """The revision to look at for ``entry``: its branch, or for a pull request the PR ref the journal holds."""
    if entry.create_pr:
        return record.get("revision") if record else None
    return entry.revision


def dry_plan(entry: BatchEntry, record: dict[str, Any] | None, token: str | None) -> tuple[str, str]:
    """``(action, reason)`` for ``--dry-run``, from the journal and the Hub's listing only (nothing converted).

    ``action`` is ``skip``, ``convert + push`` or ``convert, then push or skip``.
    """
    base = hub_state(entry.repo_id, entry.revision, token)
    if record is not None:
        state = hub_state(entry.repo_id, record_revision(entry, record), token) if entry.create_pr else base
        if not differences(record["files"], state):
            return "skip", f"the repo holds the journal's files at {(state.head or '')[:10]} with parity pass"
    if not base.exists:
        return "convert + push", "the repo or revision does not exist yet"
    return "convert, then push or skip", "the repo exists; the export is compared with it after converting"
