"""What parity compares for open_clip: the preprocessing, the named outputs of both sides and their probes.

Four outputs: ``image_embeds`` (``encode_image``), ``text_embeds`` (``encode_text`` of the prompts
``"a photo of a {label}"``), ``zero_shot_logits`` (images x prompts, as ``model.get_logits`` computes them:
``logit_scale.exp() * norm(image) @ norm(text).T (+ logit_bias)``) and ``text_tokens``: the token ids of those
prompts from each side's own tokenizer, which must be equal, so a repo whose tokenizer differs from the
original's fails parity even though its weights are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hubui.errors import InvalidInputError
from hubui.libraries.open_clip_names import TOKENIZER_ATTR
from hubui.spec import LoadedModel, ModelSpec

if TYPE_CHECKING:
    import torch

    from hubui.parity.pairs import Pair, SideFn


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
    import torch

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


def _open_clip_pair(original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
    from hubui.parity.pairs import Pair, Probe, pixels_sample
    from hubui.released import is_released

    test_tokenizer = getattr(rebuilt, TOKENIZER_ATTR, None)
    ref_tokenizer = original.extra.get("tokenizer_obj")
    if ref_tokenizer is None and is_released(original) and test_tokenizer is not None:
        # Only the rebuilt side runs (against the original's kept outputs, which hold its token ids); the probes
        # come from a new pair once the original is reloaded.
        ref_tokenizer = test_tokenizer
    if ref_tokenizer is None:
        raise InvalidInputError(
            f"{original.spec.architecture}: the original open_clip model has no tokenizer (extra['tokenizer_obj'])",
            hint="Load the model with hubui.loading, which loads its own tokenizer.",
        )
    if test_tokenizer is None:
        if rebuilt is not None and rebuilt is not original.model:
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

    return Pair(
        ref=_open_clip_side(original.model, ref_tokenizer, prompts),
        test=_open_clip_side(rebuilt, test_tokenizer, prompts),  # never called when rebuilt is None
        probes={
            "image_embeds": Probe(_encode_image, pixels_sample),
            "text_embeds": Probe(_encode_text, text_sample),
            # Embeddings agree but logits don't: logit_scale/bias; the weights check names those.
            "zero_shot_logits": Probe(_encode_image, pixels_sample),
        },
        per_image=frozenset({"image_embeds", "zero_shot_logits"}),
        ranked=frozenset({"zero_shot_logits"}),
        exact=frozenset({"text_tokens"}),
        describe={"prompts": prompts},
    )


# timm builds the timm-based towers (ConvNeXt, SigLIP); transformers loads Hugging Face tokenizers.
_OPEN_CLIP_VERSIONS = ("open_clip_torch", "timm", "transformers")


def _open_clip_reference(model: Any, spec: ModelSpec, config: dict[str, Any], source: str) -> LoadedModel:
    """A LoadedModel for a rebuilt open_clip model, with the fields hubui.loading fills for open_clip."""
    pp = dict(model.visual.preprocess_cfg)
    size = pp["size"] if isinstance(pp["size"], (tuple, list)) else (pp["size"], pp["size"])
    data_config = {
        "input_size": (3, *(int(v) for v in size)),
        "mean": tuple(pp["mean"]),
        "std": tuple(pp["std"]),
        "interpolation": pp.get("interpolation"),
        "resize_mode": pp.get("resize_mode"),
        "fill_color": pp.get("fill_color", 0),
    }
    model_cfg = config.get("model_cfg") or {}
    text_cfg = model_cfg.get("text_cfg") or {}
    tokenizer = getattr(model, TOKENIZER_ATTR)
    extra = {
        "model_cfg": model_cfg,
        "tokenizer": {
            "kind": "hf" if text_cfg.get("hf_tokenizer_name") else "clip_bpe",
            "hf_tokenizer_name": text_cfg.get("hf_tokenizer_name"),
            "context_length": getattr(tokenizer, "context_length", None),
        },
        "tokenizer_obj": tokenizer,
    }
    labels = (config.get("hubui") or {}).get("label_names")
    return LoadedModel(spec, model, pp, data_config, label_names=labels, source=source, extra=extra)


__all__ = ["DEFAULT_LABELS", "MAX_PROMPTS", "PROMPT_TEMPLATE", "parity_prompts"]
