"""What the local Hub's store keeps, as frozen records, and the rules for names.

The records: a repo's settings (:class:`RepoMeta`), a commit and its file table (:class:`Commit`,
:class:`FileEntry`), the operations a commit applies (:class:`AddFile`, :class:`AddLfsFile`, :class:`Delete`) and a
discussion (:class:`Discussion`). The rules: which repo and branch names are valid, which files go through LFS, and
the ids git gives a blob. Nothing here touches the disk; :mod:`hubui.localhub.storage` does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from hubui.localhub.storage_errors import StorageError

REPO_TYPES = ("model", "dataset", "space")
# \Z, not $: "$" also matches before a trailing newline ("name\n" made a folder with a newline in its name).
# Anchored at both ends, so .match and .fullmatch agree.
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\Z")
SHA1_RE = re.compile(r"\A[0-9a-f]{40}\Z")
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
MAX_REGULAR_FILE = 64 * 1024 * 1024

# The patterns the Hub puts in a new repo's .gitattributes: such files always go through LFS.
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite",
    "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
)  # fmt: skip
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a blob: sha1 over ``blob <size>\\0`` plus the bytes."""
    h = hashlib.sha1(f"blob {len(data)}\0".encode())
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """Whether a file goes through LFS: by .gitattributes pattern, by size, or because it is binary."""
    name = path.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(name, p) for p in LFS_PATTERNS):
        return True
    return size >= LFS_SIZE_THRESHOLD or b"\0" in sample


def check_branch_name(name: str) -> str:
    """Validate a branch name as git does (the parts that matter for a Hub)."""
    bad = (
        not name
        or name.startswith(("/", "-", "refs/"))
        or name.endswith(("/", ".", ".lock"))
        or ".." in name
        or "//" in name
        or "@{" in name
        or len(name) > 200
        or any(c.isspace() or c in "~^:?*[\\" or ord(c) < 32 for c in name)
    )
    if bad:
        raise StorageError(400, f"Invalid branch name: {name!r}")
    return name


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit."""

    size: int
    sha256: str
    blob_id: str
    lfs: bool

    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))


@dataclass(frozen=True)
class Commit:
    """An immutable commit: its parents, author, message and whole file table."""

    id: str
    parents: tuple[str, ...]
    author: str
    summary: str
    description: str
    date: str
    files: dict[str, FileEntry] = field(hash=False)

    @property
    def message(self) -> str:
        return self.summary + ("\n\n" + self.description if self.description else "")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["parents"] = list(self.parents)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Commit:
        files = {p: FileEntry(**e) for p, e in data["files"].items()}
        return cls(
            id=data["id"],
            parents=tuple(data["parents"]),
            author=data["author"],
            summary=data["summary"],
            description=data["description"],
            date=data["date"],
            files=files,
        )


@dataclass(frozen=True)
class RepoMeta:
    """A repo's settings."""

    repo_type: str
    namespace: str
    name: str
    private: bool
    created_at: str
    sdk: str | None = None

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class AddFile:
    path: str
    entry: FileEntry


@dataclass(frozen=True)
class AddLfsFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Delete:
    path: str
    folder: bool


Operation = AddFile | AddLfsFile | Delete


@dataclass(frozen=True)
class Discussion:
    num: int
    title: str
    description: str
    author: str
    is_pull_request: bool
    status: str
    created_at: str
    base: str | None = None
