"""Write a timm model as the folder ``timm.create_model("hf-hub:...")`` reads, and rebuild it with timm's loader.

The folder format and why its weights are never sharded: see :mod:`hubui.libraries.timm`. Part of that module
(its ``export``, ``rebuild_from_folder`` and ``rebuild_from_hub``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import (
    CheckpointMismatchError,
    ExportError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
)
from hubui.libraries.base import ExportOptions, FolderFiles

if TYPE_CHECKING:
    import torch

    from hubui.spec import ExportResult, LoadedModel

FILES = FolderFiles("config.json", "model.safetensors", "pytorch_model.bin")
"""The names timm's ``hf-hub:`` and ``local-dir:`` loaders look for."""


def export_timm(loaded: LoadedModel, out_dir: Path, options: ExportOptions) -> ExportResult:
    """Write ``loaded`` as a timm folder (see :meth:`hubui.libraries.timm.TimmLibrary.export`).

    Raises:
        InvalidInputError: ``hf_tokenizer_repo`` is set, or label names don't fit the classifier.
        ExportError: ``out_dir`` may not be written, timm cannot describe the model, or a write failed.
    """
    from hubui.export_folder import write_folder
    from hubui.outdir import check_out_dir

    if options.hf_tokenizer_repo is not None:
        raise InvalidInputError("hf_tokenizer_repo applies to open_clip models only", hint="Leave it unset.")
    _check_labels(loaded)
    out_dir = check_out_dir(out_dir, options.overwrite)

    def write_config(staging: Path) -> None:
        _timm_config(loaded, options.precision, staging / FILES.config)

    return write_folder(loaded, out_dir, FILES, options, write_config, "timm")


def _timm_config(loaded: LoadedModel, precision: str, config_path: Path) -> None:
    """Write config.json with timm's own helper (its format; hubui validates before calling it)."""
    from timm.models._hub import save_config_for_hf
    from timm.models._pretrained import filter_pretrained_cfg

    from hubui import __version__
    from hubui.export_folder import HUBUI_CONFIG_KEY

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


def rebuild_folder(folder: str | Path) -> torch.nn.Module:
    """``timm.create_model("local-dir:<folder>", pretrained=True)``, in eval mode and fp32.

    The same config parsing and strict ``load_state_dict`` that ``hf-hub:`` uses, minus the download, run
    without the random initialisation the load overwrites (:mod:`hubui._noinit`).

    Raises:
        InvalidInputError: The folder has no config.json.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: timm could not build the model for another reason.
    """
    from hubui.export_folder import finish

    folder = Path(folder).expanduser().resolve()
    if not (folder / FILES.config).is_file():
        raise InvalidInputError(
            f"No {FILES.config} in {str(folder)!r}",
            hint="Pass the folder that export_model wrote.",
        )
    return finish(_create_timm(f"local-dir:{folder}", str(folder)))


def rebuild_hub(repo_id: str, revision: str | None, cache_dir: str | Path | None) -> torch.nn.Module:
    """``timm.create_model("hf-hub:<repo_id>@<revision>", pretrained=True, cache_dir=...)``, eval and fp32.

    timm 1.0.31 takes a revision inside the model name (``hf-hub:owner/name@revision``, split by
    ``timm.models._hub.hf_split``) and ``cache_dir`` as an argument, so every revision goes through the
    real ``hf-hub:`` path that users run; no snapshot_download detour is needed. timm's loader reads the token
    from the environment only.

    Raises:
        ModelNotFoundError: The repo, revision, config or weights file does not exist.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: timm could not build the model for another reason.
    """
    from hubui.export_folder import finish

    where = f"{repo_id}@{revision or 'main'}"
    name = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    return finish(_create_timm(name, where, cache_dir=cache_dir))


def _create_timm(name: str, where: str, cache_dir: str | Path | None = None) -> torch.nn.Module:
    import timm
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from hubui._noinit import without_random_init

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


__all__ = ["FILES", "export_timm", "rebuild_folder", "rebuild_hub"]
