"""Write a model to a Hub folder in its library's own format, and rebuild it with that library's loader.

For timm the folder is what ``timm.create_model("hf-hub:...")`` expects: ``config.json`` (written by timm's
own ``save_config_for_hf``) and ``model.safetensors`` (plus ``pytorch_model.bin`` only when asked). Which
precision the weights were saved in is recorded in config.json under a top-level ``"hubui"`` key::

    {"architecture": ..., "pretrained_cfg": {...}, "hubui": {"precision": "fp16", "version": "0.1.0"}}

It sits at the top level on purpose: timm turns ``pretrained_cfg`` into a ``PretrainedCfg`` dataclass, which
rejects unknown keys, while ``_parse_model_cfg`` ignores unknown top-level keys.

Sharding: timm 1.0.31 never reads ``model.safetensors.index.json``. ``load_state_dict_from_hf``
downloads exactly one ``model.safetensors`` (or ``pytorch_model.bin``), and ``load_state_dict_from_path``
(``local-dir:``) picks one preferred file or the first ``*.safetensors`` by name, which for shards would
be a partial state dict. So hubui never shards timm weights: one file, whatever the size.

The folder is staged next to ``out_dir`` and renamed into place only when every file is written, so a failed
export never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hubui.errors import (
    CheckpointMismatchError,
    ExportError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
)
from hubui.spec import PRECISIONS, LoadedModel

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
HUBUI_CONFIG_KEY = "hubui"

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

ProgressFn = Callable[[str, float], None]
"""Called as ``progress(message, fraction)`` with ``fraction`` in [0, 1]."""


@dataclass(frozen=True)
class ExportResult:
    """A finished export.

    Args:
        folder: The Hub folder.
        files: ``(name, size_bytes)`` of every file in it, sorted by name.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``: the dtype of every floating tensor saved.
        library: ``"timm"`` (``"open_clip"`` later).
        config: The config.json written, as a dict.
    """

    folder: Path
    files: tuple[tuple[str, int], ...]
    precision: str
    library: str
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (the CLI prints it)."""
        return {
            "folder": str(self.folder),
            "files": [{"name": n, "size_bytes": s} for n, s in self.files],
            "precision": self.precision,
            "library": self.library,
        }


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


def _timm_config(loaded: LoadedModel, precision: str, config_path: Path) -> None:
    """Write config.json with timm's own helper (its format; hubui validates before calling it)."""
    from timm.models._hub import save_config_for_hf
    from timm.models._pretrained import filter_pretrained_cfg

    from hubui import __version__

    overrides = filter_pretrained_cfg(
        {k: v for k, v in loaded.pretrained_cfg.items() if k not in ("state_dict", "label_names")},
        remove_source=True,
        remove_null=True,
    )
    model_config: dict[str, Any] = {
        "pretrained_cfg": overrides,
        HUBUI_CONFIG_KEY: {"precision": precision, "version": __version__},
    }
    if loaded.label_names:
        model_config["label_names"] = list(loaded.label_names)
    try:
        save_config_for_hf(loaded.model, str(config_path), model_config=model_config, data_config=loaded.data_config)
    except ValueError as exc:
        raise ExportError(f"timm cannot describe this model in config.json: {exc}") from exc


def _check_labels(loaded: LoadedModel) -> None:
    # timm would silently drop label names of the wrong length (or assert on their type); say it up front,
    # before any multi-GB write.
    num_classes = getattr(loaded.model, "num_classes", None)
    if loaded.label_names and num_classes is not None and len(loaded.label_names) != num_classes:
        raise InvalidInputError(
            f"{len(loaded.label_names)} label names for a model with {num_classes} classes",
            hint="Give exactly one label name per class.",
        )


def _dir_is_nonempty(path: Path) -> bool:
    try:
        return any(path.iterdir())
    except NotADirectoryError:
        return True


def _staging_dir(out_dir: Path) -> Path:
    # Same parent, so the final rename stays on one filesystem and is atomic.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.hubui-", dir=out_dir.parent))


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``; an existing ``out_dir`` is moved aside first and removed after."""
    old: Path | None = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.hubui-old-", dir=out_dir.parent))
        os.replace(out_dir, old / "previous")
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old / "previous", out_dir)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _progress(progress: ProgressFn | None, message: str, fraction: float) -> None:
    logger.debug("export: %s (%.0f%%)", message, fraction * 100)
    if progress is not None:
        progress(message, fraction)


def export_model(
    loaded: LoadedModel,
    out_dir: str | Path,
    precision: str = "fp32",
    include_pytorch_bin: bool = False,
    progress: ProgressFn | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write ``loaded`` as a Hub folder in its library's format.

    Args:
        loaded: The model to export (its module is not modified).
        out_dir: The folder to create. Must not exist or be empty, unless ``overwrite``.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``. Every floating tensor is saved in exactly this
            dtype; integer buffers keep theirs. config.json records it under ``"hubui"``.
        include_pytorch_bin: Also write ``pytorch_model.bin`` (a pickle) for old loaders.
        progress: Optional ``progress(message, fraction)`` callback.
        overwrite: Replace a non-empty ``out_dir``.

    Returns:
        An ExportResult listing the files written.

    Raises:
        InvalidInputError: Unknown precision, or label names that don't fit the classifier.
        ExportError: ``out_dir`` is not empty (without ``overwrite``), the library can't be exported yet,
            or writing failed (nothing is left at ``out_dir`` in that case).

    Example:
        >>> result = export_model(loaded, "out/resnet50", precision="fp16")  # doctest: +SKIP
        >>> [name for name, _ in result.files]  # doctest: +SKIP
        ['config.json', 'model.safetensors']
    """
    check_precision(precision)
    library = loaded.spec.library
    if library != "timm":
        raise ExportError(f"Export for library {library!r} is not supported yet", hint="Export a timm model.")
    _check_labels(loaded)
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and _dir_is_nonempty(out_dir) and not overwrite:
        raise ExportError(
            f"Output folder {str(out_dir)!r} already exists and is not empty",
            hint="Choose a new folder, empty it, or pass overwrite=True.",
        )

    import safetensors.torch

    from hubui import __version__

    staging: Path | None = None
    try:
        staging = _staging_dir(out_dir)
        _progress(progress, f"casting weights to {precision}", 0.0)
        tensors = cast_state_dict(loaded.model, precision)
        _progress(progress, f"writing {SAFE_WEIGHTS_NAME}", 0.2)
        safetensors.torch.save_file(
            tensors,
            str(staging / SAFE_WEIGHTS_NAME),
            metadata={"format": "pt", "hubui_precision": precision, "hubui_version": __version__},
        )
        if include_pytorch_bin:
            _progress(progress, f"writing {PICKLE_WEIGHTS_NAME}", 0.6)
            torch.save(tensors, staging / PICKLE_WEIGHTS_NAME)
        del tensors
        _progress(progress, f"writing {CONFIG_NAME}", 0.9)
        _timm_config(loaded, precision, staging / CONFIG_NAME)
        _move_into_place(staging, out_dir)
        staging = None
    except OSError as exc:
        raise ExportError(f"Could not write the export folder {str(out_dir)!r}: {exc.strerror or exc}") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    config = json.loads((out_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    files = tuple(sorted((p.name, p.stat().st_size) for p in out_dir.iterdir() if p.is_file()))
    _progress(progress, "done", 1.0)
    logger.info("exported %s (%s) to %s", loaded.spec.architecture, precision, out_dir)
    return ExportResult(folder=out_dir, files=files, precision=precision, library=library, config=config)


def read_export_precision(folder: str | Path) -> str | None:
    """The precision recorded in an export's config.json, or None if hubui did not write it.

    Args:
        folder: An export folder.

    Returns:
        ``"fp32"``, ``"fp16"``, ``"bf16"`` or None.

    Raises:
        InvalidInputError: If config.json is missing or not JSON.
    """
    path = Path(folder) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}", hint="Pass a folder written by export.") from exc
    value = (cfg.get(HUBUI_CONFIG_KEY) or {}).get("precision")
    return value if isinstance(value, str) else None


def _finish(model: torch.nn.Module) -> torch.nn.Module:
    # timm loads fp16/bf16 tensors into an fp32 module (load_state_dict copies and casts), so the module is
    # already fp32; .float() keeps that true whatever a future loader does.
    return model.float().eval()


def rebuild_from_folder(folder: str | Path, library: str = "timm") -> torch.nn.Module:
    """Rebuild a model from an export folder with the library's own loader, in eval mode and fp32.

    For timm this is ``timm.create_model("local-dir:<folder>", pretrained=True)``: the same config parsing
    and strict ``load_state_dict`` that ``hf-hub:`` uses, minus the download.

    Args:
        folder: A folder with config.json and model.safetensors.
        library: ``"timm"``.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The folder or its config.json is missing, or the library is unknown.
        CheckpointMismatchError: The weights don't fit the architecture in config.json.
        ModelError: timm could not build the model for another reason.
    """
    _check_library(library)
    folder = Path(folder).expanduser().resolve()
    if not (folder / CONFIG_NAME).is_file():
        raise InvalidInputError(
            f"No {CONFIG_NAME} in {str(folder)!r}",
            hint="Pass the folder that export_model wrote.",
        )
    return _finish(_create_timm(f"local-dir:{folder}", str(folder)))


def rebuild_from_hub(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    library: str = "timm",
) -> torch.nn.Module:
    """Rebuild a model from a Hub repo with the library's own loader, in eval mode and fp32.

    timm 1.0.31 takes a revision inside the model name (``hf-hub:owner/name@revision``, split by
    ``timm.models._hub.hf_split``) and ``cache_dir`` as an argument, so every revision goes through the
    real ``hf-hub:`` path that users run; no snapshot_download detour is needed.

    Args:
        repo_id: ``"owner/name"``.
        revision: A branch, tag or commit; None for the default branch.
        cache_dir: Hugging Face cache folder; None for the default.
        library: ``"timm"``.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The library is unknown, or ``repo_id`` / ``revision`` contain ``@``.
        ModelNotFoundError: The repo, revision, config.json or weights file does not exist.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights don't fit the architecture in config.json.
        ModelError: timm could not build the model for another reason.
    """
    _check_library(library)
    # hf_split allows exactly one '@', as the revision separator.
    if "@" in repo_id or (revision is not None and "@" in revision):
        raise InvalidInputError(
            f"'@' is not allowed in a repo id or revision: {repo_id!r} {revision!r}",
            hint="Pass the revision separately, without '@'.",
        )
    name = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    return _finish(_create_timm(name, f"{repo_id}@{revision or 'main'}", cache_dir=cache_dir))


def _check_library(library: str) -> None:
    if library != "timm":
        raise InvalidInputError(f"Rebuilding library {library!r} is not supported yet", hint="Use library='timm'.")


def _create_timm(name: str, where: str, cache_dir: str | Path | None = None) -> torch.nn.Module:
    import timm
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return timm.create_model(name, pretrained=True, cache_dir=cache_dir)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelNotFoundError(
            f"{where!r} has no timm model there: {exc}",
            hint="Check the repo id and revision, and that the repo has config.json and model.safetensors.",
        ) from exc
    except HfHubHTTPError as exc:
        raise HubUnreachableError(f"Could not download {where!r}: {exc}") from exc
    except RuntimeError as exc:
        # load_state_dict(strict=True) reports missing/unexpected keys and size mismatches as RuntimeError.
        text = str(exc)
        if "state_dict" in text or "size mismatch" in text or "Missing key" in text:
            raise CheckpointMismatchError(f"The weights in {where!r} don't fit their config: {text}") from exc
        raise ModelError(f"timm could not rebuild {where!r}: {text}") from exc
    except (ValueError, KeyError, TypeError, FileNotFoundError) as exc:
        raise ModelError(f"timm could not rebuild {where!r}: {exc}") from exc


__all__ = [
    "CONFIG_NAME",
    "DTYPES",
    "PICKLE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_NAME",
    "ExportResult",
    "cast_state_dict",
    "check_precision",
    "export_model",
    "read_export_precision",
    "rebuild_from_folder",
    "rebuild_from_hub",
]
