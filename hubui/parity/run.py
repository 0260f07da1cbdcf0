"""Running parity: streamed batch by batch, cancellable, ending in a verdict."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from hubui.errors import InvalidInputError
from hubui.export import read_export_precision, rebuild_from_folder
from hubui.export_folder import check_precision
from hubui.libraries import get_format
from hubui.parity.divergence import _first_weight_owner, find_diverging_module
from hubui.parity.inputs import ParityInputs, build_parity_inputs
from hubui.parity.kept import KeptReference
from hubui.parity.metrics import (
    Tolerance,
    _OutputAccumulator,
    _ShapeMismatch,
    check_output,
    tolerance_preset,
)
from hubui.parity.report import SAMPLE_LIMIT, ParityReport, library_versions
from hubui.parity.weights import WeightComparison, check_weights, compare_weights
from hubui.released import is_released
from hubui.spec import LoadedModel

logger = logging.getLogger(__name__)


# --- running ----------------------------------------------------------------------------------------
# Forward-pass working memory per input value of a batch, measured on CPU (torch 2.15, oneDNN) under
# inference_mode: resnet50 at 3x224x224 peaks about 20 MB above its weights per image (25 MB at batch 1,
# 45 MB at 2, 85 MB at 4), i.e. ~135 bytes per input value; ViTs need less. Convnets are the worst case.
_WORKING_BYTES_PER_INPUT_VALUE = 160
# Parity holds both models (2x the weights); the forward passes may add about a fifth of the weights more.
_WORKING_BUDGET_OF_WEIGHTS = 0.2
MAX_AUTO_BATCH_SIZE = 4
# An automatic batch size leaves parity at least this many batches, so its progress moves in steps a person sees
# (ViT-B-32's 8 images at 4 a batch went 0 -> 1/2 -> done); a batch size asked for is used as it is.
MIN_PARITY_STEPS = 4


def auto_batch_size(model: torch.nn.Module, input_shape: Sequence[int]) -> int:
    """The parity batch size used when none is given: the largest up to :data:`MAX_AUTO_BATCH_SIZE` whose
    forward-pass working memory stays within about a fifth of the model's fp32 weight bytes.

    Small convnets with large feature maps (resnet50: 102 MB of weights, ~20 MB of activations per 224x224
    image) get batches of 1, so converting them costs little more than the two models; large models batch
    (on 2 CPU cores ViT-B-32 runs its 8 parity images about twice as fast at 4 as at 1).

    Args:
        model: The original model.
        input_shape: One sample's shape, e.g. ``(3, 224, 224)``.

    Returns:
        A batch size from 1 to :data:`MAX_AUTO_BATCH_SIZE`.
    """
    weight_bytes = sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())
    per_sample = _WORKING_BYTES_PER_INPUT_VALUE * math.prod(int(v) for v in input_shape)
    fits = int(_WORKING_BUDGET_OF_WEIGHTS * weight_bytes // max(per_sample, 1))
    return max(1, min(MAX_AUTO_BATCH_SIZE, fits))


def _device_of(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _on_own_device(
    forward: Callable[[torch.nn.Module, torch.Tensor], Any],
) -> Callable[[torch.nn.Module, torch.Tensor], Any]:
    return lambda model, x: forward(model, x.to(_device_of(model)))


def iter_parity(
    original: LoadedModel,
    rebuilt: torch.nn.Module,
    precision: str,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
    *,
    inputs: ParityInputs | None = None,
    reference: KeptReference | None = None,
    weights: WeightComparison | None = None,
    reload: Callable[[], LoadedModel] | None = None,
) -> Iterator[ParityReport]:
    """Compare ``rebuilt`` with ``original`` batch by batch, yielding a report after each batch.

    With ``reference`` (the original's kept outputs, :mod:`hubui.parity.kept`) the original's side is not run:
    ``original`` may be released (:func:`hubui.released.released`) and the inputs, batch size and outputs are the
    kept ones; ``weights`` is then the weights check made before the original was released (``folder`` is not
    read), and a failure's module search gets the original back from ``reload``, announced by one more
    ``status="running"`` report with ``batches_done == batches_total`` before it reloads.

    Yields a ``status="running"`` report after every batch but the last (``batches_done`` of
    ``batches_total``, always less than the total), then a final one: ``verdict`` ``"pass"`` or ``"fail"``
    (``status="done"``), or ``"cancelled"`` as soon as ``cancel`` is seen set between batches. Forward
    passes run under ``torch.inference_mode()``, entered per batch so the caller's code between yields is
    not affected. Both models are put in eval mode.

    For fp16/bf16 the rebuilt model is the fp32 module the library builds from the half-precision file (what a
    user of ``timm.create_model`` / ``open_clip.create_model_from_pretrained`` gets); the drift measured is the
    rounding of the weights.

    The outputs compared come from the library's format (``Format.pair``, see :mod:`hubui.libraries`): ``logits`` for
    timm; ``image_embeds``, ``text_embeds``, ``zero_shot_logits`` and ``text_tokens`` for open_clip, whose
    rebuilt tokenizer is the one :func:`hubui.export.rebuild_from_folder` attached to ``rebuilt``.

    Args:
        original: The model as loaded (fp32).
        rebuilt: The model rebuilt from the export by the library's own loader.
        precision: The export precision; picks the tolerance preset.
        tolerance: Overrides the preset.
        images: Extra user images (paths or PIL images).
        batch_size: Samples per forward pass; ``None`` picks one from the model's size and input size
            (:func:`auto_batch_size`, capped to leave :data:`MIN_PARITY_STEPS` batches: 1 for resnet50, 2 for
            ViT-B-32's 8 images).
        cancel: Set it from another thread to stop between batches.
        folder: The export folder; when given, its weights file is compared tensor by tensor.
        inputs: Pre-built inputs (skips :func:`build_parity_inputs`; ``images`` is then ignored).
        reference: The original's kept outputs (see above).
        weights: With ``reference``: the weights check already made, or None.
        reload: With ``reference`` and a released original: loads the original again, for the module search.

    Yields:
        ParityReport, partial then final.

    Raises:
        InvalidInputError: Unknown precision or library, a bad image, ``batch_size < 1``, or an open_clip
            model without its tokenizer.
    """
    start = time.perf_counter()
    check_precision(precision)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise InvalidInputError(f"batch_size must be a positive integer, not {batch_size!r}")
    tol = tolerance or tolerance_preset(precision)
    library = reference.library if reference is not None else original.spec.library
    fmt = get_format(library)
    pair = fmt.pair(original, rebuilt)
    if reference is not None:
        pixels, batch_size = reference.pixels, reference.batch_size
        device = torch.device(reference.device)
        described = dict(reference.describe)
    else:
        weights = None
        if inputs is None:
            inputs = build_parity_inputs(original.data_config, images, library=library)
        pixels = inputs.pixels
        if batch_size is None:
            steps = max(1, math.ceil(len(pixels) / MIN_PARITY_STEPS))
            batch_size = min(auto_batch_size(original.model, tuple(pixels.shape[1:])), steps)
        original.model.eval()
        device = _device_of(original.model)
        described = {**inputs.describe(), **pair.describe}
    rebuilt.eval()
    rebuilt_device = _device_of(rebuilt)
    total = math.ceil(len(pixels) / batch_size)
    accumulators: dict[str, _OutputAccumulator] = {}
    # Per output, (cosine, sample index) of its least similar sample: the module search starts there.
    worst: dict[str, tuple[float, int]] = {}
    versions = library_versions(library)

    def report(
        verdict: str, status: str, done: int, reasons: tuple[str, ...] = (), diverging_module: str | None = None
    ) -> ParityReport:
        return ParityReport(
            verdict=verdict,
            status=status,
            precision=precision,
            tolerance=tol,
            outputs=tuple(a.result() for a in accumulators.values()),
            weights=weights,
            inputs=dict(described),
            batches_done=done,
            batches_total=total,
            diverging_module=diverging_module,
            versions=dict(versions),
            elapsed_s=time.perf_counter() - start,
            library=library,
            architecture=original.spec.architecture,
            reasons=reasons,
            device=str(device),
            samples={
                k: {"original": list(v["original"]), "converted": list(v["converted"])} for k, v in samples.items()
            },
        )

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    if folder is not None and reference is None:
        from hubui.shards import weights_path  # the index of a sharded folder: every shard is compared

        weights = compare_weights(original.model, weights_path(folder, fmt.files), precision, cancel)

    samples: dict[str, dict[str, list[float]]] = {}
    per_batch = math.ceil(SAMPLE_LIMIT / max(total, 1))

    def keep_sample(name: str, ref_out: torch.Tensor, test_out: torch.Tensor) -> None:
        if not ref_out.is_floating_point():
            return
        flat_ref, flat_test = ref_out.detach().reshape(-1).float().cpu(), test_out.detach().reshape(-1).float().cpu()
        idx = torch.linspace(0, flat_ref.numel() - 1, min(per_batch, flat_ref.numel())).long()
        pair_ = samples.setdefault(name, {"original": [], "converted": []})
        pair_["original"] += flat_ref[idx].tolist()
        pair_["converted"] += flat_test[idx].tolist()

    reasons: list[str] = []
    for b in range(total):
        if cancelled():
            logger.info("parity cancelled after %d/%d batches", b, total)
            yield report("cancelled", "cancelled", b, reasons=("cancelled",))
            return
        lo = b * batch_size
        x = pixels[lo : lo + batch_size]
        with torch.inference_mode():
            ref = reference.batches[b] if reference is not None else pair.ref(x.to(device), b == 0)
            test = pair.test(x.to(rebuilt_device), b == 0)
            for name, ref_out in ref.items():
                acc = accumulators.get(name) or _OutputAccumulator(
                    name, ranked=name in pair.ranked, exact=name in pair.exact
                )
                test_out = test.get(name)
                problem = None
                if test_out is None:
                    problem = f"{name}: missing from the rebuilt model's outputs"
                else:
                    try:
                        cos = acc.update(ref_out, test_out)
                    except _ShapeMismatch as exc:
                        problem = str(exc)
                    else:
                        # Only outputs that could be compared get metrics; the others fail by reason.
                        accumulators[name] = acc
                        keep_sample(name, ref_out, test_out)
                if problem is not None:
                    if problem not in reasons:  # once, not once per batch
                        reasons.append(problem)
                    continue
                i = int(torch.nan_to_num(cos, nan=-2.0).argmin())
                c = float(torch.nan_to_num(cos, nan=-2.0)[i])
                if c < worst.get(name, (2.0, 0))[0]:
                    worst[name] = (c, lo + i if name in pair.per_image else i)
            # Both models' outputs are folded into the accumulators; drop them before the yield (the caller
            # may hold the generator for a while) and before the next batch's forward passes.
            del ref, test, x
        if b + 1 < total:
            # After the last batch the final report follows at once; a partial with done == total would
            # only say "running" about a finished run.
            yield report("pending", "running", b + 1)

    if cancelled():
        yield report("cancelled", "cancelled", total, reasons=("cancelled",))
        return

    outputs = tuple(a.result() for a in accumulators.values())
    failing: list[str] = []
    for metrics in outputs:
        problems = check_output(metrics, tol)
        if problems:
            failing.append(metrics.name)
        reasons += problems
    outputs_ok = not reasons
    if weights is not None:
        reasons += check_weights(weights, tol)
    diverging: str | None = None
    if reasons and is_released(original):
        if reload is None:
            yield report("fail", "done", total, reasons=tuple(reasons))
            return
        # The module search needs both models: the original comes back only now, when parity has failed.
        yield report("pending", "running", total, reasons=tuple(reasons))
        original = reload()
        pair = get_format(library).pair(original, rebuilt)
        device = _device_of(original.model)
    if reasons and outputs_ok and weights is not None:
        # Outputs within tolerance, weights not: the owner of the first differing tensor is the answer.
        # A hook search would report whichever later module happens to amplify the tiny difference.
        diverging = _first_weight_owner(original.model, weights)
    if reasons and diverging is None:
        # Also when only the weights differ: a changed tensor can leave the logits untouched (timm zero-inits
        # the last norm of each residual branch), yet its module's own output still shows where it is.
        # Two-tower models are searched on the tower whose output diverged (image, then text); with no
        # diverging output, every tower in turn.
        order = [n for n in pair.probes if n in failing] or list(pair.probes)
        for name in order:
            probe = pair.probes[name]
            index = worst.get(name, (2.0, 0))[1]
            try:
                sample = probe.sample(index, pixels).to(device)
                diverging = find_diverging_module(
                    original.model,
                    rebuilt,
                    sample,
                    tol,
                    forward=_on_own_device(probe.forward),
                )
            except RuntimeError as exc:  # e.g. architectures that differ so much the rebuilt forward fails
                logger.warning("could not locate the diverging module from %s: %s", name, exc)
            if diverging is not None:
                break
        if diverging is None and weights is not None:
            # No module output differs beyond tolerance, yet something does (e.g. open_clip's logit_scale,
            # used outside any module): the first differing tensor is the best pointer there is.
            diverging = _first_weight_owner(original.model, weights)
    verdict = "fail" if reasons else "pass"
    logger.info("parity %s for %s (%s): %s", verdict, original.spec.architecture, precision, reasons or "ok")
    yield report(verdict, "done", total, reasons=tuple(reasons), diverging_module=diverging)


def run_parity(
    original: LoadedModel,
    rebuilt: torch.nn.Module,
    precision: str,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
    *,
    inputs: ParityInputs | None = None,
) -> ParityReport:
    """Run :func:`iter_parity` to the end and return the final report.

    Args and Raises: as :func:`iter_parity`.

    Returns:
        The final report (check ``report.passed`` or call ``report.raise_for_verdict()``).
    """
    last: ParityReport | None = None
    for report in iter_parity(
        original, rebuilt, precision, tolerance, images, batch_size, cancel, folder, inputs=inputs
    ):
        last = report
    if last is None:  # pragma: no cover - iter_parity always yields a final report
        raise RuntimeError("parity produced no report")
    return last


def verify_export(
    loaded: LoadedModel,
    folder: str | Path,
    precision: str | None = None,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ParityReport]:
    """Rebuild an export folder with the library's own loader, then stream parity against ``loaded``.

    Args:
        loaded: The original model.
        folder: The folder :func:`hubui.export.export_model` wrote.
        precision: Defaults to the precision recorded in the folder's config.json.
        tolerance: Overrides the preset.
        images: Extra user images.
        batch_size: Samples per forward pass; ``None``: :func:`auto_batch_size`.
        cancel: Set to stop between batches.

    Yields:
        ParityReport, partial then final.

    Raises:
        InvalidInputError: ``precision`` disagrees with the folder, or no precision is known.
        CheckpointMismatchError, ModelError: The folder can't be rebuilt.
    """
    recorded = read_export_precision(folder)
    if precision is None:
        precision = recorded or "fp32"
    elif recorded is not None and recorded != precision:
        raise InvalidInputError(
            f"{str(folder)!r} holds a {recorded} export, not {precision}",
            hint=f"Verify with precision={recorded!r}, or export again.",
        )
    rebuilt = rebuild_from_folder(folder, library=loaded.spec.library)
    yield from iter_parity(loaded, rebuilt, precision, tolerance, images, batch_size, cancel, folder)
