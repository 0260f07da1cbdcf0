"""The ``transformers`` format: timm ResNets and ViTs as transformers models.

A timm model whose topology transformers' ``ResNetForImageClassification`` or ``ViTForImageClassification``
can express is written as a transformers folder (``config.json``, ``model.safetensors``,
``preprocessor_config.json``) that ``AutoModelForImageClassification.from_pretrained`` and
``AutoImageProcessor.from_pretrained`` load, then checked against the timm original like any other export.

This module is the :class:`~hubui.libraries.base.Format` (:data:`FORMAT`, registered as ``"transformers"``;
a format only, with no source: its models come from timm), the export, the rebuild with transformers' Auto
classes and the card. Its parts, by job:

- :mod:`hubui.libraries.transformers_map`: which timm topologies transformers can express, and the key map.
- :mod:`hubui.libraries.transformers_plan`: what the target accepts, and the plan (config, key map, processor).
- :mod:`hubui.libraries.transformers_parity`: parity, the image-processor check included.

transformers is an optional dependency (``pip install 'hubui[transformers]'``); it is imported lazily.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from hubui.errors import (
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
)
from hubui.export_folder import HUBUI_CONFIG_KEY, check_precision, write_folder
from hubui.libraries.base import CardDefaults, ExportOptions
from hubui.libraries.transformers_map import MappedWeights, TransformersPlan, mapped_state_dict
from hubui.libraries.transformers_parity import (
    PREPROCESSING_LEVELS,
    TRANSFORMERS_PARITY_BATCH,
    check_preprocessing,
    iter_transformers_parity,
    transformers_tolerance,
)
from hubui.libraries.transformers_plan import (
    CONFIG_NAME,
    FILES,
    INSTALL_HINT,
    PICKLE_WEIGHTS_NAME,
    PIL_RESAMPLE,
    PREPROCESSOR_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TARGETS,
    available_targets,
    check_convertible_name,
    check_target,
    plan_transformers,
    preprocessor_config,
    transformers_available,
)
from hubui.outdir import check_out_dir
from hubui.spec import ExportResult, LoadedModel, ModelSpec

if TYPE_CHECKING:
    from hubui.card import CardFields
    from hubui.parity.kept import KeptReference
    from hubui.parity.metrics import Tolerance
    from hubui.parity.pairs import Pair
    from hubui.parity.report import ParityReport
    from hubui.parity.weights import WeightComparison

logger = logging.getLogger(__name__)


class TransformersLogits(torch.nn.Module):
    """A transformers image classifier called like a timm model: ``module(pixels)`` returns the logits.

    Its ``state_dict()`` is the wrapped model's, so the weights check reads transformers' own names.

    Args:
        model: A ``*ForImageClassification`` model.
        processor: The image processor loaded with it (``AutoImageProcessor``), when known.
    """

    def __init__(self, model: torch.nn.Module, processor: Any = None) -> None:
        super().__init__()
        self.model = model
        self.processor = processor

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).logits  # type: ignore[no-any-return]

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.model.state_dict(*args, **kwargs)  # type: ignore[no-any-return]


# --- export ---------------------------------------------------------------------------------------------
def export_transformers(
    loaded: LoadedModel,
    out_dir: str | Path,
    precision: str = "fp32",
    include_pytorch_bin: bool = False,
    overwrite: bool = False,
    *,
    plan: TransformersPlan | None = None,
    max_shard_size: str | int | None = None,
) -> ExportResult:
    """Write ``loaded`` as a transformers folder: ``config.json``, ``model.safetensors`` (or its shards and
    index), ``preprocessor_config.json``.

    The plan (and so every refusal) comes before the output folder is created; the folder is staged and renamed
    into place only when complete.

    Args:
        loaded: A timm model.
        out_dir: The folder to create (must not exist or be empty, unless ``overwrite`` and it holds an earlier
            hubui export: see :mod:`hubui.outdir`).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; recorded under ``config.json["hubui"]``.
        include_pytorch_bin: Also write ``pytorch_model.bin``.
        overwrite: Replace an earlier hubui export in ``out_dir``; a folder holding anything else is refused.
        plan: A plan made already by :func:`plan_transformers`.
        max_shard_size: Weights over this size (bytes, or ``"5GB"``, ``"500MB"``) are written as
            ``model-0000k-of-0000n.safetensors`` shards with ``model.safetensors.index.json``, the layout
            ``from_pretrained`` reads; None: ``"5GB"``, transformers' own default.

    Returns:
        The export, with ``library == "transformers"``.

    Raises:
        NotConvertibleError: The model cannot be expressed in transformers.
        ExportError: ``out_dir`` is not empty (or, with ``overwrite``, not an earlier export), or writing failed
            (nothing is left at ``out_dir`` then).
        InvalidInputError: Unknown precision, or transformers is not installed.
    """
    check_precision(precision)
    options = ExportOptions(
        precision=precision,
        include_pytorch_bin=include_pytorch_bin,
        overwrite=overwrite,
        max_shard_size=max_shard_size,
    )
    return _export(loaded, out_dir, options, plan)


def _export(
    loaded: LoadedModel, out_dir: str | Path, options: ExportOptions, plan: TransformersPlan | None = None
) -> ExportResult:
    """:func:`export_transformers` with :class:`~hubui.libraries.base.ExportOptions` (progress included)."""
    dtype = check_precision(options.precision)
    plan = plan or plan_transformers(loaded)
    out = check_out_dir(out_dir, options.overwrite)
    from transformers import ResNetConfig, ViTConfig

    from hubui import __version__

    cfg_cls: Any = ResNetConfig if plan.model_type == "resnet" else ViTConfig
    config = cfg_cls(**plan.config)
    config.architectures = [
        "ResNetForImageClassification" if plan.model_type == "resnet" else "ViTForImageClassification"
    ]
    config.dtype = str(dtype).removeprefix("torch.")
    setattr(
        config,
        HUBUI_CONFIG_KEY,
        {  # transformers keeps unknown config keys and ignores them
            "precision": options.precision,
            "version": __version__,
            "target": "transformers",
            "source_library": "timm",
            "architecture": loaded.spec.architecture,
            "base_model": plan.base_model,
        },
    )

    def write_config(staging: Path) -> None:
        config.to_json_file(str(staging / CONFIG_NAME))
        (staging / PREPROCESSOR_NAME).write_text(json.dumps(plan.preprocessor, indent=2) + "\n", encoding="utf-8")

    # The mapped tensors (timm's, under transformers' names) are what the folder holds.
    weights = MappedWeights(mapped_state_dict(loaded, plan))
    return write_folder(loaded, out, FILES, options, write_config, "transformers", module=weights)


def is_transformers_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a transformers export (a ``config.json`` with a ``model_type``)."""
    path = Path(folder) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "model_type" in cfg and "architecture" not in cfg


# --- rebuild --------------------------------------------------------------------------------------------
def load_transformers(
    name: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> TransformersLogits:
    """``AutoModelForImageClassification.from_pretrained`` and ``AutoImageProcessor.from_pretrained`` of a folder
    or a Hub repo, wrapped so that parity calls it like a timm model (fp32, eval mode).

    Args:
        name: A folder, or a repo id ``owner/name`` (on ``HF_ENDPOINT``).
        revision: A branch, tag or commit (repos only).
        cache_dir: Hugging Face cache folder.
        token: For private repos; otherwise ``HF_TOKEN`` / the login cache.

    Returns:
        The model, with its processor as ``.processor``.

    Raises:
        InvalidInputError: transformers is not installed.
        ModelNotFoundError: No such repo, revision or file.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights do not fit the config (missing, unexpected or resized tensors).
        ModelError: transformers could not build the model for another reason.
    """
    check_target("transformers")
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    where = str(name) + (f"@{revision}" if revision else "")
    kwargs: dict[str, Any] = {"revision": revision, "cache_dir": str(cache_dir) if cache_dir else None}
    if token:
        kwargs["token"] = token
    try:
        model, info = AutoModelForImageClassification.from_pretrained(
            str(name), output_loading_info=True, dtype=torch.float32, **kwargs
        )
        processor = AutoImageProcessor.from_pretrained(str(name), **kwargs)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelNotFoundError(
            f"{where!r} has no transformers model there: {exc}", hint="Check the repo id and revision."
        ) from exc
    except HfHubHTTPError as exc:
        raise HubUnreachableError(f"Could not download {where!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"transformers could not rebuild {where!r}: {exc}") from exc
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise CheckpointMismatchError(f"The weights in {where!r} don't fit their config: {bad}")
    return TransformersLogits(model.float().eval(), processor).eval()


def transformers_card_fields(fields: Any, config: dict[str, Any]) -> Any:
    """Card fields for a transformers export: ``base_model`` from the timm source when it was a pretrained tag,
    and a description saying what it was converted from (unless the user wrote one).

    Args:
        fields: The :class:`~hubui.card.CardFields` so far (library defaults applied).
        config: The export's ``config.json``.

    Returns:
        The fields, updated.
    """
    info = config.get(HUBUI_CONFIG_KEY) or {}
    arch = info.get("architecture") or "unknown"
    classes = ", ".join(f"`{c}`" for c in config.get("architectures") or []) or "a transformers model"
    base = info.get("base_model")
    changes: dict[str, Any] = {}
    if fields.base_model is None and base:
        changes["base_model"] = base
    if not fields.description:
        text = f"This model was converted from timm {arch} to transformers ({classes}) with hubui."
        if not base and fields.base_model is None:
            text += " It was not made from a pretrained timm tag, so the card names no `base_model`."
        text += (
            " Its `preprocessor_config.json` reproduces timm's resize, crop, mean and std; the one known difference is"
            " that transformers floors the centre-crop offset where timm rounds it, so some images are cropped one"
            " pixel apart (hubui's parity report counts them)."
        )
        changes["description"] = text
    return replace(fields, **changes) if changes else fields


def reference_from_transformers_folder(folder: str | Path) -> LoadedModel:
    """A transformers export folder, loaded, as the reference for verifying a push made from it."""
    model = load_transformers(Path(folder).expanduser().resolve())
    cfg = json.loads((Path(folder) / CONFIG_NAME).read_text(encoding="utf-8"))
    pre = json.loads((Path(folder) / PREPROCESSOR_NAME).read_text(encoding="utf-8"))
    size = int(pre["size"]["shortest_edge"])
    interp = {v: k for k, v in PIL_RESAMPLE.items()}.get(int(pre.get("resample", 2)), "bilinear")
    data_config = {
        "input_size": (3, size, size),
        "mean": tuple(pre["image_mean"]),
        "std": tuple(pre["image_std"]),
        "interpolation": interp,
        "crop_pct": pre.get("crop_pct"),
        "crop_mode": "center",
    }
    arch = (cfg.get(HUBUI_CONFIG_KEY) or {}).get("architecture") or cfg.get("model_type", "unknown")
    return LoadedModel(
        ModelSpec(cast(Any, "transformers"), arch),
        model,
        {},
        data_config,
        source=f"local folder {folder}",
    )


def _transformers_snippet(repo_id: str) -> str:
    ref = json.dumps(repo_id)
    return f"""import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification

processor = AutoImageProcessor.from_pretrained({ref})
model = AutoModelForImageClassification.from_pretrained({ref}).eval()

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = Image.new("RGB", (256, 256), (128, 128, 128))
with torch.inference_mode():
    logits = model(**processor(images=image, return_tensors="pt")).logits

print(model.config.id2label[int(logits.argmax(-1))])"""


class TransformersFormat:
    """The ``transformers`` folder format: timm ResNets and ViTs written for transformers' Auto classes.

    A format without a source: its models are timm's (``timm`` lists it in its targets). The rebuilt model is a
    :class:`TransformersLogits`, which takes timm-preprocessed pixels and returns logits, so timm's transform
    and parity pair apply as they are.
    """

    name = "transformers"
    files = FILES
    # hubui's transformers target: timm models converted to transformers classes.
    card = CardDefaults("transformers", "image-classification", ("timm",))
    versions: tuple[str, ...] = ("transformers", "timm")
    loader_label = "transformers' Auto classes"
    parity_batch_size: int | None = TRANSFORMERS_PARITY_BATCH
    description = "a timm ResNet or ViT as a transformers model (AutoModelForImageClassification)"
    install_hint = INSTALL_HINT

    def check_source(self, spec: ModelSpec) -> None:
        """Refuse, before anything is loaded, a model that cannot be a transformers model whatever its weights.

        Args:
            spec: The model asked for.

        Raises:
            InvalidInputError: transformers is not installed.
            NotConvertibleError: Not a timm model, or not a ResNet or ViT.
        """
        check_target(self.name)
        check_convertible_name(spec)

    def available(self) -> bool:
        """Whether transformers can be imported (an optional extra: ``hubui[transformers]``)."""
        return transformers_available()

    def owns(self, folder: Path, config: dict[str, Any] | None) -> bool:
        """Whether ``config`` (the folder's ``config.json``) is a transformers config: a ``model_type``, and no
        ``architecture`` (which timm's config names)."""
        return isinstance(config, dict) and "model_type" in config and "architecture" not in config

    def export(self, loaded: LoadedModel, out_dir: Path, options: ExportOptions) -> ExportResult:
        """Write ``loaded`` as a transformers folder (see :func:`export_transformers`).

        Args:
            loaded: A timm model.
            out_dir: The folder to create.
            options: Precision, pickle, overwrite, progress (``hf_tokenizer_repo`` does not apply).

        Returns:
            The export, with ``library == "transformers"``.

        Raises:
            NotConvertibleError: The model cannot be expressed in transformers (before the folder is created).
            ExportError: ``out_dir`` is in the way, or writing failed.
            InvalidInputError: Unknown precision, or transformers is not installed.
        """
        return _export(loaded, out_dir, options)

    def rebuild_from_folder(self, folder: Path) -> torch.nn.Module:
        """The folder loaded with transformers' Auto classes (see :func:`load_transformers`)."""
        return load_transformers(folder)

    def rebuild_from_hub(
        self, repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None
    ) -> torch.nn.Module:
        """The Hub repo loaded with transformers' Auto classes (see :func:`load_transformers`)."""
        return load_transformers(repo_id, revision=revision, cache_dir=cache_dir, token=token)

    def transform(self, data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
        """timm's eval transform: the rebuilt model takes timm-preprocessed pixels."""
        from hubui.libraries.timm import FORMAT as TIMM

        return TIMM.transform(data_config)

    def pair(self, original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
        """timm's pair (``logits``): the rebuilt model is wrapped to return logits like a timm model."""
        from hubui.libraries.timm import FORMAT as TIMM

        return TIMM.pair(original, rebuilt)

    def weights_check(
        self, original: LoadedModel, folder: Path, precision: str, cancel: threading.Event | None = None
    ) -> WeightComparison:
        """``model.safetensors`` against the timm original's tensors under their transformers names (the key
        map of :func:`plan_transformers`)."""
        from hubui.libraries.transformers_parity import transformers_weights

        return transformers_weights(original, folder, precision, cancel)

    def iter_parity(
        self,
        original: LoadedModel,
        rebuilt: torch.nn.Module,
        precision: str,
        tolerance: Tolerance | None = None,
        images: Sequence[Any] = (),
        batch_size: int | None = None,
        cancel: threading.Event | None = None,
        folder: str | Path | None = None,
        *,
        reference: KeptReference | None = None,
        weights: WeightComparison | None = None,
        reload: Callable[[], LoadedModel] | None = None,
    ) -> Iterator[ParityReport]:
        """Parity against the timm original (see :func:`iter_transformers_parity`)."""
        return iter_transformers_parity(
            original,
            cast(TransformersLogits, rebuilt),
            precision,
            tolerance,
            images,
            batch_size,
            cancel,
            folder,
            reference=reference,
            weights=weights,
            reload=reload,
        )

    def reference_from_folder(self, folder: Path, config: dict[str, Any]) -> LoadedModel:
        """The folder, rebuilt, as the reference for verifying a push (see
        :func:`reference_from_transformers_folder`)."""
        return reference_from_transformers_folder(folder)

    def architecture(self, config: dict[str, Any]) -> str | None:
        """The timm architecture hubui recorded under ``config.json["hubui"]``, or None."""
        value = (config.get(HUBUI_CONFIG_KEY) or {}).get("architecture")
        return value if isinstance(value, str) and value else None

    def card_fields(self, fields: CardFields, config: dict[str, Any]) -> CardFields:
        """See :func:`transformers_card_fields`."""
        return cast("CardFields", transformers_card_fields(fields, config))

    def card_source(self, config: dict[str, Any], architecture: str) -> str:
        """The timm model the weights came from (``"timm:resnet50"``)."""
        return f"timm:{architecture}"

    def usage_snippet(self, repo_id: str) -> str:
        """Python that loads ``repo_id`` with transformers' Auto classes and classifies one image."""
        return _transformers_snippet(repo_id)

    def hub_config_override(self, folder: Path, repo_id: str, hf_tokenizer_self: bool) -> dict[str, bytes]:
        """Nothing: a transformers folder goes up as it is.

        Raises:
            InvalidInputError: ``hf_tokenizer_self``, which only open_clip folders have a use for.
        """
        if hf_tokenizer_self:
            raise InvalidInputError("hf_tokenizer_self applies to open_clip models only", hint="Leave it off.")
        return {}


FORMAT = TransformersFormat()
"""The ``transformers`` format, found by the registry (:mod:`hubui.libraries`)."""


__all__ = [
    "CONFIG_NAME",
    "FILES",
    "FORMAT",
    "INSTALL_HINT",
    "PICKLE_WEIGHTS_NAME",
    "PREPROCESSING_LEVELS",
    "PREPROCESSOR_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "TARGETS",
    "TRANSFORMERS_PARITY_BATCH",
    "TransformersFormat",
    "TransformersLogits",
    "TransformersPlan",
    "available_targets",
    "check_convertible_name",
    "check_preprocessing",
    "check_target",
    "export_transformers",
    "is_transformers_folder",
    "iter_transformers_parity",
    "load_transformers",
    "mapped_state_dict",
    "plan_transformers",
    "preprocessor_config",
    "reference_from_transformers_folder",
    "transformers_available",
    "transformers_card_fields",
    "transformers_tolerance",
]
