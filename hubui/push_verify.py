"""After a push: download the pushed commit again and prove that it still reproduces the original's outputs."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
from huggingface_hub.errors import HfHubHTTPError

from hubui import auth
from hubui.errors import HubUIError, HubUnreachableError
from hubui.push_retry import RetryPolicy, _not_retried_by_hf_hub, _retrying
from hubui.push_types import PushResult, Verification

if TYPE_CHECKING:
    from hubui.libraries.base import Format
    from hubui.parity import ParityReport, Tolerance
    from hubui.parity.kept import KeptReference
    from hubui.spec import LoadedModel

# The logger of hubui.publishing, whose job this was: logging settings made for it keep working.
logger = logging.getLogger("hubui.publishing")


def verify_push(
    result: PushResult,
    reference: LoadedModel,
    precision: str,
    *,
    token: str | None = None,
    tolerance: Tolerance | None = None,
    images: tuple[Any, ...] = (),
    on_report: Callable[[ParityReport], None] | None = None,
    kept: KeptReference | None = None,
    folder: str | Path | None = None,
) -> Verification:
    """Download the pushed commit into a fresh cache, rebuild it with the library's ``hf-hub:`` loader,
    and run parity against ``reference`` again.

    The download goes through huggingface_hub with the caller's token (private repos work without
    touching the process environment); the library's own ``hf-hub:`` loader then resolves the exact
    commit from that cache.

    Args:
        result: What :func:`hubui.publishing.push` returned.
        reference: The model to compare with: the original, or the local folder rebuilt.
        precision: Picks the tolerance preset (use ``"fp32"`` when ``reference`` has the same weights).
        token: The token used to push; ``None`` falls back to ``HF_TOKEN`` / the login cache.
        tolerance: Overrides the preset.
        images: The user's extra parity images.
        on_report: Receives each partial parity report, for live display.
        kept: The original's outputs kept by the conversion (:func:`hubui.parity.kept.read_kept`): the
            re-downloaded model is compared with them, ``reference`` being ``kept.as_loaded()`` (no model), and
            its weights with ``folder``'s own (bit for bit). Only a failure's module search loads a model: the
            folder, rebuilt.
        folder: The local folder that was pushed: with ``kept``, its weights are the ones compared; with a
            released ``reference`` (``ConvertResult.loaded`` of a conversion) and no ``kept``, its kept outputs
            are read from it.

    Raises:
        ModelReleasedError: ``reference`` was released and there are no kept outputs to compare with.

    Returns:
        ``passed`` or ``failed`` with the report, or ``not completed`` when the re-download itself
        could not run (the push has still landed).
    """
    from huggingface_hub import snapshot_download

    from hubui.export import rebuild_from_hub
    from hubui.libraries import folder_format
    from hubui.parity.kept import read_kept
    from hubui.released import ModelReleasedError, is_released

    if kept is None and is_released(reference):
        kept = read_kept(folder) if folder is not None else None
        if kept is None:
            raise ModelReleasedError(
                f"The original {reference.spec.architecture} model was released and no kept outputs were given",
                "Pass folder= (the converted folder, which keeps the original's outputs), or convert with "
                "ConvertOptions(keep_original=True).",
            )
    where = f"{result.repo_id}@{result.commit_oid[:10]}"
    with tempfile.TemporaryDirectory(prefix="hubui-verify-") as cache:

        def download() -> tuple[str, Format, Any]:
            snapshot = snapshot_download(
                result.repo_id,
                revision=result.commit_oid,
                cache_dir=cache,
                token=secret,
                endpoint=auth.endpoint(),
            )
            # The pushed folder's own format rebuilds it (a converted folder with its target library's loader).
            fmt = folder_format(snapshot)
            rebuilt = rebuild_from_hub(
                result.repo_id, revision=result.commit_oid, cache_dir=cache, library=fmt.name, token=secret
            )
            return snapshot, fmt, rebuilt

        try:
            secret = auth.resolve_token(token)
            policy = RetryPolicy.from_env()
            snapshot, fmt, rebuilt = _retrying(
                download, "verification download", policy, lambda _m: None, _not_retried_by_hf_hub
            )
        except (httpx2.TransportError, HubUnreachableError, HfHubHTTPError, OSError) as exc:
            logger.warning("Verification of %s not completed: %s", where, type(exc).__name__)
            return Verification("not completed", f"Could not re-download {where}: {_short(exc)}. The push landed.")
        report = None
        if kept is not None and folder is not None:
            reports = _against_kept(fmt, reference, rebuilt, precision, tolerance, kept, Path(folder), snapshot)
        else:
            reports = fmt.iter_parity(reference, rebuilt, precision, tolerance, images, folder=snapshot)
        for report in reports:
            if on_report is not None:
                on_report(report)
    if report is None:
        return Verification("not completed", "The verification produced no parity report.")
    parity = report.to_dict()
    if report.verdict == "pass":
        return Verification("passed", f"{where}, downloaded again, reproduces the original's outputs.", parity)
    return Verification("failed", f"{where}, downloaded again, does not reproduce the original's outputs.", parity)


def _against_kept(
    fmt: Format,
    reference: LoadedModel,
    rebuilt: Any,
    precision: str,
    tolerance: Tolerance | None,
    kept: KeptReference,
    folder: Path,
    snapshot: str,
) -> Iterator[ParityReport]:
    from hubui.export import read_export_config
    from hubui.parity.kept import FileWeights
    from hubui.parity.weights import compare_weights
    from hubui.shards import weights_path

    weights = compare_weights(
        FileWeights(weights_path(folder, fmt.files)), weights_path(snapshot, fmt.files), precision
    )

    def reload() -> LoadedModel:
        return fmt.reference_from_folder(folder, read_export_config(folder))

    return fmt.iter_parity(reference, rebuilt, precision, tolerance, reference=kept, weights=weights, reload=reload)


def _short(exc: Exception) -> str:
    text = exc.message if isinstance(exc, HubUIError) else (str(exc) or type(exc).__name__)
    return text.splitlines()[0][:300]


__all__ = ["verify_push"]
