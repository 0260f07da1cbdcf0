"""The library matrix's table: one round-trip case per registered (library, target).

A case is what a user of that library does around hubui: they have a model of their own (saved as a checkpoint,
seeded random weights in which every layer matters), they compute its outputs with the library, convert it, push
it, and load the repo back with the library's own loader to get the same outputs. ``test_library_matrix`` runs the
same steps over every case; a new library adds its row here.

Libraries are imported inside the case functions: this module is imported at collection time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hubui.parity.inputs import real_image_paths
from hubui.spec import ModelSpec

Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class UserModel:
    """The user's model before hubui sees it.

    Args:
        spec: What the user asks hubui to convert (their checkpoint).
        outputs: What they computed with the library from the model they saved.
    """

    spec: ModelSpec
    outputs: Outputs


@dataclass(frozen=True)
class Case:
    """One row of the matrix.

    Args:
        make: Writes the user's checkpoint under the given folder and returns the :class:`UserModel`.
        hub_outputs: ``(repo_id, cache_dir, token)`` -> the model loaded from the Hub with the library's own loader,
            and the same outputs computed the same way as ``UserModel.outputs``.
        atol: How far the Hub copy's outputs (and parity's) may be from the user's: 0 means bit for bit.
        snippet_says: Text the card's usage snippet must contain (the library's own entry points).
        check_printed: Asserts what the snippet printed (its ``print`` arguments) is what it promises; gets the
            export folder.
        card_says: Text the pushed card must contain.
        card_lacks: Text it must not contain.
        extra_files: Files in the folder besides the format's config, weights and ``parity.json``.
    """

    make: Callable[[Path], UserModel]
    hub_outputs: Callable[[str, Path, str], tuple[torch.nn.Module, Outputs]]
    atol: float
    snippet_says: tuple[str, ...]
    check_printed: Callable[[tuple[Any, ...], Path], None]
    card_says: tuple[str, ...] = ()
    card_lacks: tuple[str, ...] = ()
    extra_files: frozenset[str] = frozenset()


def _realistic_norms(model: torch.nn.Module, seed: int) -> None:
    """timm zero-inits the last norm of each residual branch, which would leave most of a ResNet out of its
    outputs: give every norm (and the head) values so that every layer matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def _nested_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    """A training script's checkpoint: the state dict under ``state_dict``, DataParallel's ``module.`` prefix."""
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": sd, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    return path


# --- timm, native ----------------------------------------------------------------------------------------
def _timm_batch() -> torch.Tensor:
    return torch.randn(3, 3, 160, 160, generator=torch.Generator().manual_seed(7))


def _timm_native(tmp: Path) -> UserModel:
    import timm

    torch.manual_seed(11)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10).eval()
    _realistic_norms(model, seed=11)
    with torch.inference_mode():
        logits = model(_timm_batch())
    ckpt = _nested_checkpoint(model, tmp / "train.pth")
    return UserModel(ModelSpec("timm", "test_resnet", checkpoint=str(ckpt), num_classes=10), {"logits": logits})


def _timm_hub(repo: str, cache: Path, token: str) -> tuple[torch.nn.Module, Outputs]:
    import timm

    model = timm.create_model(f"hf-hub:{repo}", pretrained=True, cache_dir=cache).eval()
    with torch.inference_mode():
        return model, {"logits": model(_timm_batch())}


def _timm_printed(printed: tuple[Any, ...], folder: Path) -> None:
    indices, probabilities = printed  # the top five classes of one image, and their probabilities
    assert len(indices[0]) == 5 and all(0 <= i < 10 for i in indices[0]), indices
    assert probabilities[0] == sorted(probabilities[0], reverse=True) and 0 < sum(probabilities[0]) <= 1 + 1e-6


# --- timm, converted to transformers ---------------------------------------------------------------------
def _resnet18_pixels() -> torch.Tensor:
    """Real images through timm's eval transform for resnet18: what the user feeds the model."""
    import timm
    from PIL import Image

    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model="resnet18"), is_training=False)
    return torch.stack([transform(Image.open(p).convert("RGB")) for p in real_image_paths()[:3]])


def _timm_to_transformers(tmp: Path) -> UserModel:
    import timm

    torch.manual_seed(3)
    model = timm.create_model("resnet18", pretrained=False).eval()
    _realistic_norms(model, seed=3)
    with torch.no_grad():
        head = model.get_classifier()
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(3)) * 0.05)
    with torch.inference_mode():
        logits = model(_resnet18_pixels())
    assert logits.abs().max() > 1.0  # big enough for the 1e-5 bound to mean something
    ckpt = tmp / "resnet18.pth"
    torch.save(model.state_dict(), ckpt)
    return UserModel(ModelSpec("timm", "resnet18", checkpoint=str(ckpt)), {"logits": logits})


def _transformers_hub(repo: str, cache: Path, token: str) -> tuple[torch.nn.Module, Outputs]:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(repo, cache_dir=cache, token=token).eval()
    # The processor users load with it is the one that reproduces timm's resize and crop.
    processor = AutoImageProcessor.from_pretrained(repo, cache_dir=cache, token=token)
    assert type(processor).__name__.startswith("ConvNextImageProcessor"), type(processor)
    with torch.inference_mode():
        return model, {"logits": model(pixel_values=_resnet18_pixels()).logits}


def _transformers_printed(printed: tuple[Any, ...], folder: Path) -> None:
    (label,) = printed
    assert label in json.loads((folder / "config.json").read_text())["id2label"].values(), label


# --- open_clip, native -----------------------------------------------------------------------------------
OPEN_CLIP_NAME = "hubui-matrix-tiny"
LABELS = ["astronaut", "cat", "rocket"]


def tiny_open_clip_cfg() -> dict[str, Any]:
    """The tiny CLIP of tests/test_open_clip_pipeline.py (CLIP BPE tokenizer)."""
    text = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
    vision = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}
    return {"embed_dim": 32, "vision_cfg": vision, "text_cfg": text}


def _clip_outputs(model: Any, preprocess: Any, tokenizer: Any) -> Outputs:
    from PIL import Image

    images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in real_image_paths()[:2]])
    tokens = tokenizer([f"a photo of a {label}" for label in LABELS])
    with torch.inference_mode():
        return {
            "tokens": tokens,
            "image_embeds": model.encode_image(images),
            "text_embeds": model.encode_text(tokens),
            "zero_shot_logits": model.get_logits(images, tokens)[0],
        }


def _open_clip_native(tmp: Path) -> UserModel:
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from safetensors.torch import save_file

    config = tmp / f"{OPEN_CLIP_NAME}.json"
    config.write_text(json.dumps(tiny_open_clip_cfg()))
    open_clip.add_model_config(config)  # the user's own architecture, registered as open_clip users do
    torch.manual_seed(4)
    model = open_clip.create_model(OPEN_CLIP_NAME, pretrained=None).eval()
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    outputs = _clip_outputs(model, preprocess, open_clip.get_tokenizer(OPEN_CLIP_NAME))
    ckpt = tmp / "clip.safetensors"
    save_file(model.state_dict(), ckpt)
    return UserModel(ModelSpec("open_clip", OPEN_CLIP_NAME, checkpoint=str(ckpt)), outputs)


def _open_clip_hub(repo: str, cache: Path, token: str) -> tuple[torch.nn.Module, Outputs]:
    import open_clip

    model, preprocess = open_clip.create_model_from_pretrained(f"hf-hub:{repo}", cache_dir=str(cache))
    tokenizer = open_clip.get_tokenizer(f"hf-hub:{repo}", cache_dir=str(cache))
    return model, _clip_outputs(model.eval(), preprocess, tokenizer)


def _open_clip_printed(printed: tuple[Any, ...], folder: Path) -> None:
    (probs,) = printed
    assert set(probs) == {"a diagram", "a dog", "a cat"} and abs(sum(probs.values()) - 1) < 1e-5, probs


CASES: dict[tuple[str, str], Case] = {
    ("timm", "native"): Case(
        make=_timm_native,
        hub_outputs=_timm_hub,
        atol=0.0,
        snippet_says=("timm.create_model",),
        check_printed=_timm_printed,
    ),
    ("timm", "transformers"): Case(
        make=_timm_to_transformers,
        hub_outputs=_transformers_hub,
        atol=1e-5,
        snippet_says=("AutoModelForImageClassification", "AutoImageProcessor"),
        check_printed=_transformers_printed,
        card_says=("converted from timm resnet18",),
        card_lacks=("base_model:",),  # the user's own checkpoint: no timm repo to name
        extra_files=frozenset({"preprocessor_config.json"}),
    ),
    ("open_clip", "native"): Case(
        make=_open_clip_native,
        hub_outputs=_open_clip_hub,
        atol=0.0,
        snippet_says=("create_model_from_pretrained", "get_tokenizer"),
        check_printed=_open_clip_printed,
        card_says=("| text_tokens |",),
    ),
}
