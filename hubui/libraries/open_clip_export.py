"""Write an open_clip model as the Hub folder open_clip's own ``hf-hub:`` loaders read.

The folder is what ``open_clip.create_model_from_pretrained("hf-hub:...")`` and
``open_clip.get_tokenizer("hf-hub:...")`` expect: ``open_clip_config.json`` (``model_cfg`` plus
``preprocess_cfg``, written by open_clip's own ``push_to_hf_hub.save_config_for_hf``),
``open_clip_model.safetensors`` (plus ``open_clip_pytorch_model.bin`` only when asked) and, for a Hugging Face
tokenizer, its files (``tokenizer.json``, ``tokenizer_config.json``...). The precision sits under the top-level
``"hubui"`` key, which open_clip's loaders ignore (they read only ``model_cfg`` and ``preprocess_cfg``). The
default CLIP BPE tokenizer needs no file: open_clip rebuilds it from ``model_cfg.text_cfg`` (``context_length``,
``tokenizer_kwargs``), which is written whole. Unlike open_clip's ``push_to_hf_hub``, hubui never substitutes
another model's tokenizer: a tokenizer it cannot write is an :class:`~hubui.errors.ExportError`.

Every check on the tokenizer and the config (:func:`_plan_open_clip`) runs before the folder is checked and any
weight is written; :func:`hubui.export_folder.write_folder` then writes the weights and calls
:func:`_write_open_clip` for the config and the tokenizer files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubui.errors import ExportError, InvalidInputError
from hubui.libraries.base import ExportOptions, FolderFiles
from hubui.libraries.open_clip_names import (
    OPEN_CLIP_CONFIG_NAME,
    OPEN_CLIP_PICKLE_WEIGHTS_NAME,
    OPEN_CLIP_SAFE_WEIGHTS_NAME,
)
from hubui.spec import ExportResult, LoadedModel

logger = logging.getLogger(__name__)

FILES = FolderFiles(OPEN_CLIP_CONFIG_NAME, OPEN_CLIP_SAFE_WEIGHTS_NAME, OPEN_CLIP_PICKLE_WEIGHTS_NAME)


def export(loaded: LoadedModel, out_dir: str | Path, options: ExportOptions) -> ExportResult:
    """Write ``loaded`` as an open_clip Hub folder at ``out_dir``.

    Args:
        loaded: The open_clip model, as :func:`hubui.loading.load_model` loads it (its module is not modified).
        out_dir: The folder to create (see :func:`hubui.outdir.check_out_dir`).
        options: Precision, pickle, overwrite, progress and ``hf_tokenizer_repo``: for a Hugging Face
            tokenizer, the repo the tokenizer will be loaded from (``model_cfg.text_cfg.hf_tokenizer_name``),
            normally the repo this folder is pushed to (open_clip's ``hf_tokenizer_self``).

    Returns:
        The :class:`~hubui.spec.ExportResult`.

    Raises:
        InvalidInputError: ``hf_tokenizer_repo`` for a model without a Hugging Face tokenizer (or not a repo id).
        ExportError: No open_clip config, a tokenizer that cannot be written, ``out_dir`` refused, or a failed
            write (nothing is left at ``out_dir`` then).
    """
    from hubui.export_folder import write_folder
    from hubui.outdir import check_out_dir

    # Everything about the tokenizer and the config is checked before any multi-GB write.
    plan = _plan_open_clip(loaded, options.hf_tokenizer_repo)
    folder = check_out_dir(out_dir, options.overwrite)
    return write_folder(
        loaded,
        folder,
        FILES,
        options,
        lambda staging: _write_open_clip(loaded, plan, options.precision, staging),
        "open_clip",
    )


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
    from hubui.export_folder import HUBUI_CONFIG_KEY

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


def hub_config_override(folder: str | Path, repo_id: str, hf_tokenizer_self: bool = False) -> dict[str, bytes]:
    """Config files to upload with different content than the folder's, for a push of ``folder`` to ``repo_id``.

    open_clip's ``hf_tokenizer_self``: the pushed ``open_clip_config.json`` names ``repo_id`` as the source of
    its Hugging Face tokenizer (whose files the folder holds), so ``open_clip.get_tokenizer("hf-hub:<repo>")``
    loads the tokenizer from the repo itself. The folder is not changed: its config keeps the original name,
    which open_clip's ``local-dir:`` loader ignores anyway (it always reads the tokenizer files in the folder).

    It also refuses a push whose config would name a tokenizer by a local path: open_clip would load it from
    that path on this machine only, so the repo would work here and nowhere else.

    Args:
        folder: An open_clip export folder.
        repo_id: The target repo.
        hf_tokenizer_self: Point the tokenizer at ``repo_id``.

    Returns:
        ``{file name: content}``; empty when the folder's files go up as they are.

    Raises:
        InvalidInputError: The config is missing or not a JSON object, ``hf_tokenizer_self`` for a folder
            without a Hugging Face tokenizer (or without its files), or a tokenizer named by a local path
            without ``hf_tokenizer_self``.
    """
    config = _read_config(Path(folder))
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


def _read_config(folder: Path) -> dict[str, Any]:
    """The folder's open_clip_config.json (what ``hubui.export.read_export_config`` reads)."""
    from hubui.export_folder import read_config_file

    return read_config_file(folder / OPEN_CLIP_CONFIG_NAME)


__all__ = ["FILES", "export", "hub_config_override"]
