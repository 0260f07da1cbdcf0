"""hubui.loading for open_clip: real open_clip models, real files, and the session's local Hub over HTTP.

ViT-B-32 (~151M parameters) is built a handful of times: the source model and its files are shared by the
whole module. Random-weight tests use ViT-S-32-alt (~43M), the smallest built-in open_clip config.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import open_clip
import pytest
import safetensors.torch
import torch
from huggingface_hub import HfApi
from open_clip.tokenizer import HFTokenizer, SimpleTokenizer
from open_clip.transform import merge_preprocess_kwargs

from hubui.errors import (
    CheckpointMismatchError,
    InvalidInputError,
    InvalidRepoIdError,
    ModelError,
    ModelNotFoundError,
)
from hubui.loading import OPEN_CLIP_INTERPOLATIONS, OPEN_CLIP_RESIZE_MODES, load_model
from hubui.spec import ModelSpec

ARCH = "ViT-B-32"
TAG = "laion2b_s34b_b79k"
SMALL = "ViT-S-32-alt"
TEXTS = ["a photo of a dog", "a diagram"]


# --- fixtures and helpers ---------------------------------------------------------------------------
def _build(arch: str, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.create_model(arch, pretrained=None).eval()


def _embed(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        return model.encode_image(images), model.encode_text(tokens)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return open_clip.get_tokenizer(ARCH)(TEXTS)


@pytest.fixture(scope="module")
def source(images, tokens) -> dict[str, object]:
    """ViT-B-32 with seed-123 random weights, its embeddings, and a flat state dict to save."""
    model = _build(ARCH, 123)
    image_emb, text_emb = _embed(model, images, tokens)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    del model
    return {"image": image_emb, "text": text_emb, "state": state}


@pytest.fixture(scope="module")
def flat_file(source, tmp_path_factory) -> Path:
    """The source weights as a flat safetensors file."""
    flat = tmp_path_factory.mktemp("openclip") / "model.safetensors"
    safetensors.torch.save_file(source["state"], str(flat))
    return flat


@pytest.fixture(scope="module")
def seeded_tag_repo(localhub, source, tmp_path_factory) -> str:
    """Put the source weights where open_clip's ViT-B-32 laion2b_s34b_b79k tag looks, with its config."""
    repo = open_clip.get_pretrained_cfg(ARCH, TAG)["hf_hub"].rstrip("/")
    assert repo.startswith("laion/")
    folder = tmp_path_factory.mktemp("laion")
    safetensors.torch.save_file(source["state"], str(folder / "open_clip_model.safetensors"))
    # open_clip's own config writer (its push function is broken on huggingface_hub 2.x)
    save_config_for_hf = importlib.import_module("open_clip.push_to_hf_hub").save_config_for_hf
    with torch.device("meta"):
        shell = open_clip.create_model(ARCH, device="meta")
    save_config_for_hf(shell, folder / "open_clip_config.json", model_config=open_clip.get_model_config(ARCH))
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=folder, commit_message="random ViT-B-32 weights")
    return repo


def _tiny_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer made offline, saved as transformers saves a fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", "a", "photo", "of", "dog", "diagram"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tokenizer_repo(localhub, tmp_path_factory) -> str:
    """The tiny tokenizer at timm/ViT-B-16-SigLIP, where open_clip's SigLIP config names its tokenizer."""
    repo = open_clip.get_model_config("ViT-B-16-SigLIP")["text_cfg"]["hf_tokenizer_name"]
    assert repo == "timm/ViT-B-16-SigLIP"
    folder = _tiny_tokenizer(tmp_path_factory.mktemp("tok"))
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=folder, commit_message="tiny tokenizer")
    return repo


TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 16, "width": 32, "heads": 2, "layers": 1},
}


def _push_tiny(localhub, tmp_path: Path, repo: str, hf_tokenizer_name: str | None) -> torch.nn.Module:
    """A tiny open_clip model (custom config, HF tokenizer) pushed as open_clip pushes one."""
    cfg = json.loads(json.dumps(TINY_CFG))
    if hf_tokenizer_name:
        cfg["text_cfg"]["hf_tokenizer_name"] = hf_tokenizer_name
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = open_clip.CLIP(**cfg).eval()
    folder = tmp_path / "tiny"
    folder.mkdir()
    safetensors.torch.save_file(model.state_dict(), str(folder / "open_clip_model.safetensors"))
    preprocess = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": preprocess}))
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=folder)
    return model


# --- checkpoints ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_safetensors_round_trip_is_exact_and_fills_the_contract(flat_file, source, images, tokens) -> None:
    loaded = load_model(ModelSpec("open_clip", ARCH, checkpoint=str(flat_file)))
    image_emb, text_emb = _embed(loaded.model, images, tokens)
    assert torch.equal(image_emb, source["image"]) and torch.equal(text_emb, source["text"])
    assert type(loaded.model).__name__ == "CLIP" and not loaded.model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.model.parameters())
    assert loaded.extra["checkpoint_key"] is None and loaded.extra["stripped_prefix"] is None
    assert loaded.source == str(flat_file.resolve())
    assert loaded.extra["model_cfg"] == open_clip.get_model_config(ARCH)
    assert loaded.extra["tokenizer"] == {"kind": "clip_bpe", "hf_tokenizer_name": None, "context_length": 77}
    assert isinstance(loaded.extra["tokenizer_obj"], SimpleTokenizer)
    assert torch.equal(loaded.extra["tokenizer_obj"](TEXTS), tokens)
    assert loaded.data_config == {
        "input_size": (3, 224, 224),
        "mean": open_clip.OPENAI_DATASET_MEAN,
        "std": open_clip.OPENAI_DATASET_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    assert loaded.pretrained_cfg == {
        "size": (224, 224),
        "mode": "RGB",
        "mean": open_clip.OPENAI_DATASET_MEAN,
        "std": open_clip.OPENAI_DATASET_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    assert loaded.label_names is None


def test_training_checkpoint_with_module_prefix_and_overrides(tmp_path, images) -> None:
    model = _build(SMALL, 9)
    # open_clip's training script saves {"epoch", "name", "state_dict": {"module.<key>": ...}} under DDP
    ckpt = tmp_path / "epoch_3.pt"
    torch.save(
        {"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, ckpt
    )
    overrides = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3), "interpolation": "bilinear", "resize_mode": "squash"}
    loaded = load_model(ModelSpec("open_clip", SMALL, checkpoint=str(ckpt), **overrides))
    assert loaded.extra["checkpoint_key"] == "state_dict" and loaded.extra["stripped_prefix"] == "module."
    with torch.inference_mode():
        assert torch.equal(loaded.model.encode_image(images), model.encode_image(images))
    # open_clip's own override path, on the meta device: the same preprocess cfg must result
    with torch.device("meta"):
        reference = open_clip.create_model(
            SMALL,
            device="meta",
            force_preprocess_cfg=merge_preprocess_kwargs(
                {},
                mean=overrides["mean"],
                std=overrides["std"],
                interpolation=overrides["interpolation"],
                resize_mode=overrides["resize_mode"],
            ),
        )
    visual = loaded.model.visual
    assert visual.preprocess_cfg == reference.visual.preprocess_cfg
    assert tuple(visual.image_mean) == overrides["mean"] and tuple(visual.image_std) == overrides["std"]
    assert loaded.pretrained_cfg == {**reference.visual.preprocess_cfg}
    assert loaded.data_config == {"input_size": (3, 224, 224), **overrides}


def test_checkpoint_of_another_architecture_names_keys_and_counts(flat_file, source) -> None:
    with torch.device("meta"):
        expected = {k: v.shape for k, v in open_clip.create_model("RN50", device="meta").state_dict().items()}
    given = source["state"]
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [k for k in expected if k in given and given[k].shape != expected[k]]
    assert missing and unexpected and mismatched
    with pytest.raises(CheckpointMismatchError) as info:
        load_model(ModelSpec("open_clip", "RN50", checkpoint=str(flat_file)))
    message = info.value.message
    assert f"open_clip architecture 'RN50': {len(missing)} missing keys ({missing[0]}, " in message
    assert f"{len(unexpected)} unexpected keys ({unexpected[0]}, " in message
    assert f"{len(mismatched)} shape mismatch" in message
    assert "open_clip architecture" in info.value.hint


# --- random weights ---------------------------------------------------------------------------------
def test_random_weights_are_seeded_and_leave_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = load_model(ModelSpec("open_clip", SMALL, seed=1))
    b = load_model(ModelSpec("open_clip", SMALL, seed=1, label_names=("dog", "diagram")))
    c = load_model(ModelSpec("open_clip", SMALL, seed=2))
    assert torch.equal(torch.get_rng_state(), state)
    key = "visual.conv1.weight"
    sa, sb, sc = (m.model.state_dict()[key] for m in (a, b, c))
    assert torch.equal(sa, sb) and not torch.equal(sa, sc)
    assert a.source == "random weights (seed 1)" and b.label_names == ["dog", "diagram"]
    assert a.extra["model_cfg"] == open_clip.get_model_config(SMALL)


# --- pretrained tags through the local Hub ----------------------------------------------------------
@pytest.mark.slow
def test_pretrained_tag_downloads_from_the_hub(seeded_tag_repo, source, images, tokens) -> None:
    lines: list[str] = []
    loaded = load_model(ModelSpec("open_clip", ARCH, pretrained="LAION2B-s34b-b79k"), progress=lines.append)
    image_emb, text_emb = _embed(loaded.model, images, tokens)
    assert torch.equal(image_emb, source["image"]) and torch.equal(text_emb, source["text"])
    assert loaded.source == f"hf-hub:{seeded_tag_repo}"
    assert f"downloading {seeded_tag_repo}" in lines
    assert loaded.data_config["mean"] == tuple(open_clip.get_pretrained_cfg(ARCH, TAG)["mean"])


@pytest.mark.slow
def test_hf_hub_id_loads_the_repo_config_and_weights(seeded_tag_repo, source, images, tokens) -> None:
    loaded = load_model(ModelSpec("open_clip", ARCH, hf_hub_id=seeded_tag_repo, interpolation="random"))
    image_emb, text_emb = _embed(loaded.model, images, tokens)
    assert torch.equal(image_emb, source["image"]) and torch.equal(text_emb, source["text"])
    assert loaded.source == f"hf-hub:{seeded_tag_repo}"
    assert loaded.extra["model_cfg"] == open_clip.get_model_config(ARCH)
    assert loaded.data_config["interpolation"] == "random" == loaded.model.visual.preprocess_cfg["interpolation"]
    assert isinstance(loaded.extra["tokenizer_obj"], SimpleTokenizer)


def test_hf_hub_id_must_match_a_built_in_architecture_name(seeded_tag_repo) -> None:
    with pytest.raises(InvalidInputError, match="differs from open_clip's 'ViT-B-16'") as info:
        load_model(ModelSpec("open_clip", "ViT-B-16", hf_hub_id=seeded_tag_repo))
    assert "vision_cfg.patch_size: 32 in the repo vs 16" in info.value.message


def test_missing_repos_and_bad_ids_are_named(localhub) -> None:
    # laion2b_e16 points at timm/vit_base_patch32_clip_224.laion2b_e16, which the local Hub does not hold
    with pytest.raises(ModelNotFoundError, match=re.escape("timm/vit_base_patch32_clip_224.laion2b_e16")):
        load_model(ModelSpec("open_clip", ARCH, pretrained="laion2b_e16"))
    with pytest.raises(ModelNotFoundError, match="alice/no-such-clip"):
        load_model(ModelSpec("open_clip", "anything", hf_hub_id="alice/no-such-clip"))
    with pytest.raises(InvalidRepoIdError):
        load_model(ModelSpec("open_clip", "anything", hf_hub_id="not a repo"))
    with pytest.raises(InvalidInputError, match="revision"):
        load_model(ModelSpec("open_clip", "anything", hf_hub_id="alice/x@v1"))


def test_quickgelu_tag_needs_the_quickgelu_architecture() -> None:
    with pytest.raises(InvalidInputError, match="QuickGELU") as info:
        load_model(ModelSpec("open_clip", ARCH, pretrained="openai"))
    assert "architecture='ViT-B-32-quickgelu'" in info.value.hint


@pytest.fixture
def url_only_tag():
    """Register a tag published only at a URL (as open_clip's OpenAI tags were), then remove it."""
    registry = importlib.import_module("open_clip.pretrained")._PRETRAINED
    url = "https://openaipublic.example/clip/models/abc/RN50.pt"
    registry["RN50"]["cdn_only"] = {"url": url, "hf_hub": "", "quick_gelu": False}
    yield url
    del registry["RN50"]["cdn_only"]


def test_url_only_tag_says_to_download_it_as_a_checkpoint(url_only_tag) -> None:
    with pytest.raises(ModelNotFoundError, match="only at " + url_only_tag) as info:
        load_model(ModelSpec("open_clip", "RN50", pretrained="cdn_only"))
    assert "checkpoint=" in info.value.hint and url_only_tag in info.value.hint


# --- tokenizers -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_siglip_loads_its_hf_tokenizer_from_the_hub(tokenizer_repo) -> None:
    loaded = load_model(ModelSpec("open_clip", "ViT-B-16-SigLIP", seed=3))
    assert loaded.extra["tokenizer"] == {"kind": "hf", "hf_tokenizer_name": tokenizer_repo, "context_length": 64}
    tokenizer = loaded.extra["tokenizer_obj"]
    assert isinstance(tokenizer, HFTokenizer)
    ids = tokenizer(TEXTS)
    assert ids.shape == (2, 64) and ids[0, :6].tolist() == [3, 4, 5, 3, 6, 0]  # a photo of a dog <pad>
    assert type(loaded.model).__name__ == "CustomTextCLIP"
    assert loaded.data_config["resize_mode"] == "shortest"  # random weights: open_clip's defaults, no tag


def test_hub_repo_with_hf_tokenizer(localhub, repo_name, tmp_path) -> None:
    tok_repo = f"alice/{repo_name}-tok"
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(tok_repo)
    api.upload_folder(repo_id=tok_repo, folder_path=_tiny_tokenizer(tmp_path / "tok"))
    model = _push_tiny(localhub, tmp_path, f"alice/{repo_name}", tok_repo)

    loaded = load_model(ModelSpec("open_clip", "tiny-clip", hf_hub_id=f"alice/{repo_name}", std=(0.3, 0.3, 0.3)))
    assert loaded.extra["tokenizer"] == {"kind": "hf", "hf_tokenizer_name": tok_repo, "context_length": 8}
    ids = loaded.extra["tokenizer_obj"](["a dog"])
    assert ids.tolist() == [[3, 6, 0, 0, 0, 0, 0, 0]]
    with torch.inference_mode():
        assert torch.equal(loaded.model.encode_text(ids), model.encode_text(ids))
    assert loaded.data_config == {
        "input_size": (3, 32, 32),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.3, 0.3, 0.3),
        "interpolation": "bilinear",
        "resize_mode": "squash",
    }
    assert loaded.extra["model_cfg"]["text_cfg"]["hf_tokenizer_name"] == tok_repo


def test_missing_hf_tokenizer_is_an_error_naming_it(localhub, repo_name, tmp_path) -> None:
    _push_tiny(localhub, tmp_path, f"alice/{repo_name}", f"alice/{repo_name}-no-tokenizer")
    with pytest.raises(ModelError, match=f"alice/{repo_name}-no-tokenizer") as info:
        load_model(ModelSpec("open_clip", "tiny-clip", hf_hub_id=f"alice/{repo_name}"))
    assert isinstance(info.value, ModelNotFoundError)
    assert "never substitutes" in info.value.hint


# --- spec checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"interpolation": "nearest"}, "'nearest'"),
        ({"resize_mode": "crop"}, "'crop'"),
        ({"crop_pct": 0.9}, "crop_pct=0.9"),
        ({"num_classes": 10}, "num_classes=10"),
        ({"mean": (0.5, 0.5)}, "(0.5, 0.5)"),
        ({"std": (0.2, 0.0, 0.2)}, "(0.2, 0.0, 0.2)"),
        ({"pretrained": TAG, "hf_hub_id": "laion/x"}, "hf_hub_id='laion/x'"),
    ],
)
def test_invalid_overrides_name_the_value(overrides, named) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_model(ModelSpec("open_clip", ARCH, **overrides))
    assert named in info.value.message
    assert info.value.hint


def test_bad_architecture_names() -> None:
    with pytest.raises(ModelNotFoundError, match="'vit-b-32x'") as info:
        load_model(ModelSpec("open_clip", "vit-b-32x"))
    assert "'ViT-B-32'" in info.value.hint
    with pytest.raises(InvalidInputError, match="pretrained tag") as info:
        load_model(ModelSpec("open_clip", f"{ARCH}:{TAG}"))
    assert f"pretrained='{TAG}'" in info.value.hint
    with pytest.raises(ModelNotFoundError, match="'laion5b'"):
        load_model(ModelSpec("open_clip", ARCH, pretrained="laion5b"))


def test_open_clip_transforms_accept_every_allowed_value() -> None:
    from open_clip.transform import PreprocessCfg, image_transform_v2

    for interpolation in OPEN_CLIP_INTERPOLATIONS:
        for resize_mode in OPEN_CLIP_RESIZE_MODES:
            image_transform_v2(PreprocessCfg(interpolation=interpolation, resize_mode=resize_mode), is_train=False)
