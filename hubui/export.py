"""Write a model to a Hub folder in a library's own format, and rebuild it with that library's loader.

Each format is a module of :mod:`hubui.libraries` (its docstring says what the folder holds and what the
library's loader needs). Every format records the precision the weights were saved in under a top-level
``"hubui"`` key of its config (``{"hubui": {"precision": "fp16", "version": ...}}``), and every folder is written by
:func:`hubui.export_folder.write_folder`: staged next to ``out_dir`` and renamed into place only when every file is
written, so a failed export never leaves a folder that looks complete.

This module is what the pipeline, the CLI and the notebooks call: it checks what is the same for every format,
then asks the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import InvalidInputError
from hubui.export_folder import (
    DTYPES,
    HUBUI_CONFIG_KEY,
    cast_state_dict,
    check_precision,
    read_config_file,
    read_precision,
    staged_folder,
)
from hubui.libraries import DEFAULT_SOURCE, folder_format, get_format, target_format
from hubui.libraries.base import ExportOptions, ExportProgress
from hubui.spec import ExportResult, LoadedModel

if TYPE_CHECKING:
    import torch

ProgressFn = ExportProgress

# Library-specific names that lived here before hubui.libraries; kept as aliases for one release.
_MOVED = frozenset(
    {
        "CONFIG_NAME",
        "SAFE_WEIGHTS_NAME",
        "PICKLE_WEIGHTS_NAME",
        "OPEN_CLIP_CONFIG_NAME",
        "OPEN_CLIP_SAFE_WEIGHTS_NAME",
        "OPEN_CLIP_PICKLE_WEIGHTS_NAME",
        "TOKENIZER_ATTR",
    }
)


def __getattr__(name: str) -> Any:
    if name == "FILE_NAMES":
        from hubui.libraries import format_names

        return {n: (f.config, f.weights, f.pickle) for n in format_names() for f in (get_format(n).files,)}
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from hubui.libraries import find_attribute

    return find_attribute(name)


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
    """Write ``loaded`` as a Hub folder in its library's own (native) format.

    Args:
        loaded: The model to export (its module is not modified).
        out_dir: The folder to create. Must not exist or be empty, unless ``overwrite`` and it holds an earlier
            hubui export (see :mod:`hubui.outdir`).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``. Every floating tensor is saved in exactly this
            dtype; integer buffers keep theirs. The config records it under ``"hubui"``.
        include_pytorch_bin: Also write the format's pickle weights file (``pytorch_model.bin``...), for old
            loaders.
        progress: Optional ``progress(message, fraction)`` callback.
        overwrite: Replace an earlier hubui export in ``out_dir``; a folder holding anything else is refused.
        hf_tokenizer_repo: Formats with a Hugging Face tokenizer only: the repo the tokenizer will be
            loaded from, normally the repo this folder is pushed to. When the repo is only known at push time,
            push with ``PushRequest(hf_tokenizer_self=True)`` instead.

    Returns:
        An ExportResult listing the files written.

    Raises:
        InvalidInputError: Unknown precision or library, label names that don't fit the classifier, or
            ``hf_tokenizer_repo`` for a model without a Hugging Face tokenizer (or not a repo id).
        ExportError: ``out_dir`` is not empty (without ``overwrite``), is not an earlier export (with it), is the
            current directory, a folder above it or home, the model's tokenizer can't be written, or writing
            failed (nothing is left at ``out_dir`` in that case).

    Example:
        >>> result = export_model(loaded, "out/resnet50", precision="fp16")  # doctest: +SKIP
        >>> [name for name, _ in result.files]  # doctest: +SKIP
        ['config.json', 'model.safetensors']
    """
    check_precision(precision)
    fmt = target_format(loaded.spec.library)
    options = ExportOptions(precision, include_pytorch_bin, overwrite, hf_tokenizer_repo, progress)
    return fmt.export(loaded, Path(out_dir), options)


def folder_library(folder: str | Path) -> str:
    """The format an export folder is in, from its config file.

    Args:
        folder: An export folder.

    Returns:
        The registry name of the format (:func:`hubui.libraries.folder_format`).

    Raises:
        InvalidInputError: No format's config file is there.
    """
    return folder_format(folder).name


def read_export_config(folder: str | Path) -> dict[str, Any]:
    """The config file of an export folder (its format's ``files.config``), as a dict.

    Raises:
        InvalidInputError: The file is missing or not a JSON object.
    """
    return read_config_file(Path(folder) / folder_format(folder).files.config)


def hub_config_override(folder: str | Path, repo_id: str, hf_tokenizer_self: bool = False) -> dict[str, bytes]:
    """Config files to upload with different content than the folder's, for a push of ``folder`` to ``repo_id``.

    A format with a Hugging Face tokenizer points the pushed config at ``repo_id`` (``hf_tokenizer_self``), so the
    library loads the tokenizer from the repo itself; the folder is not changed. It also refuses a push whose
    config would name a tokenizer by a local path (it would load on this machine only).

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
    return folder_format(folder).hub_config_override(Path(folder), repo_id, hf_tokenizer_self)


def read_export_precision(folder: str | Path) -> str | None:
    """The precision recorded in an export's config, or None if hubui did not write it.

    Args:
        folder: An export folder.

    Returns:
        ``"fp32"``, ``"fp16"``, ``"bf16"`` or None.

    Raises:
        InvalidInputError: If the config is missing or not JSON.
    """
    return read_precision(read_export_config(folder))


def rebuild_from_folder(folder: str | Path, library: str = DEFAULT_SOURCE) -> torch.nn.Module:
    """Rebuild a model from an export folder with the format's own loader, in eval mode and fp32.

    Each format's ``rebuild_from_folder`` uses the library's ``local-dir:`` (or ``from_pretrained``) loader: the
    same config parsing and strict ``load_state_dict`` its ``hf-hub:`` path uses, minus the download, and without
    the random initialisation the load overwrites (see :mod:`hubui._noinit`).

    Args:
        folder: A folder written by :func:`export_model`.
        library: The folder's format (:func:`hubui.libraries.format_names`).

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The folder or its config file is missing, or the library is unknown.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: The library could not build the model (or its tokenizer) for another reason.
    """
    fmt = get_format(library)
    folder = Path(folder).expanduser().resolve()
    if not (folder / fmt.files.config).is_file():
        raise InvalidInputError(
            f"No {fmt.files.config} in {str(folder)!r}", hint="Pass the folder that export_model wrote."
        )
    return fmt.rebuild_from_folder(folder)


def rebuild_from_hub(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    library: str = DEFAULT_SOURCE,
    *,
    token: str | None = None,
) -> torch.nn.Module:
    """Rebuild a model from a Hub repo with the format's own ``hf-hub:`` loader, in eval mode and fp32.

    Every revision goes through the loader users run; where a library's loader cannot take a revision, its module
    says what it does instead.

    Args:
        repo_id: ``"owner/name"``.
        revision: A branch, tag or commit; None for the default branch.
        cache_dir: Hugging Face cache folder; None for the default.
        library: The repo's format (:func:`hubui.libraries.format_names`).
        token: For formats that download with huggingface_hub themselves (private repos); None for ``HF_TOKEN`` /
            the login cache.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The library is unknown, or ``repo_id`` / ``revision`` contain ``@``.
        ModelNotFoundError: The repo, revision, config or weights file does not exist.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: The library could not build the model for another reason.
    """
    fmt = get_format(library)
    # Loaders split a revision at the one '@' of the name (timm's hf_split): refuse any other.
    if "@" in repo_id or (revision is not None and "@" in revision):
        raise InvalidInputError(
            f"'@' is not allowed in a repo id or revision: {repo_id!r} {revision!r}",
            hint="Pass the revision separately, without '@'.",
        )
    return fmt.rebuild_from_hub(repo_id, revision, cache_dir, token)


__all__ = [
    "DTYPES",
    "HUBUI_CONFIG_KEY",
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
