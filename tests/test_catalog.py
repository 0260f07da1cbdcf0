"""hubui.catalog: zoo search and model facts, against the real timm registry (no weights downloaded)."""

from __future__ import annotations

import json

import pytest
import timm

from hubui.catalog import CatalogEntry, ModelFacts, model_facts, resolve_model_name, search_models
from hubui.errors import InvalidInputError, ModelNotFoundError


# --- search -----------------------------------------------------------------------------------------
def test_wildcard_search_matches_whole_name_ignoring_case() -> None:
    found = search_models("timm", "RESNET5?")
    names = [e.name for e in found]
    assert names == timm.list_models("resnet5?")
    assert "resnet50" in names
    assert all(e == CatalogEntry(e.name, e.name, None, "timm") for e in found)


def test_wildcard_search_agrees_with_timm() -> None:
    ours = {e.name for e in search_models("timm", "vit_base_patch16_*")}
    assert ours == set(timm.list_models("vit_base_patch16_*"))
    assert ours


def test_substring_search_puts_exact_and_prefix_matches_first() -> None:
    names = [e.name for e in search_models("timm", "ResNet50")]
    assert names[0] == "resnet50"
    assert "seresnet50" in names and "resnet50d" in names
    assert names.index("resnet50d") < names.index("seresnet50")  # prefix before mere substring
    assert all("resnet50" in n for n in names)


def test_empty_pattern_lists_the_whole_zoo() -> None:
    archs = search_models("timm")
    tags = search_models("timm", pretrained=True)
    assert len(archs) == len(timm.list_models())
    assert len(tags) == len(timm.list_pretrained())
    assert len(archs) > 1000 and len(tags) > 1500


def test_pretrained_search_lists_arch_dot_tag_entries() -> None:
    found = search_models("timm", "resnet18.*in1k", pretrained=True)
    assert {e.name for e in found} == set(timm.list_pretrained("resnet18.*in1k"))
    entry = next(e for e in found if e.name == "resnet18.a1_in1k")
    assert entry == CatalogEntry("resnet18.a1_in1k", "resnet18", "a1_in1k", "timm")


def test_pretrained_substring_search_matches_tags() -> None:
    found = search_models("timm", "in22k", pretrained=True)
    assert found and all("in22k" in e.tag for e in found if e.tag)


def test_limit_and_no_match() -> None:
    assert len(search_models("timm", "vit", limit=3)) == 3
    assert search_models("timm", "no-such-model-anywhere") == []


def test_search_uses_a_cached_index() -> None:
    from hubui.libraries.timm import _timm_index

    search_models("timm", "resnet")
    before = _timm_index.cache_info()
    for pattern in ("vit*", "convnext", "efficientnet_b?"):
        search_models("timm", pattern)
    after = _timm_index.cache_info()
    assert after.misses == before.misses == 1
    assert after.hits > before.hits


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_bad_limit_is_rejected(limit: object) -> None:
    with pytest.raises(InvalidInputError, match=repr(limit).replace(".", r"\.")):
        search_models("timm", "vit", limit=limit)  # type: ignore[arg-type]


def test_unknown_library_is_named() -> None:
    with pytest.raises(InvalidInputError, match="'keras'"):
        search_models("keras", "x")


# --- facts ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resnet50_facts_without_weights() -> None:
    facts = model_facts("timm", "resnet50")
    assert isinstance(facts, ModelFacts)
    assert facts.num_params == 25_557_032
    assert facts.input_size == (3, 224, 224)
    assert facts.num_classes == 1000
    assert facts.mean == pytest.approx((0.485, 0.456, 0.406))
    assert facts.std == pytest.approx((0.229, 0.224, 0.225))
    assert facts.interpolation == "bicubic"
    assert facts.tag == "a1_in1k"  # timm's default tag for the bare name
    assert "a1_in1k" in facts.pretrained_tags and "tv_in1k" in facts.pretrained_tags
    # weights: params in fp32, plus BatchNorm buffers (float running stats, int64 counters)
    assert 4 * facts.num_params < facts.size_fp32_bytes < 4 * facts.num_params * 1.01
    assert facts.size_fp16_bytes < facts.size_fp32_bytes / 1.9
    data = facts.to_dict()
    assert json.loads(json.dumps(data))["input_size"] == [3, 224, 224]


def test_tiny_model_facts_match_a_real_build() -> None:
    facts = model_facts("timm", "test_resnet")
    model = timm.create_model("test_resnet")
    assert facts.num_params == sum(p.numel() for p in model.parameters())
    assert facts.input_size == (3, 160, 160)
    assert facts.num_classes == model.num_classes
    floats = sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())
    others = sum(t.numel() * t.element_size() for t in model.state_dict().values() if not t.is_floating_point())
    assert facts.size_fp32_bytes == 4 * floats + others
    assert facts.size_fp16_bytes == 2 * floats + others


def test_tagged_facts_carry_license_and_origin() -> None:
    facts = model_facts("timm", "resnet18.a1_in1k")
    assert (facts.architecture, facts.tag) == ("resnet18", "a1_in1k")
    assert facts.license == "apache-2.0"
    assert facts.hf_hub_id == "timm/resnet18.a1_in1k"
    assert facts.paper_ids == ("arXiv:2110.00476",)
    assert facts.origin_url
    assert facts.crop_pct == pytest.approx(0.95)


def test_architecture_without_weights_has_no_tag() -> None:
    facts = model_facts("timm", "test_mambaout")
    assert facts.tag is None and facts.hf_hub_id is None and facts.pretrained_tags == ()


def test_unknown_model_suggests_close_matches() -> None:
    with pytest.raises(ModelNotFoundError, match="'resnet5O'") as info:
        model_facts("timm", "resnet5O")
    assert "'resnet50'" in info.value.hint


def test_unknown_tag_suggests_the_architectures_tags() -> None:
    with pytest.raises(ModelNotFoundError, match="'a1_in2k'") as info:
        model_facts("timm", "resnet50.a1_in2k")
    assert "'a1_in1k'" in info.value.hint


def test_resolve_model_name_splits_arch_and_tag() -> None:
    assert resolve_model_name("timm", "resnet18.a1_in1k") == CatalogEntry(
        "resnet18.a1_in1k", "resnet18", "a1_in1k", "timm"
    )
    with pytest.raises(InvalidInputError):
        resolve_model_name("timm", "  ")
