"""Before anything is written: will the conversion fit on the disk, in memory and on the Hub?

A conversion of a large model that runs out of disk half-way, or that the kernel kills during the rebuild, has
cost the user minutes (hours for the largest models) and says nothing useful. :func:`check_room` runs right after
the model is loaded and before the folder is written; it refuses, with the numbers, when

* the disk holding the output folder has less free space than the weights file(s) at the chosen precision (twice
  with the pickle), since the folder is staged beside ``out_dir`` on the same filesystem;
* the memory available (``MemAvailable``) is short of what the rebuild needs: the rebuilt model plus the loader's
  own copy of the weights, about twice the fp32 weights (:data:`REBUILD_FACTOR`), less the original, which the
  pipeline releases before the rebuild; a user who knows better (``MemAvailable`` leaves out page cache the kernel
  can drop) turns the check off;
* one file would be over the Hub's limit per file (:data:`HUB_FILE_LIMIT_BYTES`, 50 GB): the push would be
  refused after the upload. A format whose loader reads shards (``FolderFiles.index``) is written in shards of at
  most ``max_shard_size``; a one-file format (timm, open_clip) is refused with the precision that fits, unless the
  user says it will not be pushed. Over :data:`HUB_RECOMMENDED_BYTES` (20 GB) it is a warning.

:func:`check_push_sizes` is the same limit at push time, before anything is uploaded.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hubui.errors import ExportError, InvalidInputError

if TYPE_CHECKING:
    from hubui.libraries.base import FolderFiles
    from hubui.spec import LoadedModel

logger = logging.getLogger(__name__)

HUB_FILE_LIMIT_BYTES = 50 * 10**9
"""The Hub refuses a file over 50 GB."""

HUB_RECOMMENDED_BYTES = 20 * 10**9
"""The Hub recommends files of at most 20 GB: larger ones upload and download less reliably."""

DEFAULT_MAX_SHARD_SIZE = "5GB"
"""Shard size when none is given: transformers' and huggingface_hub's own default (``MAX_SHARD_SIZE``)."""

REBUILD_FACTOR = 2.0
"""Memory the rebuild needs, in fp32 weights: the rebuilt model plus the loader's own copy of the state dict."""

DISK_MARGIN_BYTES = 16 * 2**20
"""Room for the configs, the parity report and the card beside the weights."""

_HALF = ("fp16", "bf16")
_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


def human_size(n: int | float) -> str:
    """``"21.3 GB"``, ``"46.8 MB"``: the sizes people read in hubui's messages (decimal units, as the Hub's)."""
    if n >= 10**9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB"


def parse_shard_size(value: str | int | None) -> int:
    """The shard size in bytes.

    Args:
        value: Bytes, a size such as ``"5GB"``, ``"500MB"`` (decimal units, as transformers reads them), or None
            for :data:`DEFAULT_MAX_SHARD_SIZE`.

    Returns:
        Bytes, at least 1.

    Raises:
        InvalidInputError: Not a positive size.
    """
    from huggingface_hub.serialization._base import parse_size_to_int

    if value is None:
        value = DEFAULT_MAX_SHARD_SIZE
    try:
        size = value if isinstance(value, int) and not isinstance(value, bool) else parse_size_to_int(str(value))
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise InvalidInputError(
            f"Invalid shard size {value!r}",
            hint=f"Give a positive size such as {DEFAULT_MAX_SHARD_SIZE}, 500MB, or a number of bytes.",
        )
    return int(size)


def disk_free_bytes(path: Path) -> int:
    """Free bytes, for an unprivileged user, on the filesystem that holds ``path`` (its nearest existing folder)."""
    probe = Path(path).expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def mem_available_bytes() -> int:
    """The kernel's estimate of the memory that can be given to a process now (``MemAvailable``), in bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


@dataclass(frozen=True)
class Room:
    """What a conversion will write and hold.

    Args:
        fp32_bytes: The model's weights in fp32 (integer buffers at their own size).
        weights_bytes: The weights at the chosen precision: one copy, all shards together.
        disk_bytes: Free disk the export needs (weights, the pickle when asked, a margin).
        largest_file: The name of the largest file written (a shard, or the one weights file).
        largest_file_bytes: Its size.
        memory_bytes: Memory needed beyond what the process holds now (the rebuild, or the export's cast copy).
        shards: How many safetensors files the weights are written as.
    """

    fp32_bytes: int
    weights_bytes: int
    disk_bytes: int
    largest_file: str
    largest_file_bytes: int
    memory_bytes: int
    shards: int


def _tensor_sizes(loaded: LoadedModel, precision: str) -> tuple[dict[str, int], int]:
    """Name to bytes at ``precision`` (floating tensors cast, integer ones kept), and the fp32 total."""
    sizes: dict[str, int] = {}
    fp32 = 0
    for name, t in loaded.model.state_dict().items():
        if t.is_floating_point():
            sizes[name] = t.numel() * _BYTES[precision]
            fp32 += t.numel() * 4
        else:
            sizes[name] = t.numel() * t.element_size()
            fp32 += sizes[name]
    return sizes, fp32


def shard_plan(sizes: dict[str, int], max_shard_size: int) -> list[int]:
    """The sizes of the shards huggingface_hub's splitter makes of tensors of these sizes, in order."""
    from huggingface_hub import split_state_dict_into_shards_factory

    split = split_state_dict_into_shards_factory(
        sizes, get_storage_size=lambda n: n, filename_pattern="s{suffix}", max_shard_size=max_shard_size
    )
    return [sum(sizes[k] for k in names) for names in split.filename_to_tensors.values()]


def room_needed(
    loaded: LoadedModel,
    out_dir: str | Path,
    precision: str,
    files: FolderFiles,
    *,
    include_pickle: bool = False,
    max_shard_size: str | int | None = None,
    original_released: bool = True,
) -> Room:
    """What converting ``loaded`` into ``out_dir`` will write and hold (no side effects).

    Args:
        loaded: The loaded model.
        out_dir: The output folder.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        files: The target format's file names (``files.index`` set: the weights are sharded).
        include_pickle: The pickle weights file is written too.
        max_shard_size: See :func:`parse_shard_size` (sharding formats only).
        original_released: The original is released before the rebuild, so its memory counts as free then.

    Returns:
        The :class:`Room`.

    Raises:
        InvalidInputError: Unknown precision or invalid shard size.
    """
    if precision not in _BYTES:
        raise InvalidInputError(f"Unknown precision {precision!r}", hint=f"Use one of: {', '.join(_BYTES)}.")
    sizes, fp32 = _tensor_sizes(loaded, precision)
    total = sum(sizes.values())
    shards = [total]
    largest = files.weights
    if files.index is not None:
        limit = parse_shard_size(max_shard_size)
        if total > limit:
            shards = shard_plan(sizes, limit)
            largest = f"the largest of {len(shards)} shards ({files.weights.replace('.safetensors', '-*.safetensors')})"
    rebuild = int(REBUILD_FACTOR * fp32) - (fp32 if original_released else 0)
    cast_copy = total if precision != "fp32" else 0  # the export holds the cast tensors beside the original
    return Room(
        fp32_bytes=fp32,
        weights_bytes=total,
        disk_bytes=total * (2 if include_pickle else 1) + DISK_MARGIN_BYTES,
        largest_file=largest,
        largest_file_bytes=max(shards),
        memory_bytes=max(rebuild, cast_copy),
        shards=len(shards),
    )


def _hub_limit_error(room: Room, precision: str, files: FolderFiles) -> ExportError:
    size = human_size(room.largest_file_bytes)
    limit = human_size(HUB_FILE_LIMIT_BYTES)
    what = f"{room.largest_file} would be {size} at {precision}"
    if files.index is not None:
        return ExportError(
            f"{what}, over the Hub's limit of {limit} per file: it could not be pushed; nothing was written.",
            hint=f"Choose a smaller --max-shard-size (the default is {DEFAULT_MAX_SHARD_SIZE}), or pass "
            "--allow-unpushable-size if this folder will not be pushed.",
        )
    half = room.largest_file_bytes // 2 if precision == "fp32" else room.largest_file_bytes
    if precision == "fp32" and half <= HUB_FILE_LIMIT_BYTES:
        fits = f"fp16 or bf16 halves it to {human_size(half)}, which fits: convert with --precision fp16 (or bf16)"
    else:
        fits = (
            f"even at fp16 or bf16 it is {human_size(half)}, and this format's loader reads one file, so no "
            "precision makes it pushable"
        )
    return ExportError(
        f"{what}, over the Hub's limit of {limit} per file: it could not be pushed; {fits}. Nothing was written.",
        hint="Choose a precision that fits, or pass --allow-unpushable-size (allow_unpushable_size=True) to write "
        "a folder you will not push.",
    )


def check_room(
    loaded: LoadedModel,
    out_dir: str | Path,
    precision: str,
    files: FolderFiles,
    *,
    include_pickle: bool = False,
    max_shard_size: str | int | None = None,
    allow_unpushable_size: bool = False,
    memory_check: bool = True,
    original_released: bool = True,
) -> Room:
    """Refuse, before anything is written, a conversion that cannot fit (see the module docstring).

    Args:
        loaded: The loaded model.
        out_dir: The output folder (missing or an earlier export; the staging folder goes beside it).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        files: The target format's file names.
        include_pickle: The pickle weights file is written too.
        max_shard_size: The shard size of a sharding format (see :func:`parse_shard_size`).
        allow_unpushable_size: Write a file over the Hub's limit anyway (the folder will not be pushed).
        memory_check: Refuse when ``MemAvailable`` is short of the rebuild's need.
        original_released: See :func:`room_needed`.

    Returns:
        The :class:`Room` it checked.

    Raises:
        InvalidInputError: Unknown precision or invalid shard size.
        ExportError: Not enough free disk or memory, or a file over the Hub's limit; the message has the numbers
            and the hint what to do.
    """
    room = room_needed(
        loaded,
        out_dir,
        precision,
        files,
        include_pickle=include_pickle,
        max_shard_size=max_shard_size,
        original_released=original_released,
    )
    if room.largest_file_bytes > HUB_FILE_LIMIT_BYTES and not allow_unpushable_size:
        raise _hub_limit_error(room, precision, files)
    if room.largest_file_bytes > HUB_RECOMMENDED_BYTES:
        logger.warning(
            "%s will be %s: the Hub recommends files of at most %s (a file over %s cannot be pushed)",
            room.largest_file,
            human_size(room.largest_file_bytes),
            human_size(HUB_RECOMMENDED_BYTES),
            human_size(HUB_FILE_LIMIT_BYTES),
        )
    where = Path(out_dir).expanduser().absolute().parent
    free = disk_free_bytes(where)
    if free < room.disk_bytes:
        raise ExportError(
            f"The export needs {human_size(room.disk_bytes)} free at {str(where)!r}, {human_size(free)} free there "
            f"(the {precision} weights{' and the pickle' if include_pickle else ''}, staged beside the output "
            "folder); nothing was written.",
            hint="Free some space, choose --out on another disk, or a smaller --precision.",
        )
    if memory_check:
        available = mem_available_bytes()
        if available < room.memory_bytes:
            raise ExportError(
                f"The conversion needs about {human_size(room.memory_bytes)} more memory (the model rebuilt from the "
                f"folder and its loader's copy, {REBUILD_FACTOR:g}x the {human_size(room.fp32_bytes)} fp32 weights), "
                f"{human_size(available)} is available (MemAvailable); nothing was written.",
                hint="Close other programs or convert on a machine with more memory; if you know more is free "
                "(MemAvailable leaves out cache the kernel can drop), pass --no-memory-check (memory_check=False).",
            )
    return room


def check_push_sizes(folder: str | Path, files: Iterable[tuple[str, int]]) -> None:
    """Refuse a push with a file over the Hub's limit per file, before anything is uploaded.

    Args:
        folder: The folder pushed (for the message).
        files: ``(path in the repo, size in bytes)`` of every file the push commits.

    Raises:
        InvalidInputError: A file over :data:`HUB_FILE_LIMIT_BYTES`.
    """
    big = [(p, n) for p, n in files if n > HUB_FILE_LIMIT_BYTES]
    if big:
        path, size = max(big, key=lambda f: f[1])
        raise InvalidInputError(
            f"{path} in {str(folder)!r} is {human_size(size)}, over the Hub's limit of "
            f"{human_size(HUB_FILE_LIMIT_BYTES)} per file; nothing was uploaded.",
            hint="Convert again at a precision that fits (fp16 or bf16 halves the weights), or with a smaller "
            "--max-shard-size where the format is sharded.",
        )


__all__ = [
    "DEFAULT_MAX_SHARD_SIZE",
    "HUB_FILE_LIMIT_BYTES",
    "HUB_RECOMMENDED_BYTES",
    "REBUILD_FACTOR",
    "Room",
    "check_push_sizes",
    "check_room",
    "disk_free_bytes",
    "human_size",
    "mem_available_bytes",
    "parse_shard_size",
    "room_needed",
    "shard_plan",
]
