"""Sharded safetensors: writing weights as shards with an index, and finding every weights file of a folder.

The layout is the one transformers' ``from_pretrained`` reads and huggingface_hub's ``save_torch_state_dict``
writes: ``model-00001-of-00003.safetensors``... and ``model.safetensors.index.json``
(``{"metadata": {"total_size": ...}, "weight_map": {tensor: shard}}``). The split is huggingface_hub's own
(``split_state_dict_into_shards_factory``, in state-dict order), fed with the bytes each tensor takes in the file.
Only a format whose :class:`~hubui.libraries.base.FolderFiles` names an ``index`` is ever sharded; timm's and
open_clip's loaders read one file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hubui.errors import InvalidInputError
from hubui.libraries.base import FolderFiles
from hubui.preflight import parse_shard_size


def _pattern(name: str) -> str:
    """``model.safetensors`` -> ``model{suffix}.safetensors``: huggingface_hub's file name pattern."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}{{suffix}}{dot}{ext}" if dot else f"{name}{{suffix}}"


def write_weights(
    staging: Path,
    tensors: dict[str, torch.Tensor],
    files: FolderFiles,
    *,
    max_shard_size: str | int | None,
    include_pickle: bool,
    metadata: dict[str, str],
    say: Callable[[str, float], None],
) -> None:
    """Write ``tensors`` as ``files.weights`` (and ``files.pickle``), or as shards with an index when the format
    has one (``files.index``) and they are over ``max_shard_size``.

    Args:
        staging: The folder to write into.
        tensors: Name to tensor, cast and free of aliases (:func:`hubui.export_folder.cast_state_dict`).
        files: The format's file names.
        max_shard_size: See :func:`hubui.preflight.parse_shard_size`.
        include_pickle: Also write the pickle file(s), sharded the same way.
        metadata: The safetensors metadata of every file (``format`` included).
        say: ``say(message, fraction)`` for progress, fraction within the weights (0 to 1).

    Raises:
        InvalidInputError: Invalid shard size.
        OSError, SafetensorError, RuntimeError: A write failed (the caller's staging turns it into ExportError).
    """
    import safetensors.torch
    from huggingface_hub import split_state_dict_into_shards_factory

    index = files.index
    limit = parse_shard_size(max_shard_size) if index is not None else None
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if index is None or limit is None or total <= limit:
        say(f"writing {files.weights}", 0.0)
        safetensors.torch.save_file(tensors, str(staging / files.weights), metadata=metadata)
        if include_pickle:
            say(f"writing {files.pickle}", 0.5)
            torch.save(tensors, staging / files.pickle)
        return
    split = split_state_dict_into_shards_factory(
        tensors,
        get_storage_size=lambda t: t.numel() * t.element_size(),  # bytes in the file, not the storage it views
        filename_pattern=_pattern(files.weights),
        max_shard_size=limit,
    )
    n = len(split.filename_to_tensors)
    for i, (name, keys) in enumerate(split.filename_to_tensors.items()):
        say(f"writing {name} ({i + 1}/{n})", i / n)
        shard = {k: tensors[k] for k in keys}
        safetensors.torch.save_file(shard, str(staging / name), metadata=metadata)
        if include_pickle:
            torch.save(shard, staging / _pickle_name(files, name))
    index_meta: dict[str, Any] = {**split.metadata, **metadata}
    index_meta.pop("format", None)
    _write_index(staging / index, index_meta, split.tensor_to_filename)
    if include_pickle:
        pickle_map = {k: _pickle_name(files, v) for k, v in split.tensor_to_filename.items()}
        _write_index(staging / f"{files.pickle}.index.json", index_meta, pickle_map)


def _pickle_name(files: FolderFiles, shard: str) -> str:
    """The pickle shard beside a safetensors shard: ``model-00001-of-00002.safetensors`` ->
    ``pytorch_model-00001-of-00002.bin``."""
    head, tail = _pattern(files.weights).split("{suffix}")
    return _pattern(files.pickle).format(suffix=shard[len(head) : len(shard) - len(tail)])


def _write_index(path: Path, metadata: dict[str, Any], weight_map: dict[str, str]) -> None:
    path.write_text(json.dumps({"metadata": metadata, "weight_map": weight_map}, indent=2) + "\n", encoding="utf-8")


def weights_path(folder: str | Path, files: FolderFiles) -> Path:
    """The weights of an export: the index when the folder is sharded, else the one weights file.

    Args:
        folder: An export folder (or a downloaded snapshot).
        files: Its format's file names.

    Returns:
        ``folder / files.index`` when that exists, else ``folder / files.weights``.
    """
    folder = Path(folder)
    if files.index is not None and (folder / files.index).is_file() and not (folder / files.weights).is_file():
        return folder / files.index
    return folder / files.weights


def is_index(path: str | Path) -> bool:
    """Whether ``path`` names a sharded-safetensors index (``*.safetensors.index.json``)."""
    return str(path).endswith(".index.json")


def read_index(path: str | Path) -> dict[str, Path]:
    """Tensor name to the shard file that holds it, from an index file.

    Args:
        path: ``model.safetensors.index.json``.

    Returns:
        Name to shard path (beside the index).

    Raises:
        InvalidInputError: The index is missing, not JSON, has no ``weight_map``, or names a shard outside its
            folder or one that is not there.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        weight_map = data["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"Cannot read the index {str(path)!r}: {exc}", hint="Export again.") from exc
    out: dict[str, Path] = {}
    for key, name in weight_map.items():
        if not isinstance(name, str) or Path(name).name != name:
            raise InvalidInputError(f"The index {path.name} names a bad shard {name!r}", hint="Export again.")
        out[str(key)] = path.parent / name
    missing = sorted({p.name for p in out.values() if not p.is_file()})
    if missing:
        raise InvalidInputError(
            f"The index {path.name} names {len(missing)} shard(s) that are not in {str(path.parent)!r}: "
            f"{', '.join(missing[:5])}",
            hint="Export again, or copy every shard beside the index.",
        )
    return out


__all__ = ["is_index", "read_index", "weights_path", "write_weights"]
