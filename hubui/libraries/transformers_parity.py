"""Parity of the ``transformers`` target: logits against the timm original, the saved weights through the key
map, and the image processor against timm's eval transform.

One preprocessing difference remains and is measured, not hidden: transformers floors the center-crop offset
while torchvision (timm) rounds half to even, so when the resized image overshoots the crop by an odd number of
pixels ``2k + 1`` with ``k`` odd the two crops sit one pixel apart. :func:`check_preprocessing` compares the
processor with timm's transform on the parity images, and explains each image that differs by re-cropping timm's
resized image at transformers' offset: an image whose only difference is that offset is recorded as
``crop_offset``; anything else beyond two 8-bit levels fails the verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import ModelError
from hubui.libraries.transformers_map import MappedWeights, mapped_state_dict
from hubui.libraries.transformers_plan import FILES, plan_transformers
from hubui.spec import LoadedModel

if TYPE_CHECKING:
    from hubui.libraries.transformers import TransformersLogits

TRANSFORMERS_PARITY_BATCH = 4
"""The parity batch size of the transformers target when none is given (see :func:`iter_transformers_parity`)."""

PREPROCESSING_LEVELS = 2
"""The preprocessing check allows this many 8-bit levels per pixel: torchvision's and PIL's resamplers round
differently by one level, two on noise images; a wrong mean, std, size or interpolation moves far more."""


def transformers_tolerance(precision: str) -> Any:
    """The parity tolerance of the transformers target: the precision's preset, with fp32 relaxed to
    ``max_abs_diff <= 1e-5`` (or ``max_rel_diff <= 1e-6``), because transformers computes the same network with
    other kernels (its own attention, a separate classifier ``Flatten``) and so rounds float32 sums in another
    order. The weights must still be bit-identical and top-1 must agree on every input.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        A :class:`~hubui.parity.Tolerance`.
    """
    from hubui.parity.metrics import tolerance_preset

    preset = tolerance_preset(precision)
    if precision != "fp32":
        return preset
    return replace(preset, max_abs_diff=1e-5, max_rel_diff=1e-6, cosine_min=0.99999)


def check_preprocessing(data_config: dict[str, Any], processor: Any, images: Sequence[Any] = ()) -> dict[str, Any]:
    """Compare the image processor with timm's eval transform on the parity images.

    Args:
        data_config: timm's data config.
        processor: The ``AutoImageProcessor`` loaded from the export.
        images: The user's extra images (paths or PIL images), after the shipped and synthetic ones.

    Returns:
        ``{"processor", "images", "max_abs_diff", "mean_abs_diff", "tolerance", "matching", "crop_offset",
        "differs", "passed"}``: differences in normalized pixel units; ``crop_offset`` names the images whose
        only difference is transformers' center-crop rounding (one pixel), ``differs`` those that fail.
    """
    from torchvision.transforms import CenterCrop

    from hubui.libraries.timm import FORMAT as TIMM
    from hubui.parity.inputs import load_image, real_image_paths, synthetic_images

    named = [load_image(p) for p in real_image_paths()] + synthetic_images(4) + [load_image(i) for i in images]
    timm_tf = TIMM.transform(data_config)
    steps = list(getattr(timm_tf, "transforms", []))
    tol = PREPROCESSING_LEVELS / 255 / min(float(s) for s in data_config["std"]) + 1e-6
    worst, total, count = 0.0, 0.0, 0
    matching: list[str] = []
    crop_offset: list[str] = []
    differs: list[str] = []
    for name, img in named:
        ref = timm_tf(img)
        got = processor(images=[img], return_tensors="pt")["pixel_values"][0].float()
        if got.shape != ref.shape:
            differs.append(f"{name} (shape {tuple(got.shape)} vs {tuple(ref.shape)})")
            continue
        diff = (got - ref).abs()
        worst, total, count = max(worst, float(diff.max())), total + float(diff.sum()), count + diff.numel()
        if float(diff.max()) <= tol:
            matching.append(name)
            continue
        # Re-crop timm's resized image at transformers' floored offset: same pixels then means only the offset.
        crops = [i for i, s in enumerate(steps) if isinstance(s, CenterCrop)]
        if crops:
            x = img
            for s in steps[: crops[0]]:
                x = s(x)
            th, tw = (int(v) for v in data_config["input_size"][-2:])
            top, left = (x.height - th) // 2, (x.width - tw) // 2
            x = x.crop((left, top, left + tw, top + th))
            for s in steps[crops[0] + 1 :]:
                x = s(x)
            if float((got - x).abs().max()) <= tol:
                crop_offset.append(name)
                continue
        differs.append(name)
    return {
        "processor": type(processor).__name__,
        "images": len(named),
        "max_abs_diff": worst,
        "mean_abs_diff": total / max(count, 1),
        "tolerance": tol,
        "matching": len(matching),
        "crop_offset": crop_offset,
        "differs": differs,
        "passed": not differs,
    }


def transformers_weights(original: LoadedModel, folder: str | Path, precision: str, cancel: Any = None) -> Any:
    """The folder's weights against the timm original's tensors under their transformers names (the key map)."""
    from hubui.parity.weights import compare_weights
    from hubui.shards import weights_path

    plan = plan_transformers(original)
    mapped = MappedWeights(mapped_state_dict(original, plan))
    return compare_weights(mapped, weights_path(folder, FILES), precision, cancel)


def iter_transformers_parity(
    original: LoadedModel,
    rebuilt: TransformersLogits,
    precision: str,
    tolerance: Any = None,
    images: Sequence[Any] = (),
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
    *,
    reference: Any = None,
    weights: Any = None,
    reload: Any = None,
) -> Iterator[Any]:
    """Parity of a transformers export against its timm original: logits on the parity inputs, the saved
    weights through the key map, and the image processor against timm's transform.

    When ``original`` is itself a transformers model (``spec.library == "transformers"``: a folder verified
    against its own Hub copy) the weights are compared by name and the preprocessing check is skipped.

    Args:
        original: The timm model as loaded.
        rebuilt: The model :func:`load_transformers` rebuilt from the folder or the Hub.
        precision: The export precision.
        tolerance: Overrides :func:`transformers_tolerance`.
        images: Extra user images.
        batch_size: Samples per forward pass; ``None``: :data:`TRANSFORMERS_PARITY_BATCH`.
        cancel: Set it to stop between batches.
        reference: The original's kept outputs (:mod:`hubui.parity.kept`): ``original`` may then be released,
            ``weights`` is the weights check made before it was (:func:`transformers_weights`, or a snapshot's
            file against the folder's) and ``reload`` gets it back for a failure's module search.
        weights: With ``reference``: see there.
        reload: With ``reference``: see there.
        folder: The export folder (or downloaded snapshot) whose ``model.safetensors`` (or every shard of its
            index) is checked.

    Yields:
        :class:`~hubui.parity.ParityReport`, partial then final; the final one records ``inputs["target"]`` and
        ``inputs["preprocessing"]``.
    """
    from hubui.parity.run import iter_parity
    from hubui.parity.weights import check_weights, compare_weights
    from hubui.shards import weights_path

    tol = tolerance or transformers_tolerance(precision)
    same_library = original.spec.library == "transformers"
    if batch_size is None:
        # Not auto_batch_size's 1: at batch 1 the timm and transformers forwards differ by float32 rounding (measured
        # 1.1e-5 abs / 4.8e-7 rel on resnet26 logits of ~20), at batch 2 and more they were bit-identical in our runs.
        batch_size = TRANSFORMERS_PARITY_BATCH
    last = None
    kept = reference is not None
    for report in iter_parity(
        original,
        rebuilt,
        precision,
        tol,
        images,
        batch_size,
        cancel,
        folder=folder if same_library and not kept else None,
        reference=reference,
        weights=weights if same_library else None,
        reload=reload,
    ):
        if report.status == "running":
            yield report
        last = report
    if last is None:  # pragma: no cover - iter_parity always yields a final report
        raise ModelError("Parity produced no report", "Report this as a hubui bug.")
    if last.verdict == "cancelled":
        yield last
        return
    reasons = list(last.reasons)
    if kept and not same_library:
        if weights is not None:
            reasons += check_weights(weights, tol)
    elif folder is not None and not same_library:
        plan = plan_transformers(original)
        weights = compare_weights(
            MappedWeights(mapped_state_dict(original, plan)), weights_path(folder, FILES), precision, cancel
        )
        reasons += check_weights(weights, tol)
    else:
        weights = last.weights
    inputs = {**last.inputs, "target": "transformers"}
    if not same_library and rebuilt.processor is not None:
        pre = check_preprocessing(original.data_config, rebuilt.processor, images)
        inputs["preprocessing"] = pre
        if pre["differs"]:
            reasons.append(
                f"preprocessing: {pre['processor']} differs from timm's transform beyond "
                f"{PREPROCESSING_LEVELS} 8-bit levels on {', '.join(pre['differs'][:5])}"
            )
    verdict = "fail" if reasons else "pass"
    versions = {**last.versions, "transformers": _version("transformers")}
    yield replace(last, verdict=verdict, reasons=tuple(reasons), weights=weights, inputs=inputs, versions=versions)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


__all__ = [
    "PREPROCESSING_LEVELS",
    "TRANSFORMERS_PARITY_BATCH",
    "check_preprocessing",
    "iter_transformers_parity",
    "transformers_tolerance",
]
