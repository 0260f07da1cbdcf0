"""hubui.catalog for open_clip: zoo search and model facts against open_clip's real registry (no weights)."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from hubui.catalog import (
    CatalogEntry,
    ModelFacts,
    PretrainedTag,
    model_facts,
    resolve_model_name,
    search_models,
    split_open_clip_hf_hub,
)
from hubui.errors import ModelNotFoundError


# --- search -----------------------------------------------------------------------------------------
def test_counts_match_open_clips_lists() -> None:
    archs = search_models("open_clip")
    tags = search_models("open_clip", pretrained=True)
    assert [e.name for e in archs] == open_clip.list_models()
    assert [(e.architecture, e.tag) for e in tags] == open_clip.list_pretrained()
    assert len(archs) > 100 and len(tags) > 150
    assert all(e.tag is None and e.library == "open_clip" for e in archs)


def test_pretrained_entries_are_arch_colon_tag() -> None:
    found = search_models("open_clip", "ViT-B-32:laion2b*", pretrained=True)
    assert CatalogEntry("ViT-B-32:laion2b_s34b_b79k", "ViT-B-32", "laion2b_s34b_b79k", "open_clip") in found
    assert all(e.architecture == "ViT-B-32" and e.tag.startswith("laion2b") for e in found)
    # open_clip names hold dots and dashes, never a colon: the split is unambiguous
    assert all(":" not in e.name for e in search_models("open_clip"))
    assert {n for n in open_clip.list_models() if "." in n or "-quickgelu" in n}


def test_substring_search_ignores_case_and_ranks_exact_first() -> None:
    names = [e.name for e in search_models("open_clip", "vit-b-32")]
    assert names[0] == "ViT-B-32"
    assert "ViT-B-32-quickgelu" in names and "coca_ViT-B-32" in names
    assert names.index("ViT-B-32-quickgelu") < names.index("coca_ViT-B-32")  # prefix before mere substring


def test_search_uses_a_cached_index() -> None:
    from hubui.libraries.open_clip_catalog import _openclip_index_for

    search_models("open_clip", "RN")
    before = _openclip_index_for.cache_info()
    for pattern in ("ViT-*", "siglip", "convnext"):
        search_models("open_clip", pattern, pretrained=True)
    after = _openclip_index_for.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3


def test_configs_added_at_run_time_are_found(tmp_path) -> None:
    path = tmp_path / "hubui-test-tiny-clip.json"
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    }
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    assert [e.name for e in search_models("open_clip", "hubui-test-tiny-clip")] == ["hubui-test-tiny-clip"]
    facts = model_facts("open_clip", "hubui-test-tiny-clip")
    assert (facts.embed_dim, facts.input_size, facts.context_length, facts.pretrained_tags) == (16, (3, 32, 32), 8, ())


def test_resolve_splits_on_colon_and_cleans_tags_like_open_clip() -> None:
    assert resolve_model_name("open_clip", "EVA02-B-16") == CatalogEntry("EVA02-B-16", "EVA02-B-16", None, "open_clip")
    entry = resolve_model_name("open_clip", "ViT-B-32:LAION2B-s34b-b79k")
    assert entry == CatalogEntry("ViT-B-32:laion2b_s34b_b79k", "ViT-B-32", "laion2b_s34b_b79k", "open_clip")


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(ModelNotFoundError, match="'ViT-B-33'") as info:
        model_facts("open_clip", "ViT-B-33")
    assert "'ViT-B-32'" in info.value.hint
    with pytest.raises(ModelNotFoundError, match="'laion2b'") as info:
        resolve_model_name("open_clip", "ViT-B-32:laion2b")
    assert "'laion2b_e16'" in info.value.hint
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_name("open_clip", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert "hf_hub_id='laion/CLIP-ViT-B-32-laion2B-s34B-b79K'" in info.value.hint


def test_split_hf_hub_like_open_clip() -> None:
    assert split_open_clip_hf_hub("laion/CLIP-ViT-B-32-laion2B-s34B-b79K/") == (
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        None,
    )
    assert split_open_clip_hf_hub("timm/x.y/open_clip_pytorch_model.bin") == ("timm/x.y", "open_clip_pytorch_model.bin")
    assert split_open_clip_hf_hub("") == (None, None)


# --- facts ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_vit_b_32_facts_match_a_real_build() -> None:
    facts = model_facts("open_clip", "ViT-B-32")
    assert isinstance(facts, ModelFacts)
    assert (facts.embed_dim, facts.context_length, facts.tokenizer) == (512, 77, "clip_bpe")
    assert facts.hf_tokenizer_name is None
    assert facts.input_size == (3, 224, 224)
    assert facts.built_on == "meta" and facts.model_class == "CLIP" and facts.quick_gelu is False
    model = open_clip.create_model("ViT-B-32")
    assert facts.num_params == sum(p.numel() for p in model.parameters()) == 151_277_313
    floats = sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())
    assert facts.size_fp32_bytes == 4 * floats and facts.size_fp16_bytes == 2 * floats
    assert facts.mean == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    assert facts.std == pytest.approx(open_clip.OPENAI_DATASET_STD)
    assert (facts.interpolation, facts.resize_mode, facts.crop_pct, facts.crop_mode) == (
        "bicubic",
        "shortest",
        1.0,
        "center",
    )
    assert facts.num_classes == 0 and facts.tag is None and facts.hf_hub_id is None
    assert facts.pretrained_tags == tuple(sorted(open_clip.list_pretrained_tags_by_model("ViT-B-32")))
    openai = next(d for d in facts.tag_details or () if d.tag == "openai")
    assert openai.quick_gelu and openai.url and openai.url.startswith("https://")
    data = json.loads(json.dumps(facts.to_dict()))
    assert data["embed_dim"] == 512 and data["tag_details"][0]["tag"] == facts.pretrained_tags[0]


def test_tagged_facts_carry_the_tags_hub_repo_and_preprocessing() -> None:
    facts = model_facts("open_clip", "ViT-B-32:laion2b_s34b_b79k")
    assert (facts.architecture, facts.tag) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert facts.hf_hub_id == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    detail = next(d for d in facts.tag_details or () if d.tag == facts.tag)
    assert detail == PretrainedTag(
        tag="laion2b_s34b_b79k",
        hf_hub_id="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        hf_hub_filename=None,
        url=None,
        quick_gelu=False,
        license=None,
        mean=facts.mean,
        std=facts.std,
        interpolation="bicubic",
        resize_mode="shortest",
    )


def test_rn50_is_a_resnet_tower() -> None:
    facts = model_facts("open_clip", "RN50")
    assert facts.num_params == 102_007_137
    assert (facts.embed_dim, facts.input_size, facts.tokenizer) == (1024, (3, 224, 224), "clip_bpe")
    with torch.device("meta"):
        model = open_clip.create_model("RN50", device="meta")
    assert type(model.visual).__name__ == "ModifiedResNet"
    assert {"cc12m", "openai", "yfcc15m"} <= set(facts.pretrained_tags)


def test_siglip_uses_a_hugging_face_tokenizer() -> None:
    facts = model_facts("open_clip", "ViT-B-16-SigLIP:webli")
    assert facts.tokenizer == "hf" and facts.hf_tokenizer_name == "timm/ViT-B-16-SigLIP"
    assert (facts.embed_dim, facts.context_length, facts.model_class) == (768, 64, "CustomTextCLIP")
    assert facts.mean == (0.5, 0.5, 0.5) and facts.resize_mode == "squash" and facts.crop_mode == "squash"
    assert facts.hf_hub_id == "timm/ViT-B-16-SigLIP"


def test_coca_and_timm_towers_build_on_meta() -> None:
    coca = model_facts("open_clip", "coca_ViT-B-32")
    assert coca.model_class == "CoCa" and coca.built_on == "meta" and coca.context_length == 76
    convnext = model_facts("open_clip", "convnext_base")
    assert convnext.built_on == "meta" and convnext.num_params > 100_000_000


def test_timm_facts_keep_their_dict_shape() -> None:
    data = model_facts("timm", "test_resnet").to_dict()
    assert not {"embed_dim", "context_length", "tokenizer", "tag_details", "built_on"} & set(data)
