"""The open_clip flow with real open_clip and a real local Hub: model → folder → parity → card → push → verify,
then the repo loaded back with open_clip's own ``hf-hub:`` loaders, independently of hubui.

LoadedModels are built here the way hubui.loading builds them for open_clip (seeded random weights; the
preprocessing overrides through open_clip's own ``force_preprocess_cfg``, which is what
``create_model_from_pretrained(image_mean=..., ...)`` uses).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import open_clip
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_kwargs
from PIL import Image
from safetensors.torch import load_file

import hubui.export_folder as export_module
from hubui.errors import ExportError, InvalidInputError
from hubui.export import TOKENIZER_ATTR, export_model, rebuild_from_folder, rebuild_from_hub
from hubui.parity import run_parity
from hubui.parity.adapters import DEFAULT_LABELS
from hubui.parity.inputs import real_image_paths
from hubui.pipeline import ConvertOptions, convert, iter_convert, make_card, publish
from hubui.publishing import PushRequest
from hubui.spec import LoadedModel, ModelSpec

EMBEDDINGS = ("image_embeds", "text_embeds", "zero_shot_logits")
LABELS = ["astronaut", "cat", "rocket"]


# --- building LoadedModels as hubui.loading does -----------------------------------------------------
def _size(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def make_loaded(name: str, seed: int = 0, label_names: list[str] | None = None, **overrides: Any) -> LoadedModel:
    """Random weights, seeded; ``overrides`` are mean/std/interpolation/resize_mode."""
    torch.manual_seed(seed)
    force = merge_preprocess_kwargs({}, **overrides) if overrides else None
    model = open_clip.create_model(name, pretrained=None, force_preprocess_cfg=force).eval()
    pp = dict(model.visual.preprocess_cfg)
    model_cfg = open_clip.get_model_config(name)
    text_cfg = model_cfg.get("text_cfg", {})
    tokenizer = open_clip.get_tokenizer(name)
    hf_name = text_cfg.get("hf_tokenizer_name")
    return LoadedModel(
        spec=ModelSpec("open_clip", name, seed=seed),
        model=model,
        pretrained_cfg=pp,
        data_config={
            "input_size": (3, *_size(pp["size"])),
            "mean": pp["mean"],
            "std": pp["std"],
            "interpolation": pp["interpolation"],
            "resize_mode": pp["resize_mode"],
        },
        label_names=label_names,
        source="random",
        extra={
            "model_cfg": model_cfg,
            "tokenizer": {
                "kind": "hf" if hf_name else "clip_bpe",
                "hf_tokenizer_name": hf_name,
                "context_length": tokenizer.context_length,
            },
            "tokenizer_obj": tokenizer,
        },
    )


def register_config(tmp_dir: Path, name: str, cfg: dict[str, Any]) -> str:
    path = tmp_dir / f"{name}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return name


def tiny_cfg(hf_tokenizer: str | None = None) -> dict[str, Any]:
    # CLIP BPE ids go up to 49407; the tiny Hugging Face tokenizer has a few dozen.
    vocab = 64 if hf_tokenizer else 49408
    text: dict[str, Any] = {"context_length": 16, "vocab_size": vocab, "width": 32, "heads": 2, "layers": 2}
    if hf_tokenizer:
        text["hf_tokenizer_name"] = hf_tokenizer
    vision = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}
    return {"embed_dim": 32, "vision_cfg": vision, "text_cfg": text}


# --- what a user computes, with open_clip alone ------------------------------------------------------
def user_outputs(model: torch.nn.Module, preprocess: Any, tokenizer: Any) -> dict[str, torch.Tensor]:
    images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in real_image_paths()[:2]])
    tokens = tokenizer([f"a photo of a {label}" for label in LABELS])
    with torch.inference_mode():
        return {
            "tokens": tokens,
            "image_embeds": model.encode_image(images),
            "text_embeds": model.encode_text(tokens),
            "zero_shot_logits": model.get_logits(images, tokens)[0],
        }


def own_preprocess(loaded: LoadedModel) -> Any:
    return image_transform_v2(PreprocessCfg(**loaded.model.visual.preprocess_cfg), is_train=False)


def assert_same(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def convert_loaded(loaded: LoadedModel, out: Path, **options: Any):
    return convert(loaded.spec, ConvertOptions(out, **options), loaded=loaded)


# --- a tiny Hugging Face tokenizer, made offline and put on the local Hub ----------------------------
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "photo", "of", "an", *DEFAULT_LABELS[:4], "cup", "coffee"]


def make_tiny_tokenizer(folder: Path, shuffled: bool = False) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys(TINY_VOCAB))
    if shuffled:  # same words, other ids: another tokenizer that fits the same model
        words = words[:4] + words[4:][::-1]
    vocab = {word: i for i, word in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_tok_repo(localhub, tmp_path_factory) -> str:
    repo = f"alice/tiny-tok-{uuid.uuid4().hex[:8]}"
    folder = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=folder)
    return repo


@pytest.fixture(scope="module")
def tiny_hf(tiny_tok_repo, tmp_path_factory) -> LoadedModel:
    name = register_config(tmp_path_factory.mktemp("cfg"), "hubui-tiny-hf", tiny_cfg(tiny_tok_repo))
    loaded = make_loaded(name, seed=3)
    assert type(loaded.extra["tokenizer_obj"]).__name__ == "HFTokenizer"
    return loaded


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> LoadedModel:
    return make_loaded(register_config(tmp_path_factory.mktemp("cfg"), "hubui-tiny-bpe", tiny_cfg()), seed=4)


# --- ViT-B-32 ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_vit_b_32_round_trip_reproduces_the_users_outputs(localhub, tmp_path, repo_name, fresh_cache):
    loaded = make_loaded("ViT-B-32")
    expected = user_outputs(loaded.model, own_preprocess(loaded), loaded.extra["tokenizer_obj"])

    result = convert_loaded(loaded, tmp_path / "out")
    assert result.passed, result.report.reasons
    outputs = {o.name: o for o in result.report.outputs}
    assert set(EMBEDDINGS) <= set(outputs)
    for name in EMBEDDINGS:
        assert outputs[name].max_abs_diff == 0 and outputs[name].cosine_min == 1.0, name
    assert outputs["image_embeds"].shape == (8, 512) and outputs["text_embeds"].shape == (10, 512)
    assert outputs["zero_shot_logits"].shape == (8, 10) and outputs["zero_shot_logits"].top1_agreement == 1.0
    assert outputs["image_embeds"].top1_agreement is None  # argmax of an embedding means nothing
    assert outputs["text_tokens"].max_abs_diff == 0
    assert result.report.weights is not None and result.report.weights.identical
    assert result.report.weights.file.endswith("open_clip_model.safetensors")
    names = {n for n, _ in result.export.files}
    assert names == {"open_clip_config.json", "open_clip_model.safetensors", "parity.json"}
    config = json.loads((result.export.folder / "open_clip_config.json").read_text())
    assert config["model_cfg"] == open_clip.get_model_config("ViT-B-32")
    assert config["hubui"]["precision"] == "fp32"

    repo = f"alice/{repo_name}"
    published = publish(
        PushRequest(result.export.folder, repo, allow_random_weights=True), token=localhub.users.alice, original=loaded
    )
    assert published.verification.status == "passed", published.verification.detail

    card = ModelCard.load(repo)
    assert card.data.library_name == "open_clip"
    assert card.data.pipeline_tag == "zero-shot-image-classification"
    assert "clip" in card.data.tags
    section = card.text.split("Conversion and parity")[1]
    assert all(f"| {name} |" in section for name in EMBEDDINGS)

    # Independently of hubui: what a user of the repo runs.
    model, preprocess = open_clip.create_model_from_pretrained(f"hf-hub:{repo}", cache_dir=str(fresh_cache))
    tokenizer = open_clip.get_tokenizer(f"hf-hub:{repo}", cache_dir=str(fresh_cache))
    assert_same(user_outputs(model.eval(), preprocess, tokenizer), expected)


@pytest.mark.slow
def test_fp16_reports_drift_for_every_output_and_says_fp16(tmp_path):
    loaded = make_loaded("ViT-B-32", seed=1)
    result = convert_loaded(loaded, tmp_path / "out", precision="fp16")

    assert result.passed, result.report.reasons
    outputs = {o.name: o for o in result.report.outputs}
    for name in EMBEDDINGS:
        assert outputs[name].max_abs_diff > 0, name  # the rounding is real and reported
        assert 0.999 <= outputs[name].cosine_min < 1.0, name
    assert outputs["text_tokens"].max_abs_diff == 0
    saved = load_file(result.export.folder / "open_clip_model.safetensors")
    assert {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float16}
    config = json.loads((result.export.folder / "open_clip_config.json").read_text())
    assert config["hubui"]["precision"] == "fp16"
    card = make_card(result.export.folder, "alice/vit-b-32-fp16")
    assert "**Precision:** fp16" in card.text
    assert card.data.library_name == "open_clip"


# --- other towers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["RN50", "convnext_tiny", pytest.param("coca_ViT-B-32", marks=pytest.mark.slow)])
def test_sweep_fp32_is_exact(name, tmp_path):
    start = time.perf_counter()
    loaded = make_loaded(name)
    result = convert_loaded(loaded, tmp_path / "out")
    assert result.passed, result.report.reasons
    assert all(o.max_abs_diff == 0 for o in result.report.outputs)
    assert result.report.weights is not None and result.report.weights.identical
    assert time.perf_counter() - start < 120


# --- preprocessing overrides -------------------------------------------------------------------------
def test_preprocessing_overrides_travel_with_the_folder(tiny, tmp_path):
    overrides = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3), "interpolation": "bilinear", "resize_mode": "squash"}
    loaded = make_loaded(tiny.spec.architecture, seed=4, **overrides)
    result = convert_loaded(loaded, tmp_path / "out")
    assert result.passed, result.report.reasons

    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    pp = json.loads((tmp_path / "out" / "open_clip_config.json").read_text())["preprocess_cfg"]
    assert pp == as_json
    # open_clip's own loader ignores hubui's top-level record and applies the preprocessing
    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{tmp_path / 'out'}")
    rebuilt = rebuild_from_folder(tmp_path / "out", "open_clip")
    for cfg in (model.visual.preprocess_cfg, rebuilt.visual.preprocess_cfg):
        assert {k: list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k] for k in overrides} == as_json
    image = Image.open(real_image_paths()[0]).convert("RGB")
    assert torch.equal(preprocess(image), own_preprocess(loaded)(image))
    assert not torch.equal(preprocess(image), own_preprocess(tiny)(image))  # the overrides changed something


# --- tokenizers --------------------------------------------------------------------------------------
def test_hf_tokenizer_is_pushed_and_points_at_the_repo(localhub, tiny_hf, tiny_tok_repo, tmp_path, repo_name):
    expected = user_outputs(tiny_hf.model, own_preprocess(tiny_hf), tiny_hf.extra["tokenizer_obj"])
    result = convert_loaded(tiny_hf, tmp_path / "out", precision="fp16")
    assert result.passed, result.report.reasons
    files = {n for n, _ in result.export.files}
    assert {"tokenizer.json", "tokenizer_config.json"} <= files
    rebuilt_tok = getattr(rebuild_from_folder(tmp_path / "out", "open_clip"), TOKENIZER_ATTR)
    assert type(rebuilt_tok).__name__ == "HFTokenizer"

    repo = f"alice/{repo_name}"
    # No `original`: verified against the folder rebuilt by reference_from_folder.
    request = PushRequest(tmp_path / "out", repo, hf_tokenizer_self=True, private=True, allow_random_weights=True)
    published = publish(request, token=localhub.users.alice)
    assert published.verification.status == "passed", published.verification.parity["reasons"]

    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(api.list_repo_files(repo))
    pushed = hf_hub_download(repo, "open_clip_config.json", token=localhub.users.alice, cache_dir=tmp_path / "c")
    assert json.loads(Path(pushed).read_text())["model_cfg"]["text_cfg"]["hf_tokenizer_name"] == repo
    local = json.loads((tmp_path / "out" / "open_clip_config.json").read_text())
    assert local["model_cfg"]["text_cfg"]["hf_tokenizer_name"] == tiny_tok_repo  # the folder is unchanged

    # After reload from the Hub (the tokenizer now comes from the repo itself), text embeddings reproduce.
    api.update_repo_settings(repo, private=False)
    model, preprocess = open_clip.create_model_from_pretrained(f"hf-hub:{repo}", cache_dir=str(tmp_path / "u"))
    tokenizer = open_clip.get_tokenizer(f"hf-hub:{repo}", cache_dir=str(tmp_path / "u"))
    got = user_outputs(model.eval(), preprocess, tokenizer)
    assert torch.equal(got["tokens"], expected["tokens"])
    fp16 = make_loaded(tiny_hf.spec.architecture, seed=3)
    with torch.no_grad():
        for p in fp16.model.parameters():
            p.copy_(p.half().float())
    assert_same(got, user_outputs(fp16.model, own_preprocess(fp16), fp16.extra["tokenizer_obj"]))


def test_hf_tokenizer_without_self_keeps_its_source(localhub, tiny_hf, tiny_tok_repo, tmp_path, repo_name):
    result = convert_loaded(tiny_hf, tmp_path / "out")
    repo = f"alice/{repo_name}"
    published = publish(
        PushRequest(result.export.folder, repo, allow_random_weights=True), token=localhub.users.alice, original=tiny_hf
    )
    assert published.verification.status == "passed", published.verification.detail
    pushed = hf_hub_download(repo, "open_clip_config.json", cache_dir=tmp_path / "c")
    assert json.loads(Path(pushed).read_text())["model_cfg"]["text_cfg"]["hf_tokenizer_name"] == tiny_tok_repo


def test_missing_hf_tokenizer_is_an_error_never_a_substitute(tiny_hf, tmp_path):
    for tokenizer in (None, open_clip.get_tokenizer("ViT-B-32")):
        broken = LoadedModel(
            tiny_hf.spec,
            tiny_hf.model,
            tiny_hf.pretrained_cfg,
            tiny_hf.data_config,
            extra={**tiny_hf.extra, "tokenizer_obj": tokenizer},
        )
        with pytest.raises(ExportError, match="never substitutes"):
            export_model(broken, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_hf_tokenizer_self_needs_an_hf_tokenizer(localhub, tiny, tmp_path, repo_name):
    convert_loaded(tiny, tmp_path / "out")
    with pytest.raises(InvalidInputError, match="no Hugging Face tokenizer"):
        publish(
            PushRequest(tmp_path / "out", f"alice/{repo_name}", hf_tokenizer_self=True, allow_random_weights=True),
            token=localhub.users.alice,
        )
    assert not HfApi(endpoint=localhub.url).repo_exists(f"alice/{repo_name}")


def test_tokenizer_named_by_a_local_path_is_not_pushed_as_is(localhub, tiny_hf, tmp_path, repo_name):
    convert_loaded(tiny_hf, tmp_path / "out")
    path = tmp_path / "out" / "open_clip_config.json"
    config = json.loads(path.read_text())
    config["model_cfg"]["text_cfg"]["hf_tokenizer_name"] = str(make_tiny_tokenizer(tmp_path / "tok"))
    path.write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="local path"):
        publish(
            PushRequest(tmp_path / "out", f"alice/{repo_name}", allow_random_weights=True), token=localhub.users.alice
        )
    assert not HfApi(endpoint=localhub.url).repo_exists(f"alice/{repo_name}")


def test_a_different_rebuilt_tokenizer_fails_parity(tiny_hf, tmp_path):
    export_model(tiny_hf, tmp_path / "out")
    rebuilt = rebuild_from_folder(tmp_path / "out", "open_clip")
    other = open_clip.tokenizer.HFTokenizer(str(make_tiny_tokenizer(tmp_path / "other", shuffled=True)), 16)
    setattr(rebuilt, TOKENIZER_ATTR, other)
    report = run_parity(tiny_hf, rebuilt, "fp32", folder=tmp_path / "out")
    assert report.verdict == "fail"
    assert any(r.startswith("text_tokens:") for r in report.reasons)
    assert report.weights is not None and report.weights.identical


# --- parity mechanics --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tensor", "tower"),
    [
        ("visual.transformer.resblocks.1.mlp.c_fc.weight", "visual."),
        ("transformer.resblocks.0.attn.in_proj_weight", ""),
    ],
)
def test_a_corrupted_tower_is_found(tiny, tmp_path, monkeypatch, tensor, tower):
    real = export_module.cast_state_dict

    def corrupting(model, precision):
        sd = real(model, precision)
        sd[tensor] = sd[tensor] * 1.5
        return sd

    monkeypatch.setattr(export_module, "cast_state_dict", corrupting)
    result = convert_loaded(tiny, tmp_path / "out")
    assert not result.passed
    module = tensor.rsplit(".", 1)[0]
    assert result.report.diverging_module is not None
    assert result.report.diverging_module.startswith(tower) and module.startswith(result.report.diverging_module)


def test_streaming_and_cancel(tiny, tmp_path):
    events = list(iter_convert(tiny.spec, ConvertOptions(tmp_path / "a", batch_size=2), loaded=tiny))
    partial = [e.report for e in events if e.stage == "parity" and e.report.status == "running"]
    assert len(partial) >= 2 and events[-1].report.verdict == "pass"
    cancel = threading.Event()
    for event in iter_convert(tiny.spec, ConvertOptions(tmp_path / "b", batch_size=1), cancel=cancel, loaded=tiny):
        if event.stage == "parity":
            cancel.set()
        final = event
    assert final.report.verdict == "cancelled"


def test_labels_become_the_zero_shot_prompts(tmp_path, tiny):
    labelled = LoadedModel(
        tiny.spec, tiny.model, tiny.pretrained_cfg, tiny.data_config, label_names=LABELS, extra=tiny.extra
    )
    result = convert_loaded(labelled, tmp_path / "out")
    assert result.report.inputs["prompts"] == [f"a photo of a {label}" for label in LABELS]
    assert {o.name: o.shape for o in result.report.outputs}["zero_shot_logits"] == (8, len(LABELS))
    config = json.loads((tmp_path / "out" / "open_clip_config.json").read_text())
    assert config["hubui"]["label_names"] == LABELS


# --- revisions ---------------------------------------------------------------------------------------
def test_rebuild_from_hub_reads_the_exact_revision(localhub, tiny, tmp_path, repo_name, fresh_cache):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    repo = f"alice/{repo_name}"
    api.create_repo(repo, private=True)
    export_model(tiny, tmp_path / "fp32")
    api.upload_folder(repo_id=repo, folder_path=tmp_path / "fp32")
    main_sha = api.model_info(repo).sha
    api.create_branch(repo, branch="half")
    export_model(tiny, tmp_path / "fp16", precision="fp16")
    api.upload_folder(repo_id=repo, folder_path=tmp_path / "fp16", revision="half")

    key = "visual.transformer.resblocks.0.mlp.c_fc.weight"
    w = tiny.model.state_dict()[key]
    token = localhub.users.alice  # private repo, no token in the environment: passed explicitly
    main = rebuild_from_hub(repo, revision=main_sha, cache_dir=fresh_cache, library="open_clip", token=token)
    half = rebuild_from_hub(repo, revision="half", cache_dir=fresh_cache, library="open_clip", token=token)
    assert torch.equal(main.state_dict()[key], w)
    assert torch.equal(half.state_dict()[key], w.half().float())
    assert not torch.equal(w.half().float(), w)
    assert type(getattr(half, TOKENIZER_ATTR)).__name__ == "SimpleTokenizer"


def test_push_to_a_branch_is_verified_at_its_commit(localhub, tiny, tmp_path, repo_name):
    repo = f"alice/{repo_name}"
    convert_loaded(tiny, tmp_path / "out", precision="bf16")
    published = publish(
        PushRequest(tmp_path / "out", repo, branch="bf16", allow_random_weights=True),
        token=localhub.users.alice,
        original=tiny,
    )
    assert published.push.revision == "bf16"
    assert published.verification.status == "passed", published.verification.detail
