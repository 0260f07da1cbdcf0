"""What differs per library: preprocessing, the outputs compared, how to search for a diverging module, and the
weights file read.

A parity run asks the library's adapter for a :class:`_Pair`: one callable per side (original, rebuilt) that
turns a batch of pixels into named outputs, plus, per output, how to re-run just the part of the model that
produced it (a *probe*) when the module search needs it.

timm: one output, ``logits``. open_clip: ``image_embeds`` (``encode_image``), ``text_embeds`` (``encode_text`` of
the prompts ``"a photo of a {label}"``), ``zero_shot_logits`` (images × prompts, as ``model.get_logits`` computes
them: ``logit_scale.exp() * norm(image) @ norm(text).T (+ logit_bias)``) and ``text_tokens``: the token ids of
those prompts from each side's own tokenizer, which must be equal, so a repo whose tokenizer differs from the
original's fails parity even though its weights are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from hubui.errors import InvalidInputError
from hubui.export import OPEN_CLIP_SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_NAME, TOKENIZER_ATTR

if TYPE_CHECKING:
    from hubui.spec import LoadedModel

SideFn = Callable[[torch.Tensor, bool], dict[str, torch.Tensor]]
"""``side(pixels, first_batch)``: the outputs for one batch; outputs that do not depend on the images (open_clip's
text side) are returned with the first batch only."""


@dataclass(frozen=True)
class _Probe:
    """How to re-run the part of both models that produced one output, on one sample.

    Args:
        forward: ``forward(model, inputs)``; what :func:`find_diverging_module` calls on each model.
        sample: ``sample(index, pixels)``: the inputs for sample ``index`` of that output (a batch of one).
    """

    forward: Callable[[torch.nn.Module, torch.Tensor], Any]
    sample: Callable[[int, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Pair:
    """Both sides of one parity run.

    Args:
        ref: The original's outputs.
        test: The rebuilt model's outputs.
        probes: Output name to probe, in the order the module search tries them.
        per_image: Outputs with one row per image (the others have one row per prompt).
        ranked: Outputs whose top-1/top-5 mean something (class scores).
        exact: Outputs that must be equal whatever the precision (token ids).
        describe: Extra facts for the report's ``inputs`` (the prompts).
    """

    ref: SideFn
    test: SideFn
    probes: dict[str, _Probe]
    per_image: frozenset[str]
    ranked: frozenset[str]
    exact: frozenset[str] = frozenset()
    describe: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Adapter:
    make_transform: Callable[[dict[str, Any]], Callable[[Any], torch.Tensor]]
    make_pair: Callable[[LoadedModel, torch.nn.Module], _Pair]
    weights_file: str
    version_modules: tuple[str, ...]


def _pixels_sample(index: int, pixels: torch.Tensor) -> torch.Tensor:
    return pixels[index : index + 1]


# --- timm ---------------------------------------------------------------------------------------------
_TIMM_TRANSFORM_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def _timm_transform(data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    import timm.data

    kwargs = {k: data_config[k] for k in _TIMM_TRANSFORM_KEYS if data_config.get(k) is not None}
    return timm.data.create_transform(**kwargs, is_training=False)


def _timm_forward(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": model(pixels)}


def _timm_pair(original: LoadedModel, rebuilt: torch.nn.Module) -> _Pair:
    def side(model: torch.nn.Module) -> SideFn:
        return lambda pixels, _first: _timm_forward(model, pixels)

    return _Pair(
        ref=side(original.model),
        test=side(rebuilt),
        probes={"logits": _Probe(lambda m, x: m(x), _pixels_sample)},
        per_image=frozenset({"logits"}),
        ranked=frozenset({"logits"}),
    )


# --- open_clip ----------------------------------------------------------------------------------------
# Zero-shot labels when the model has no label names: things in the shipped photographs, and near misses.
DEFAULT_LABELS: tuple[str, ...] = (
    "astronaut",
    "cat",
    "cup of coffee",
    "rocket",
    "dog",
    "bird",
    "car",
    "flower",
    "house",
    "pattern of noise",
)
PROMPT_TEMPLATE = "a photo of a {label}"
# Every prompt runs through the text tower twice (original and rebuilt); an ImageNet label list would cost
# 1000 text forwards per side, so only the first labels are used.
MAX_PROMPTS = 32


def parity_prompts(label_names: Sequence[str] | None) -> list[str]:
    """The zero-shot prompts parity uses: the model's label names (at most :data:`MAX_PROMPTS`), else
    :data:`DEFAULT_LABELS`, each as ``"a photo of a {label}"``."""
    labels = list(label_names or ())[:MAX_PROMPTS] or list(DEFAULT_LABELS)
    return [PROMPT_TEMPLATE.format(label=label) for label in labels]


def _open_clip_transform(data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg: dict[str, Any] = {}
    if data_config.get("input_size") is not None:
        cfg["size"] = tuple(int(v) for v in data_config["input_size"][-2:])
    for key in ("mean", "std"):
        if data_config.get(key) is not None:
            cfg[key] = tuple(float(v) for v in data_config[key])
    for key in ("interpolation", "resize_mode", "fill_color"):
        if data_config.get(key) is not None:
            cfg[key] = data_config[key]
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


def _zero_shot_logits(model: Any, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """``model.get_logits`` without encoding twice: scaled cosine similarities, plus the bias SigLIP models have."""
    norm = torch.nn.functional.normalize
    logits = model.logit_scale.exp() * norm(image, dim=-1) @ norm(text, dim=-1).T
    bias = getattr(model, "logit_bias", None)
    return logits + bias if bias is not None else logits


def _open_clip_side(model: Any, tokenizer: Any, prompts: list[str]) -> SideFn:
    text: dict[str, torch.Tensor] = {}

    def side(pixels: torch.Tensor, first: bool) -> dict[str, torch.Tensor]:
        if not text:
            device = pixels.device
            tokens = tokenizer(prompts)
            text["text_tokens"] = tokens
            text["text_embeds"] = model.encode_text(tokens.to(device), normalize=False)
        image = model.encode_image(pixels, normalize=False)
        out = {"image_embeds": image}
        if first:
            out["text_embeds"] = text["text_embeds"]
        out["zero_shot_logits"] = _zero_shot_logits(model, image, text["text_embeds"])
        if first:
            out["text_tokens"] = text["text_tokens"]
        return out

    return side


def _encode_image(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    return model.encode_image(pixels, normalize=False)  # type: ignore[no-any-return]


def _encode_text(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    return model.encode_text(tokens, normalize=False)  # type: ignore[no-any-return]


def _open_clip_pair(original: LoadedModel, rebuilt: torch.nn.Module) -> _Pair:
    ref_tokenizer = original.extra.get("tokenizer_obj")
    if ref_tokenizer is None:
        raise InvalidInputError(
            f"{original.spec.architecture}: the original open_clip model has no tokenizer (extra['tokenizer_obj'])",
            hint="Load the model with hubui.loading, which loads its own tokenizer.",
        )
    test_tokenizer = getattr(rebuilt, TOKENIZER_ATTR, None)
    if test_tokenizer is None:
        if rebuilt is not original.model:
            raise InvalidInputError(
                "The rebuilt open_clip model carries no tokenizer, so its text side can't be checked",
                hint="Rebuild it with hubui.export.rebuild_from_folder / rebuild_from_hub.",
            )
        test_tokenizer = ref_tokenizer  # the very same model: its own tokenizer, nothing substituted
    prompts = parity_prompts(original.label_names)
    ref_tokens: list[torch.Tensor] = []

    def text_sample(index: int, _pixels: torch.Tensor) -> torch.Tensor:
        # The original's tokens for both models: the search looks for a module, the tokens are checked apart.
        if not ref_tokens:
            ref_tokens.append(ref_tokenizer(prompts))
        return ref_tokens[0][index : index + 1]

    return _Pair(
        ref=_open_clip_side(original.model, ref_tokenizer, prompts),
        test=_open_clip_side(rebuilt, test_tokenizer, prompts),
        probes={
            "image_embeds": _Probe(_encode_image, _pixels_sample),
            "text_embeds": _Probe(_encode_text, text_sample),
            # Embeddings agree but logits don't: logit_scale/bias; the weights check names those.
            "zero_shot_logits": _Probe(_encode_image, _pixels_sample),
        },
        per_image=frozenset({"image_embeds", "zero_shot_logits"}),
        ranked=frozenset({"zero_shot_logits"}),
        exact=frozenset({"text_tokens"}),
        describe={"prompts": prompts},
    )


# timm builds the timm-based towers (ConvNeXt, SigLIP); transformers loads Hugging Face tokenizers.
_OPEN_CLIP_VERSIONS = ("open_clip_torch", "timm", "transformers")

_ADAPTERS: dict[str, _Adapter] = {
    "timm": _Adapter(_timm_transform, _timm_pair, SAFE_WEIGHTS_NAME, ("timm",)),
    "open_clip": _Adapter(_open_clip_transform, _open_clip_pair, OPEN_CLIP_SAFE_WEIGHTS_NAME, _OPEN_CLIP_VERSIONS),
    # A transformers export (hubui.to_transformers) compared with itself, e.g. a folder with its Hub copy: the
    # model is wrapped to take timm-preprocessed pixels and return logits, so timm's pair applies as is.
    "transformers": _Adapter(_timm_transform, _timm_pair, SAFE_WEIGHTS_NAME, ("transformers", "timm")),
}


def _adapter(library: str) -> _Adapter:
    adapter = _ADAPTERS.get(library)
    if adapter is None:
        raise InvalidInputError(
            f"Parity for library {library!r} is not supported yet",
            hint=f"Supported: {', '.join(sorted(_ADAPTERS))}.",
        )
    return adapter
