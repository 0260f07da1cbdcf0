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

For open_clip the folder is what ``open_clip.create_model_from_pretrained("hf-hub:...")`` and
``open_clip.get_tokenizer("hf-hub:...")`` expect: ``open_clip_config.json`` (``model_cfg`` plus ``preprocess_cfg``,
written by open_clip's own ``push_to_hf_hub.save_config_for_hf``), ``open_clip_model.safetensors`` (plus
``open_clip_pytorch_model.bin`` only when asked) and, for a Hugging Face tokenizer, its files
(``tokenizer.json``, ``tokenizer_config.json``...). The precision sits under the same top-level ``"hubui"`` key,
which open_clip's loaders ignore (they read only ``model_cfg`` and ``preprocess_cfg``). The default CLIP BPE
tokenizer needs no file: open_clip rebuilds it from ``model_cfg.text_cfg`` (``context_length``,
``tokenizer_kwargs``), which is written whole. Unlike open_clip's ``push_to_hf_hub``, hubui never substitutes
another model's tokenizer: a tokenizer it cannot write is an :class:`~hubui.errors.ExportError`.

The folder is staged next to ``out_dir`` and renamed into place only when every file is written, so a failed
export never leaves a folder that looks complete.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hubui._noinit import without_random_init
from hubui.errors import (
    CheckpointMismatchError,
    ExportError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
    exception_chain,
)
from hubui.outdir import check_out_dir, export_files, mark_export
from hubui.spec import PRECISIONS, LoadedModel

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
OPEN_CLIP_CONFIG_NAME = "open_clip_config.json"
OPEN_CLIP_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
OPEN_CLIP_PICKLE_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HUBUI_CONFIG_KEY = "hubui"
TOKENIZER_ATTR = "hubui_tokenizer"
"""open_clip models rebuilt by hubui carry the tokenizer rebuilt with them under this attribute."""

# (config, safetensors weights, pickle weights) per library: the names each library's loader looks for.
FILE_NAMES: dict[str, tuple[str, str, str]] = {
    "timm": (CONFIG_NAME, SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME),
    "open_clip": (OPEN_CLIP_CONFIG_NAME, OPEN_CLIP_SAFE_WEIGHTS_NAME, OPEN_CLIP_PICKLE_WEIGHTS_NAME),
    # The transformers target (hubui.to_transformers): written and rebuilt there, named here.
    "transformers": (CONFIG_NAME, SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME),
}

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
        library: ``"timm"`` or ``"open_clip"``.
        config: The config written (config.json or open_clip_config.json), as a dict.
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
    *,
    hf_tokenizer_repo: str | None = None,
) -> ExportResult:
    """Write ``loaded`` as a Hub folder in its library's format.

    Args:
        loaded: The model to export (its module is not modified).
        out_dir: The folder to create. Must not exist or be empty, unless ``overwrite`` and it holds an earlier
            hubui export (see :mod:`hubui.outdir`).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``. Every floating tensor is saved in exactly this
            dtype; integer buffers keep theirs. The config records it under ``"hubui"``.
        include_pytorch_bin: Also write ``pytorch_model.bin`` (timm) / ``open_clip_pytorch_model.bin``
            (open_clip), a pickle, for old loaders.
        progress: Optional ``progress(message, fraction)`` callback.
        overwrite: Replace an earlier hubui export in ``out_dir``; a folder holding anything else is refused.
        hf_tokenizer_repo: open_clip with a Hugging Face tokenizer only: the repo the tokenizer will be
            loaded from (``model_cfg.text_cfg.hf_tokenizer_name``), normally the repo this folder is pushed
            to (open_clip's ``hf_tokenizer_self``). When the repo is only known at push time, push with
            ``PushRequest(hf_tokenizer_self=True)`` instead.

    Returns:
        An ExportResult listing the files written.

    Raises:
        InvalidInputError: Unknown precision, label names that don't fit the classifier, or
            ``hf_tokenizer_repo`` for a model without a Hugging Face tokenizer (or not a repo id).
        ExportError: ``out_dir`` is not empty (without ``overwrite``), is not an earlier export (with it), is the
            current directory, a folder above it or home, the library is unknown, the model's
            tokenizer can't be written, or writing failed (nothing is left at ``out_dir`` in that case).

    Example:
        >>> result = export_model(loaded, "out/resnet50", precision="fp16")  # doctest: +SKIP
        >>> [name for name, _ in result.files]  # doctest: +SKIP
        ['config.json', 'model.safetensors']
    """
    check_precision(precision)
    library = loaded.spec.library
    if library not in ("timm", "open_clip"):  # transformers folders come from hubui.to_transformers
        raise ExportError(f"Export for library {library!r} is not supported", hint="Export a timm or open_clip model.")
    if library == "timm":
        if hf_tokenizer_repo is not None:
            raise InvalidInputError("hf_tokenizer_repo applies to open_clip models only", hint="Leave it unset.")
        _check_labels(loaded)
        open_clip_plan: _OpenClipPlan | None = None
    else:
        # Everything about the tokenizer and the config is checked before any multi-GB write.
        open_clip_plan = _plan_open_clip(loaded, hf_tokenizer_repo)
    config_name, safe_name, pickle_name = FILE_NAMES[library]
    out_dir = check_out_dir(out_dir, overwrite)

    import safetensors
    import safetensors.torch

    from hubui import __version__

    with staged_folder(out_dir) as staging:
        _progress(progress, f"casting weights to {precision}", 0.0)
        tensors = cast_state_dict(loaded.model, precision)
        _progress(progress, f"writing {safe_name}", 0.2)
        safetensors.torch.save_file(
            tensors,
            str(staging / safe_name),
            metadata={"format": "pt", "hubui_precision": precision, "hubui_version": __version__},
        )
        if include_pytorch_bin:
            _progress(progress, f"writing {pickle_name}", 0.6)
            torch.save(tensors, staging / pickle_name)
        del tensors
        _progress(progress, f"writing {config_name}", 0.9)
        if open_clip_plan is None:
            _timm_config(loaded, precision, staging / config_name)
        else:
            _write_open_clip(loaded, open_clip_plan, precision, staging)

    config = json.loads((out_dir / config_name).read_text(encoding="utf-8"))
    files = export_files(out_dir)
    _progress(progress, "done", 1.0)
    logger.info("exported %s (%s) to %s", loaded.spec.architecture, precision, out_dir)
    return ExportResult(folder=out_dir, files=files, precision=precision, library=library, config=config)


# --- open_clip ----------------------------------------------------------------------------------------
_PREPROCESS_WRITTEN = ("mean", "std", "interpolation", "resize_mode")
_TOKENIZER_KINDS = ("clip_bpe", "hf")


@dataclass(frozen=True)
class _OpenClipPlan:
    """What an open_clip export writes besides the weights, decided before anything is written."""

    model_cfg: dict[str, Any]
    hf_tokenizer: Any | None  # open_clip's HFTokenizer, whose files are saved into the folder


def _open_clip_tokenizer_error(loaded: LoadedModel, problem: str) -> ExportError:
    return ExportError(
        f"{loaded.spec.architecture}: {problem}. hubui never substitutes another model's tokenizer",
        hint="Load the model with its own tokenizer (for a Hugging Face tokenizer, make it reachable), then export.",
    )


def _plan_open_clip(loaded: LoadedModel, hf_tokenizer_repo: str | None) -> _OpenClipPlan:
    """Check the open_clip model's config and tokenizer, and decide the ``model_cfg`` to write."""
    import copy

    model_cfg = loaded.extra.get("model_cfg")
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("text_cfg", {}), dict):
        raise ExportError(
            f"{loaded.spec.architecture}: no open_clip model config (extra['model_cfg'])",
            hint="Load the model with hubui.loading so its config travels with it.",
        )
    model_cfg = copy.deepcopy(model_cfg)
    text_cfg: dict[str, Any] = model_cfg.setdefault("text_cfg", {})
    info = loaded.extra.get("tokenizer") or {}
    kind = info.get("kind")
    tokenizer = loaded.extra.get("tokenizer_obj")
    if kind not in _TOKENIZER_KINDS:
        raise _open_clip_tokenizer_error(loaded, f"unknown tokenizer kind {kind!r} (expected clip_bpe or hf)")
    hf_tokenizer = None
    if kind == "hf":
        inner = getattr(tokenizer, "tokenizer", None)
        if tokenizer is None or not callable(getattr(inner, "save_pretrained", None)):
            what = "not loaded" if tokenizer is None else f"a {type(tokenizer).__name__}, which has no files to save"
            raise _open_clip_tokenizer_error(loaded, f"the model uses a Hugging Face tokenizer, but it is {what}")
        name = text_cfg.get("hf_tokenizer_name") or info.get("hf_tokenizer_name")
        if not name:
            raise _open_clip_tokenizer_error(loaded, "the Hugging Face tokenizer has no name (hf_tokenizer_name)")
        # open_clip chooses its HFTokenizer only when text_cfg names one; keep that true in the written config.
        text_cfg["hf_tokenizer_name"] = name
        hf_tokenizer = tokenizer
    else:
        from open_clip.tokenizer import SimpleTokenizer

        if text_cfg.get("hf_tokenizer_name"):
            raise _open_clip_tokenizer_error(
                loaded, f"the config names the Hugging Face tokenizer {text_cfg['hf_tokenizer_name']!r}, not CLIP BPE"
            )
        if tokenizer is not None and not isinstance(tokenizer, SimpleTokenizer):
            # e.g. a SigLipTokenizer that open_clip picked by model *name*: no config can bring it back.
            raise _open_clip_tokenizer_error(
                loaded, f"its tokenizer is a {type(tokenizer).__name__}, which open_clip_config.json cannot describe"
            )
    if hf_tokenizer_repo is not None:
        if hf_tokenizer is None:
            raise InvalidInputError(
                f"{loaded.spec.architecture} uses the CLIP BPE tokenizer; hf_tokenizer_repo applies to Hugging Face "
                "tokenizers only",
                hint="Leave hf_tokenizer_repo unset.",
            )
        text_cfg["hf_tokenizer_name"] = _check_repo_id(hf_tokenizer_repo)
    # open_clip's own push script sets quick_gelu for the OpenAI weights, which need it; a model built with
    # QuickGELU but a config without it would be rebuilt with nn.GELU and compute something else.
    from open_clip.transformer import QuickGELU

    if not model_cfg.get("quick_gelu") and any(isinstance(m, QuickGELU) for m in loaded.model.modules()):
        logger.info("%s uses QuickGELU: writing quick_gelu=true into model_cfg", loaded.spec.architecture)
        model_cfg["quick_gelu"] = True
    return _OpenClipPlan(model_cfg=model_cfg, hf_tokenizer=hf_tokenizer)


def _check_repo_id(repo_id: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidInputError(f"Not a Hub repo id: {repo_id!r}", hint="Use the form 'namespace/name'.") from exc
    if repo_id.count("/") != 1:
        raise InvalidInputError(f"Not a Hub repo id: {repo_id!r}", hint="Use the form 'namespace/name'.")
    return repo_id


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return bool(a == b)


def _write_open_clip(loaded: LoadedModel, plan: _OpenClipPlan, precision: str, folder: Path) -> None:
    """Write open_clip_config.json (open_clip's own helper, plus the hubui record) and the tokenizer files."""
    import importlib

    from hubui import __version__

    if plan.hf_tokenizer is not None:
        try:
            plan.hf_tokenizer.tokenizer.save_pretrained(str(folder))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise _open_clip_tokenizer_error(loaded, f"its Hugging Face tokenizer could not be saved: {exc}") from exc
        if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
            raise _open_clip_tokenizer_error(loaded, "its Hugging Face tokenizer wrote no tokenizer files")
    path = folder / OPEN_CLIP_CONFIG_NAME
    # The reference script's helper: the format open_clip reads back. Importing the module is fine on
    # huggingface_hub 2.x; only its push function is broken there, and hubui does not call it.
    push_module = importlib.import_module("open_clip.push_to_hf_hub")
    push_module.save_config_for_hf(loaded.model, path, model_config=plan.model_cfg)
    config = json.loads(path.read_text(encoding="utf-8"))
    written = config.get("preprocess_cfg") or {}
    # The model's preprocess cfg (what save_config_for_hf reads) and LoadedModel.pretrained_cfg must agree:
    # parity preprocesses with the latter, users of the repo with the former.
    wanted = loaded.pretrained_cfg or {}
    for key in _PREPROCESS_WRITTEN:
        if wanted.get(key) is not None and not _same_value(wanted[key], written.get(key)):
            raise ExportError(
                f"{loaded.spec.architecture}: preprocessing {key!r} is {wanted[key]!r} in the loaded model's "
                f"config but {written.get(key)!r} on the model itself",
                hint="Set preprocessing overrides through hubui.loading (open_clip's image_mean/... arguments).",
            )
    fill = wanted.get("fill_color")
    if fill not in (None, 0):  # save_config_for_hf drops it; open_clip reads it back when present
        written["fill_color"] = fill
        config["preprocess_cfg"] = written
    record: dict[str, Any] = {
        "precision": precision,
        "version": __version__,
        "architecture": loaded.spec.architecture,
    }
    if loaded.label_names:
        record["label_names"] = list(loaded.label_names)
    config[HUBUI_CONFIG_KEY] = record
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def folder_library(folder: str | Path) -> str:
    """The library an export folder is for, from its config file.

    Args:
        folder: An export folder.

    Returns:
        ``"open_clip"`` when it holds open_clip_config.json, else ``"transformers"`` when its config.json names a
        ``model_type`` (:mod:`hubui.to_transformers`), else ``"timm"`` when it holds config.json.

    Raises:
        InvalidInputError: Neither config file is there.
    """
    folder = Path(folder)
    if (folder / OPEN_CLIP_CONFIG_NAME).is_file():
        return "open_clip"
    if (folder / CONFIG_NAME).is_file():
        # transformers configs name a model_type; timm's name an architecture.
        cfg = _read_json(folder / CONFIG_NAME)
        return "transformers" if "model_type" in cfg and "architecture" not in cfg else "timm"
    raise InvalidInputError(
        f"No {CONFIG_NAME} or {OPEN_CLIP_CONFIG_NAME} in {str(folder)!r}",
        hint="Pass the folder that export_model wrote.",
    )


def read_export_config(folder: str | Path) -> dict[str, Any]:
    """The config file of an export folder (config.json or open_clip_config.json), as a dict.

    Raises:
        InvalidInputError: The file is missing or not a JSON object.
    """
    path = Path(folder) / FILE_NAMES[folder_library(folder)][0]
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}", hint="Pass a folder written by export.") from exc
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{str(path)!r} is not a JSON object", hint="Pass a folder written by export.")
    return cfg


def hub_config_override(folder: str | Path, repo_id: str, hf_tokenizer_self: bool = False) -> dict[str, bytes]:
    """Config files to upload with different content than the folder's, for a push of ``folder`` to ``repo_id``.

    open_clip's ``hf_tokenizer_self``: the pushed ``open_clip_config.json`` names ``repo_id`` as the source of
    its Hugging Face tokenizer (whose files the folder holds), so ``open_clip.get_tokenizer("hf-hub:<repo>")``
    loads the tokenizer from the repo itself. The folder is not changed: its config keeps the original name,
    which open_clip's ``local-dir:`` loader ignores anyway (it always reads the tokenizer files in the folder).

    It also refuses a push whose config would name a tokenizer by a local path: open_clip would load it from
    that path on this machine only, so the repo would work here and nowhere else.

    Args:
        folder: An export folder.
        repo_id: The target repo.
        hf_tokenizer_self: Point the tokenizer at ``repo_id``.

    Returns:
        ``{file name: content}``; empty when the folder's files go up as they are.

    Raises:
        InvalidInputError: ``hf_tokenizer_self`` for a folder without a Hugging Face tokenizer (or without its
            files), or a tokenizer named by a local path without ``hf_tokenizer_self``.
    """
    library = folder_library(folder)
    if library != "open_clip":
        if hf_tokenizer_self:
            raise InvalidInputError("hf_tokenizer_self applies to open_clip models only", hint="Leave it off.")
        return {}
    config = read_export_config(folder)
    text_cfg = (config.get("model_cfg") or {}).get("text_cfg") or {}
    name = text_cfg.get("hf_tokenizer_name")
    if hf_tokenizer_self:
        has_files = any((Path(folder) / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json"))
        if not name or not has_files:
            raise InvalidInputError(
                f"{str(folder)!r} has no Hugging Face tokenizer to point at {repo_id!r} (it uses CLIP BPE)",
                hint="Push without hf_tokenizer_self.",
            )
        text_cfg["hf_tokenizer_name"] = _check_repo_id(repo_id)
        return {OPEN_CLIP_CONFIG_NAME: (json.dumps(config, indent=2) + "\n").encode("utf-8")}
    if name and _is_local_path(str(name)):
        raise InvalidInputError(
            f"The tokenizer of {str(folder)!r} is named by the local path {name!r}; a repo pushed like this "
            "loads only on this machine",
            hint="Push with hf_tokenizer_self, so the repo's own tokenizer files are used.",
        )
    return {}


def _is_local_path(name: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if Path(name).expanduser().exists():
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def read_export_precision(folder: str | Path) -> str | None:
    """The precision recorded in an export's config (config.json or open_clip_config.json), or None if hubui
    did not write it.

    Args:
        folder: An export folder.

    Returns:
        ``"fp32"``, ``"fp16"``, ``"bf16"`` or None.

    Raises:
        InvalidInputError: If the config is missing or not JSON.
    """
    cfg = read_export_config(folder)
    value = (cfg.get(HUBUI_CONFIG_KEY) or {}).get("precision")
    return value if isinstance(value, str) else None


def _finish(model: torch.nn.Module) -> torch.nn.Module:
    # timm loads fp16/bf16 tensors into an fp32 module (load_state_dict copies and casts), so the module is
    # already fp32; .float() keeps that true whatever a future loader does.
    return model.float().eval()


def rebuild_from_folder(folder: str | Path, library: str = "timm") -> torch.nn.Module:
    """Rebuild a model from an export folder with the library's own loader, in eval mode and fp32.

    For timm this is ``timm.create_model("local-dir:<folder>", pretrained=True)``: the same config parsing
    and strict ``load_state_dict`` that ``hf-hub:`` uses, minus the download. For open_clip it is
    ``open_clip.create_model_from_pretrained("local-dir:<folder>")`` and ``open_clip.get_tokenizer("local-dir:...")``;
    the tokenizer is attached to the returned model as ``model.hubui_tokenizer`` (:data:`TOKENIZER_ATTR`), so
    parity can check that the rebuilt tokenizer produces the same token ids as the original's. Both loaders run
    without the random initialisation their load overwrites (see :mod:`hubui._noinit`; a second, ordinary build
    follows if the loader leaves any such tensor unwritten).

    Args:
        folder: A folder written by :func:`export_model`.
        library: ``"timm"`` or ``"open_clip"``.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The folder or its config file is missing, or the library is unknown.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: The library could not build the model (or its tokenizer) for another reason.
    """
    _check_library(library)
    folder = Path(folder).expanduser().resolve()
    config_name = FILE_NAMES[library][0]
    if not (folder / config_name).is_file():
        raise InvalidInputError(
            f"No {config_name} in {str(folder)!r}",
            hint="Pass the folder that export_model wrote.",
        )
    if library == "open_clip":
        return _finish_open_clip(*_create_open_clip(f"local-dir:{folder}", str(folder)))
    if library == "transformers":
        from hubui.to_transformers import load_transformers

        return load_transformers(folder)
    return _finish(_create_timm(f"local-dir:{folder}", str(folder)))


def rebuild_from_hub(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    library: str = "timm",
    *,
    token: str | None = None,
) -> torch.nn.Module:
    """Rebuild a model from a Hub repo with the library's own loader, in eval mode and fp32.

    timm 1.0.31 takes a revision inside the model name (``hf-hub:owner/name@revision``, split by
    ``timm.models._hub.hf_split``) and ``cache_dir`` as an argument, so every revision goes through the
    real ``hf-hub:`` path that users run; no snapshot_download detour is needed.

    open_clip 3.3's ``hf-hub:`` loader takes ``cache_dir`` but no revision: it always reads the default branch
    (``download_pretrained_from_hf`` passes ``revision=None``). So for open_clip, with a ``revision``, hubui
    resolves it and main (with ``token``) and downloads that commit's snapshot into ``cache_dir`` (a cache hit
    after :func:`hubui.publishing.verify_push`'s own download), then:

    * If main points at that commit (a push to main), the real ``hf-hub:`` loaders run with ``cache_dir``. The
      commit is recorded as ``refs/main`` in that cache (what huggingface_hub itself writes after resolving
      main), so the loader reads that exact commit whether its own request for main succeeds (same commit) or
      is refused (a private repo and no token in the environment: it falls back to that ref). A tokenizer
      stored in the repo itself (``hf_tokenizer_self``) gets that commit and ``token`` passed through
      ``get_tokenizer``'s keyword arguments, because transformers does not fall back to the cache. Afterwards
      the ref is read again; if main moved meanwhile, the next case applies.
    * Otherwise (a branch, a PR, or main moved), no ``hf-hub:`` name reaches the commit, and the snapshot is
      rebuilt with open_clip's ``local-dir:`` loaders: the same config parsing and ``load_checkpoint``.

    The open_clip tokenizer is rebuilt the same way and attached as ``model.hubui_tokenizer``.

    Args:
        repo_id: ``"owner/name"``.
        revision: A branch, tag or commit; None for the default branch.
        cache_dir: Hugging Face cache folder; None for the default.
        library: ``"timm"`` or ``"open_clip"``.
        token: open_clip only: the token used to resolve ``revision`` and download its snapshot (private repos);
            None for ``HF_TOKEN`` / the login cache. The loaders themselves read only the environment.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The library is unknown, or ``repo_id`` / ``revision`` contain ``@``.
        ModelNotFoundError: The repo, revision, config or weights file does not exist.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: The library could not build the model for another reason.
    """
    _check_library(library)
    # hf_split allows exactly one '@', as the revision separator.
    if "@" in repo_id or (revision is not None and "@" in revision):
        raise InvalidInputError(
            f"'@' is not allowed in a repo id or revision: {repo_id!r} {revision!r}",
            hint="Pass the revision separately, without '@'.",
        )
    where = f"{repo_id}@{revision or 'main'}"
    if library == "open_clip":
        return _finish_open_clip(*_open_clip_from_hub(repo_id, revision, cache_dir, token, where))
    if library == "transformers":
        from hubui.to_transformers import load_transformers

        return load_transformers(repo_id, revision=revision, cache_dir=cache_dir, token=token)
    name = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    return _finish(_create_timm(name, where, cache_dir=cache_dir))


def _check_library(library: str) -> None:
    if library not in FILE_NAMES:
        raise InvalidInputError(
            f"Rebuilding library {library!r} is not supported", hint=f"Use one of: {', '.join(FILE_NAMES)}."
        )


def _create_timm(name: str, where: str, cache_dir: str | Path | None = None) -> torch.nn.Module:
    import timm
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return without_random_init(lambda: timm.create_model(name, pretrained=True, cache_dir=cache_dir), where)
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


def _finish_open_clip(model: torch.nn.Module, tokenizer: Any) -> torch.nn.Module:
    model = _finish(model)
    # A plain attribute (not a submodule): the tokenizer travels with the model into parity.
    setattr(model, TOKENIZER_ATTR, tokenizer)
    return model


def _translate_open_clip(exc: Exception, where: str, what: str) -> ModelError | HubUnreachableError:
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    chain = exception_chain(exc)
    text = "; ".join(dict.fromkeys(str(e).splitlines()[0][:300] for e in chain if str(e)))
    if any(isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError)) for e in chain):
        return ModelNotFoundError(
            f"{where!r} has no open_clip {what} there: {text}",
            hint="Check the repo id and revision, and that the repo has open_clip_config.json and "
            "open_clip_model.safetensors.",
        )
    if any(isinstance(e, (HfHubHTTPError, httpx2.TransportError)) for e in chain):
        return HubUnreachableError(f"Could not download the open_clip {what} of {where!r}: {text}")
    if "size mismatch" in text or "Missing key" in text or "Unexpected key" in text or "state_dict" in text:
        return CheckpointMismatchError(f"The weights in {where!r} don't fit their config: {text}")
    if "Required pretrained weights" in text:
        return ModelNotFoundError(
            f"{where!r} has no open_clip weights file: {text}",
            hint="The folder or repo needs open_clip_model.safetensors next to open_clip_config.json.",
        )
    return ModelError(f"open_clip could not rebuild the {what} of {where!r}: {text}")


def _create_open_clip(
    name: str, where: str, cache_dir: str | Path | None = None, tokenizer_kwargs: dict[str, Any] | None = None
) -> tuple[torch.nn.Module, Any]:
    """open_clip's own loaders for ``name`` (``local-dir:...`` or ``hf-hub:...``): the model and its tokenizer."""
    import open_clip

    cache = str(cache_dir) if cache_dir is not None else None
    try:
        model = without_random_init(
            lambda: open_clip.create_model_from_pretrained(name, cache_dir=cache, return_transform=False), where
        )
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        raise _translate_open_clip(exc, where, "model") from exc
    try:
        tokenizer = open_clip.get_tokenizer(name, cache_dir=cache, **(tokenizer_kwargs or {}))
    except (RuntimeError, ValueError, KeyError, TypeError, OSError, ImportError) as exc:
        raise _translate_open_clip(exc, where, "tokenizer") from exc
    return model, tokenizer


def _open_clip_from_hub(
    repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None, where: str
) -> tuple[torch.nn.Module, Any]:
    """See :func:`rebuild_from_hub`: open_clip's ``hf-hub:`` loader when it can reach ``revision``, else the exact
    snapshot through ``local-dir:``."""
    name = f"hf-hub:{repo_id}"
    if revision is None:
        return _create_open_clip(name, where, cache_dir)
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api = HfApi(token=token)
        target = api.model_info(repo_id, revision=revision).sha
        head = api.model_info(repo_id).sha
    except (HfHubHTTPError, httpx2.TransportError) as exc:
        raise _translate_open_clip(exc, where, "model") from exc
    if target is None:
        raise ModelNotFoundError(f"{where!r} does not resolve to a commit")
    # The commit's files in the cache first, with the caller's token: the local-dir route reads them, and the
    # hf-hub route falls back to them when its own request is refused.
    snapshot = _snapshot(repo_id, target, cache_dir, token, where)
    if target != head:
        logger.info("open_clip's hf-hub: loader reads main only; rebuilding %s from its snapshot %s", where, target)
        return _create_open_clip(f"local-dir:{snapshot}", where)
    refs = Path(snapshot).parents[1] / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(target, encoding="utf-8")
    text_cfg = (_read_json(Path(snapshot) / OPEN_CLIP_CONFIG_NAME).get("model_cfg") or {}).get("text_cfg") or {}
    tokenizer_kwargs: dict[str, Any] = {}
    if text_cfg.get("hf_tokenizer_name") == repo_id:
        # hf_tokenizer_self: transformers reads the tokenizer from this repo; at this commit, with this token
        # (it does not fall back to the cache when a private repo refuses it).
        tokenizer_kwargs = {"revision": target, **({"token": token} if token else {})}
    cache = cache_dir if cache_dir is not None else Path(snapshot).parents[2]
    model, tokenizer = _create_open_clip(name, where, cache, tokenizer_kwargs)
    if (refs / "main").read_text(encoding="utf-8").strip() == target:
        return model, tokenizer
    logger.warning("main of %s moved while it was loaded; rebuilding %s from its snapshot", repo_id, target)
    return _create_open_clip(f"local-dir:{snapshot}", where)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _snapshot(repo_id: str, commit: str, cache_dir: str | Path | None, token: str | None, where: str) -> str:
    import httpx2
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return snapshot_download(
            repo_id, revision=commit, cache_dir=str(cache_dir) if cache_dir is not None else None, token=token
        )
    except (HfHubHTTPError, httpx2.TransportError, OSError) as exc:
        raise _translate_open_clip(exc, where, "model") from exc


__all__ = [
    "CONFIG_NAME",
    "DTYPES",
    "FILE_NAMES",
    "OPEN_CLIP_CONFIG_NAME",
    "OPEN_CLIP_PICKLE_WEIGHTS_NAME",
    "OPEN_CLIP_SAFE_WEIGHTS_NAME",
    "PICKLE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_NAME",
    "TOKENIZER_ATTR",
    "ExportResult",
    "cast_state_dict",
    "check_precision",
    "export_model",
    "folder_library",
    "hub_config_override",
    "read_export_config",
    "read_export_precision",
    "rebuild_from_folder",
    "rebuild_from_hub",
    "staged_folder",
]
