"""Rebuild an open_clip export with open_clip's own loaders, from a folder or from the Hub, tokenizer included.

The tokenizer is rebuilt with the model and attached to it as ``model.hubui_tokenizer``
(:data:`~hubui.libraries.open_clip_names.TOKENIZER_ATTR`), so parity can check that the rebuilt tokenizer
produces the same token ids as the original's. The loaders run without the random initialisation their load
overwrites (see :mod:`hubui._noinit`; a second, ordinary build follows if the loader leaves any such tensor
unwritten).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import (
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
    exception_chain,
)
from hubui.libraries.open_clip_names import OPEN_CLIP_CONFIG_NAME, TOKENIZER_ATTR

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def rebuild_from_folder(folder: str | Path) -> torch.nn.Module:
    """Rebuild a model from an open_clip export folder with open_clip's own loaders, in eval mode and fp32.

    This is ``open_clip.create_model_from_pretrained("local-dir:<folder>")`` and
    ``open_clip.get_tokenizer("local-dir:...")``; the tokenizer is attached to the returned model as
    ``model.hubui_tokenizer``.

    Args:
        folder: A folder written by :func:`hubui.libraries.open_clip_export.export`.

    Returns:
        The module, on CPU.

    Raises:
        InvalidInputError: The folder or its open_clip_config.json is missing.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: open_clip could not build the model (or its tokenizer) for another reason.
    """
    folder = Path(folder).expanduser().resolve()
    if not (folder / OPEN_CLIP_CONFIG_NAME).is_file():
        raise InvalidInputError(
            f"No {OPEN_CLIP_CONFIG_NAME} in {str(folder)!r}",
            hint="Pass the folder that export_model wrote.",
        )
    return _finish_open_clip(*_create_open_clip(f"local-dir:{folder}", str(folder)))


def rebuild_from_hub(
    repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None
) -> torch.nn.Module:
    """Rebuild a model from a Hub repo with open_clip's own loaders, in eval mode and fp32.

    open_clip 3.3's ``hf-hub:`` loader takes ``cache_dir`` but no revision: it always reads the default branch
    (``download_pretrained_from_hf`` passes ``revision=None``). So with a ``revision``, hubui resolves it and
    main (with ``token``) and downloads that commit's snapshot into ``cache_dir`` (a cache hit after
    :func:`hubui.publishing.verify_push`'s own download), then:

    * If main points at that commit (a push to main), the real ``hf-hub:`` loaders run with ``cache_dir``. The
      commit is recorded as ``refs/main`` in that cache (what huggingface_hub itself writes after resolving
      main), so the loader reads that exact commit whether its own request for main succeeds (same commit) or
      is refused (a private repo and no token in the environment: it falls back to that ref). A tokenizer
      stored in the repo itself (``hf_tokenizer_self``) gets that commit and ``token`` passed through
      ``get_tokenizer``'s keyword arguments, because transformers does not fall back to the cache. Afterwards
      the ref is read again; if main moved meanwhile, the next case applies.
    * Otherwise (a branch, a PR, or main moved), no ``hf-hub:`` name reaches the commit, and the snapshot is
      rebuilt with open_clip's ``local-dir:`` loaders: the same config parsing and ``load_checkpoint``.

    The tokenizer is rebuilt the same way and attached as ``model.hubui_tokenizer``.

    Args:
        repo_id: ``"owner/name"`` (already checked for ``@`` by the caller).
        revision: A branch, tag or commit; None for the default branch.
        cache_dir: Hugging Face cache folder; None for the default.
        token: The token used to resolve ``revision`` and download its snapshot (private repos); None for
            ``HF_TOKEN`` / the login cache. The loaders themselves read only the environment.

    Returns:
        The module, on CPU.

    Raises:
        ModelNotFoundError: The repo, revision, config or weights file does not exist.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights don't fit the architecture in the config.
        ModelError: open_clip could not build the model for another reason.
    """
    where = f"{repo_id}@{revision or 'main'}"
    return _finish_open_clip(*_open_clip_from_hub(repo_id, revision, cache_dir, token, where))


def _finish_open_clip(model: torch.nn.Module, tokenizer: Any) -> torch.nn.Module:
    from hubui.export_folder import finish

    model = finish(model)
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

    from hubui._noinit import without_random_init

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

    from hubui.export_folder import read_json

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
    text_cfg = (read_json(Path(snapshot) / OPEN_CLIP_CONFIG_NAME).get("model_cfg") or {}).get("text_cfg") or {}
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


__all__ = ["rebuild_from_folder", "rebuild_from_hub"]
