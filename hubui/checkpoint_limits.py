"""How much memory a checkpoint would take to load, known before it is loaded, and the limits hubui sets on it.

torch's checkpoint format is a zip. ``torch.save`` stores its entries uncompressed, but ``torch.load`` reads
deflated entries as well, so a 1 MB file can declare gigabytes of zeros that ``torch.load`` then allocates (a zip
bomb). The zip's central directory declares every entry's uncompressed size, and torch's reader extracts an
entry into a buffer of exactly that size, so their sum bounds what loading allocates. A legacy (non-zip) pickle
holds its tensors' bytes in the file itself, so its file size is the bound; so is a ``.safetensors`` file's.

Before a checkpoint is read, :func:`check_checkpoint_size` refuses it (a :class:`~hubui.errors.CheckpointError`
naming the file by its base name, never its folder, and the numbers) when what it would take to load is

* more than :data:`MAX_EXPANSION` times its size on disk (a zip that large is a bomb, or was re-compressed),
* more than the absolute cap (:data:`DEFAULT_MAX_BYTES`, or ``HUBUI_MAX_CHECKPOINT_BYTES``),
* more than the memory available now (``MemAvailable`` in ``/proc/meminfo``, where there is one), or
* more than :data:`ARCHITECTURE_MULTIPLE` times the architecture's fp32 weights, when they are known (a
  training checkpoint with optimizer state and EMA weights is about 4 times).

Checkpoints that take less than :data:`SMALL_BYTES` are never refused by the expansion and architecture rules,
so small test files and tiny models keep loading whatever they hold.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hubui.errors import CheckpointError, InvalidInputError

MAX_BYTES_ENV = "HUBUI_MAX_CHECKPOINT_BYTES"
DEFAULT_MAX_BYTES = 64 * 2**30
MAX_EXPANSION = 10
ARCHITECTURE_MULTIPLE = 6
SMALL_BYTES = 64 * 2**20
MEMINFO = Path("/proc/meminfo")

ExpectedBytes = int | Callable[[], int | None] | None
"""The architecture's fp32 weight bytes, a callable giving them (called only when they matter), or ``None``."""


@dataclass(frozen=True)
class CheckpointSize:
    """What a checkpoint takes on disk and, at most, in memory once loaded.

    Args:
        name: The file's base name (what messages show).
        file_bytes: Its size on disk.
        load_bytes: What loading it allocates at most: the zip's declared uncompressed sizes, else ``file_bytes``.
        is_zip: Whether it is a zip (torch's format since 1.6).
    """

    name: str
    file_bytes: int
    load_bytes: int
    is_zip: bool


def _size(n: float) -> str:
    """``1.5 GiB``, ``200.0 MiB``, ``12 KiB``: the unit people read."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def max_checkpoint_bytes() -> int:
    """The absolute cap: ``HUBUI_MAX_CHECKPOINT_BYTES`` when set, else :data:`DEFAULT_MAX_BYTES`.

    Raises:
        InvalidInputError: The variable is not a positive integer.
    """
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInputError(
            f"{MAX_BYTES_ENV}={text!r} is not a positive number of bytes.", hint=f"Unset it or set e.g. {2**34}."
        )
    return value


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (``MemAvailable``), or ``None`` where it is unknown."""
    try:
        for line in MEMINFO.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def measure(file: Path) -> CheckpointSize:
    """Read what ``file`` would take to load from its zip directory (nothing is decompressed).

    Raises:
        CheckpointError: The file looks like a zip but its directory cannot be read.
    """
    file_bytes = file.stat().st_size
    if not zipfile.is_zipfile(file):
        return CheckpointSize(file.name, file_bytes, file_bytes, False)
    try:
        with zipfile.ZipFile(file) as archive:
            load_bytes = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Cannot read checkpoint '{file.name}': its zip directory is corrupt ({exc}).",
            hint="The file is corrupt or truncated; copy or export it again.",
        ) from exc
    return CheckpointSize(file.name, file_bytes, load_bytes, True)


def check_checkpoint_size(file: Path, expected_bytes: ExpectedBytes = None, architecture: str = "") -> CheckpointSize:
    """Refuse a checkpoint that would take more memory to load than hubui allows (see the module docstring).

    Args:
        file: The checkpoint (a zip or legacy pickle ``.pth``..., or ``.safetensors``).
        expected_bytes: The architecture's fp32 weight bytes, or a callable returning them (or ``None``).
        architecture: The architecture's name, for the message.

    Returns:
        The sizes measured.

    Raises:
        CheckpointError: Over a limit; the message names the file by its base name and gives the numbers.
        InvalidInputError: ``HUBUI_MAX_CHECKPOINT_BYTES`` is malformed.
    """
    size = measure(file)
    need, name = size.load_bytes, size.name
    loads = f"Checkpoint '{name}' would take {_size(need)} of memory to load"
    if size.is_zip and need > SMALL_BYTES and need > MAX_EXPANSION * size.file_bytes:
        raise CheckpointError(
            f"{loads}, {need / max(size.file_bytes, 1):.0f} times its {_size(size.file_bytes)} on disk: its zip "
            f"entries are compressed (at most {MAX_EXPANSION}x is accepted). A checkpoint like that is a zip bomb "
            "or was re-compressed; it was not loaded.",
            hint="torch.save writes uncompressed checkpoints: save the state dict again with torch.save, "
            "or as .safetensors.",
        )
    cap = max_checkpoint_bytes()
    if need > cap:
        raise CheckpointError(
            f"{loads}, more than hubui's limit of {_size(cap)}; it was not loaded.",
            hint=f"If the file is right, raise the limit with {MAX_BYTES_ENV}=<bytes>.",
        )
    available = available_memory()
    if available is not None and need > available:
        raise CheckpointError(
            f"{loads}, but only {_size(available)} is available on this machine; it was not loaded.",
            hint="Free some memory, or convert on a machine with more.",
        )
    if need > SMALL_BYTES and expected_bytes is not None:
        expected = expected_bytes() if callable(expected_bytes) else expected_bytes
        if expected and need > ARCHITECTURE_MULTIPLE * expected + SMALL_BYTES:
            what = f"{architecture}'s" if architecture else "the architecture's"
            raise CheckpointError(
                f"{loads}, {need / expected:.0f} times {what} weights ({_size(expected)} in fp32; at most "
                f"{ARCHITECTURE_MULTIPLE}x is accepted); it was not loaded.",
                hint="Check that the checkpoint is for this architecture, or save only model.state_dict().",
            )
    return size


__all__ = [
    "ARCHITECTURE_MULTIPLE",
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "MAX_EXPANSION",
    "SMALL_BYTES",
    "CheckpointSize",
    "available_memory",
    "check_checkpoint_size",
    "max_checkpoint_bytes",
    "measure",
]
