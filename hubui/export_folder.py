"""Write a Hub folder, whatever its format: weights cast to one precision, safetensors, an optional pickle and
the format's config, staged next to the target and renamed into place only when every file is written, so a
failed export never leaves a folder that looks complete.

The formats in :mod:`hubui.libraries` call :func:`write_folder` with their file names and a function that writes
their config; they never write weights themselves.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from hubui.errors import ExportError, InvalidInputError
from hubui.libraries.base import ExportOptions, ExportProgress, FolderFiles
from hubui.outdir import check_out_dir, export_files, mark_export
from hubui.spec import PRECISIONS, ExportResult, LoadedModel

logger = logging.getLogger(__name__)

HUBUI_CONFIG_KEY = "hubui"
"""The top-level key of an export's config under which hubui records the precision and its version."""

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def check_precision(precision: str) -> torch.dtype:
    """Return the dtype for a precision name.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        The torch dtype.

    Raises:
        InvalidInputError: For any other value.
    """
    if precision not in DTYPES:
        raise InvalidInputError(
            f"Unknown precision {precision!r}",
            hint=f"Use one of: {', '.join(PRECISIONS)}.",
        )
    return DTYPES[precision]


def cast_state_dict(model: torch.nn.Module, precision: str) -> dict[str, torch.Tensor]:
    """The model's state dict with floating tensors cast to ``precision``, ready for safetensors.

    Only what the cast needs is copied: tensors already in the target dtype and contiguous are the model's
    own storage (``state_dict()`` returns detached references, not copies). Integer buffers such as
    BatchNorm's ``num_batches_tracked`` keep their dtype. Tensors that share storage (tied weights) are
    cloned, because safetensors refuses aliased tensors and timm's strict load needs every key.

    Args:
        model: The module.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        Name to tensor, on CPU.

    Raises:
        InvalidInputError: If ``precision`` is unknown.
    """
    dtype = check_precision(precision)
    out: dict[str, torch.Tensor] = {}
    seen_storage: set[tuple[int, int]] = set()
    overflowed: list[str] = []
    for name, tensor in model.state_dict().items():
        t = tensor.detach()
        if t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype=dtype)
            # fp16 tops out at 65504: larger values become inf. Say so here; parity will then fail on it.
            if not bool(torch.isfinite(t).all()) and bool(torch.isfinite(tensor).all()):
                overflowed.append(name)
        t = t.to("cpu").contiguous()
        if t.numel() > 0:
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if key in seen_storage:
                t = t.clone()
            else:
                seen_storage.add(key)
        out[name] = t
    if overflowed:
        logger.warning("%d tensor(s) overflow %s and now hold inf, e.g. %s", len(overflowed), precision, overflowed[0])
    return out


def _staging_dir(out_dir: Path) -> Path:
    # Same parent, so the final rename stays on one filesystem and is atomic.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.hubui-", dir=out_dir.parent))


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``; an existing ``out_dir`` is moved aside first and removed after."""
    old: Path | None = None
    if out_dir.exists():
        check_out_dir(out_dir, overwrite=True)  # again, right before: only an earlier export is ever moved away
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.hubui-old-", dir=out_dir.parent))
        try:
            os.replace(out_dir, old / "previous")
        except OSError:
            shutil.rmtree(old, ignore_errors=True)
            raise
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old / "previous", out_dir)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# How a full disk shows up: OSError from Python, "(os error 28)" inside safetensors' SafetensorError,
# "file write failed" inside torch.save's RuntimeError.
_DISK_FULL_TEXT = ("No space left on device", "os error 28", "StorageFull", "file write failed")


def _write_error(out_dir: Path, exc: Exception) -> ExportError:
    """The error for a failed write into ``out_dir``'s staging folder (nothing is left at ``out_dir``)."""
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or any(t in text for t in _DISK_FULL_TEXT):
        return ExportError(
            f"No space left on device while writing the export folder {str(out_dir)!r}; nothing was written there.",
            hint="Free some space on that disk, or choose an output folder on another disk, then convert again.",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else text.splitlines()[0][:300]
    return ExportError(f"Could not write the export folder {str(out_dir)!r}: {reason}; nothing was written there.")


@contextlib.contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A staging folder next to ``out_dir`` that becomes ``out_dir`` when the ``with`` body succeeds.

    Args:
        out_dir: The folder to write: missing, empty, or an earlier export to replace (checked by the caller
            with :func:`hubui.outdir.check_out_dir`, and again here before anything is moved).

    Yields:
        The staging folder to write into.

    Raises:
        ExportError: A write failed (a full disk is named as such); nothing is left at ``out_dir`` or in staging.
    """
    import safetensors

    staging: Path | None = None
    try:
        staging = _staging_dir(out_dir)
        yield staging
        mark_export(staging)  # what makes the folder replaceable by a later overwrite, and nothing else
        _move_into_place(staging, out_dir)
        staging = None
    except (OSError, safetensors.SafetensorError) as exc:
        raise _write_error(out_dir, exc) from exc
    except RuntimeError as exc:
        # torch.save reports a failed write as a RuntimeError; any other RuntimeError is not about the disk.
        if "PytorchStreamWriter" not in str(exc) and "file write failed" not in str(exc):
            raise
        raise _write_error(out_dir, exc) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _progress(progress: ExportProgress | None, message: str, fraction: float) -> None:
    logger.debug("export: %s (%.0f%%)", message, fraction * 100)
    if progress is not None:
        progress(message, fraction)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_folder(
    loaded: LoadedModel,
    out_dir: Path,
    files: FolderFiles,
    options: ExportOptions,
    write_config: Callable[[Path], None],
    library: str,
    module: torch.nn.Module | None = None,
) -> ExportResult:
    """Write ``loaded``'s weights and config into a staged folder that becomes ``out_dir``.

    Args:
        loaded: The model (its module is not modified).
        out_dir: The folder, already checked with :func:`hubui.outdir.check_out_dir`.
        files: The format's file names.
        options: Precision, pickle, progress, and the shard size of a format with ``files.index``.
        write_config: Writes the format's config (and any other file) into the staging folder it is given.
        library: The format's name, recorded in the result.
        module: The module whose state dict is written, when it is not ``loaded.model`` (a format that renames
            the tensors passes a module holding the renamed ones).

    Returns:
        The :class:`~hubui.spec.ExportResult`.

    Raises:
        InvalidInputError: Unknown precision or shard size.
        ExportError: A write failed (nothing is left at ``out_dir``).
    """
    from hubui import __version__
    from hubui.shards import write_weights

    precision = options.precision
    check_precision(precision)
    progress = options.progress
    with staged_folder(out_dir) as staging:
        _progress(progress, f"casting weights to {precision}", 0.0)
        tensors = cast_state_dict(loaded.model if module is None else module, precision)
        # One file, or (a format whose loader reads them, over max_shard_size) shards with an index.
        write_weights(
            staging,
            tensors,
            files,
            max_shard_size=options.max_shard_size,
            include_pickle=options.include_pytorch_bin,
            metadata={"format": "pt", "hubui_precision": precision, "hubui_version": __version__},
            say=lambda message, f: _progress(progress, message, 0.2 + 0.7 * f),
        )
        del tensors
        _progress(progress, f"writing {files.config}", 0.9)
        write_config(staging)
    config = json.loads((out_dir / files.config).read_text(encoding="utf-8"))
    _progress(progress, "done", 1.0)
    logger.info("exported %s (%s) to %s", loaded.spec.architecture, precision, out_dir)
    return ExportResult(
        folder=out_dir, files=export_files(out_dir), precision=precision, library=library, config=config
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """An export's config file as a dict.

    Raises:
        InvalidInputError: The file is missing, not JSON, or not a JSON object.
    """
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}", hint="Pass a folder written by export.") from exc
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{str(path)!r} is not a JSON object", hint="Pass a folder written by export.")
    return cfg


def finish(model: torch.nn.Module) -> torch.nn.Module:
    """A rebuilt module in fp32 and eval mode.

    Loaders put fp16/bf16 tensors into an fp32 module (load_state_dict copies and casts), so it is already fp32;
    ``.float()`` keeps that true whatever a future loader does.
    """
    return model.float().eval()


def read_precision(config: dict[str, Any]) -> str | None:
    """The precision hubui recorded in an export's config, or None."""
    value = (config.get(HUBUI_CONFIG_KEY) or {}).get("precision")
    return value if isinstance(value, str) else None


__all__ = [
    "DTYPES",
    "HUBUI_CONFIG_KEY",
    "cast_state_dict",
    "check_precision",
    "finish",
    "read_config_file",
    "read_json",
    "read_precision",
    "staged_folder",
    "write_folder",
]
