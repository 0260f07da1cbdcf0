"""hubui.card: building, validating, merging and diffing model cards; round trips through the local Hub."""

from __future__ import annotations

import ast
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import HfApi, ModelCard

from hubui.card import (
    HUB_LICENSES,
    PARITY_HEADING,
    CardEvalResult,
    CardFields,
    build_card,
    card_diff,
    load_card_file,
    merge_card,
    python_blocks,
    usage_snippet,
    validate_fields,
)
from hubui.errors import InvalidCardError, InvalidInputError, InvalidRepoIdError
from hubui.localhub.browse import split_front_matter


def _parity(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "verdict": "pass",
        "status": "done",
        "precision": "fp32",
        "tolerance": {"max_abs_diff": 1e-6, "max_rel_diff": 1e-6, "cosine_min": 0.999999, "top1_agreement_min": 1.0},
        "outputs": [
            {
                "name": "logits",
                "shape": [8, 1000],
                "max_abs_diff": 1.5e-7,
                "mean_abs_diff": 2.25e-8,
                "max_rel_diff": 3e-7,
                "cosine_min": 0.99999994,
                "top1_agreement": 1.0,
                "top5_overlap": 0.975,
            }
        ],
        "weights": {"file": "model.safetensors", "compared": 62, "missing": 0, "per_tensor_max_abs_diff": {"a": 0.0}},
        "inputs": {"count": 8, "real": 4, "synthetic": 3, "user": 1, "names": ["x"]},
        "diverging_module": None,
        "versions": {"torch": "2.15.0", "timm": "1.0.30"},
        "schema_version": 1,  # extra keys are tolerated
        "elapsed_s": 1.5,
    }
    report.update(overrides)
    return report


def _fields(**overrides: Any) -> CardFields:
    values: dict[str, Any] = {
        "license": "apache-2.0",
        "language": ["en"],
        "tags": ["image-classification", "timm", "arxiv:1512.03385"],
        "datasets": ["imagenet-1k"],
        "base_model": "timm/resnet18.a1_in1k",
        "description": "A tiny ResNet converted for tests.",
        "citation": "@article{he2016,\n  title={Deep Residual Learning},\n  year={2016}\n}",
        "eval_results": [
            CardEvalResult("image-classification", "imagenet-1k", "ImageNet-1k", "accuracy", 0.713, dataset_split="val")
        ],
    }
    values.update(overrides)
    return CardFields(**values)


def _build(fields: CardFields | None = None, repo_id: str = "alice/tiny", **kwargs: Any) -> ModelCard:
    args: dict[str, Any] = {
        "parity": _parity(),
        "precision": "fp32",
        "library_versions": {"timm": "1.0.31", "huggingface_hub": "2.4.0"},
        "source": "timm:test_resnet",
    }
    args.update(kwargs)
    return build_card(fields or _fields(), repo_id=repo_id, **args)


# --- building -------------------------------------------------------------------------------------------
def test_build_and_parse_back() -> None:
    text = str(_build())
    card = ModelCard(text)
    data = card.data
    assert data.license == "apache-2.0"
    assert data.language == ["en"]
    assert data.tags == ["image-classification", "timm", "arxiv:1512.03385"]
    assert data.datasets == ["imagenet-1k"]
    assert data.pipeline_tag == "image-classification"
    assert data.library_name == "timm"
    assert data.base_model == "timm/resnet18.a1_in1k"
    assert data.model_name == "tiny"
    (result,) = data.eval_results
    assert (result.dataset_type, result.metric_type, result.metric_value) == ("imagenet-1k", "accuracy", 0.713)
    assert result.dataset_split == "val"
    body = card.text
    assert "A tiny ResNet converted for tests." in body
    assert "```bibtex\n@article{he2016," in body
    assert f"## {PARITY_HEADING}" in body
    assert "Parity override" not in body


def test_parity_section_contents() -> None:
    body = ModelCard(str(_build())).text
    header = (
        "| output | shape | max abs diff | mean abs diff | max rel diff | min cosine | top-1 agreement | top-5 overlap"
    )
    assert header in body
    assert "| logits | 8×1000 | 1.50e-07 | 2.25e-08 | 3.00e-07 | 0.99999994 | 100% | 97.5% |" in body
    assert "**Verdict:** pass (done)" in body
    assert "**Precision:** fp32\n" in body
    mismatch = ModelCard(str(_build(precision="fp16"))).text
    assert "**Precision:** fp16 (the parity report was run at fp32)" in mismatch
    assert "8 (4 real images, 3 synthetic, 1 user-supplied)" in body
    assert "`timm:test_resnet`" in body
    # library_versions win over the report's own versions; nested weight tables are left out.
    assert "| timm | 1.0.31 |" in body and "1.0.30" not in body
    assert "| torch | 2.15.0 |" in body
    assert "compared=62" in body and "per_tensor" not in body


def test_failed_parity_with_override_is_visible() -> None:
    parity = _parity(verdict="fail", reasons=["logits: cosine_min 0.981 < 0.999999"], diverging_module="layer3.0")
    body = ModelCard(str(_build(parity=parity, override_note="Reviewed by hand: bf16 drift only."))).text
    first = body.index("Parity override")
    assert first < body.index("## Usage"), "the note must be at the top of the card"
    assert "> Reviewed by hand: bf16 drift only." in body
    assert "**Verdict:** fail (done) — **overridden at push time**" in body
    assert "logits: cosine_min 0.981 < 0.999999" in body
    assert "`layer3.0`" in body


def test_no_parity_and_no_optional_fields() -> None:
    card = _build(CardFields(), parity=None)
    data = card.data.to_dict()
    assert data == {"library_name": "timm", "pipeline_tag": "image-classification"}
    assert "No parity check was run" in card.text
    assert "## Citation" not in card.text


def test_usage_override_and_open_clip_snippet() -> None:
    card = _build(_fields(usage="Load it with `timm`.\n---\nDone."))
    assert "Load it with `timm`." in card.text
    assert "hf-hub:alice/tiny" not in card.text
    clip = _build(_fields(library_name="open_clip", pipeline_tag="zero-shot-image-classification"))
    (code,) = python_blocks(clip.text)
    ast.parse(code)
    assert 'open_clip.create_model_from_pretrained("hf-hub:alice/tiny")' in code
    with pytest.raises(InvalidCardError, match="usage"):
        validate_fields(_fields(library_name="diffusers"))
    validate_fields(_fields(library_name="diffusers", usage="See the docs."))
    # The transformers target (hubui.to_transformers) has its own snippet: Auto classes from the repo.
    (code,) = python_blocks(_build(_fields(library_name="transformers")).text)
    ast.parse(code)
    assert 'AutoModelForImageClassification.from_pretrained("alice/tiny")' in code


def test_citation_cannot_break_out_of_its_fence() -> None:
    card = _build(_fields(citation="```\n# Not a heading\n```"))
    assert "````bibtex\n```\n# Not a heading\n```\n````" in card.text


def test_bad_build_arguments() -> None:
    with pytest.raises(InvalidRepoIdError):
        _build(repo_id="no-namespace")
    with pytest.raises(InvalidCardError, match="precision"):
        _build(precision="int8")
    with pytest.raises(InvalidCardError, match="source"):
        _build(source="a\nb")


def test_template_is_package_data() -> None:
    assert resources.files("hubui").joinpath("templates/modelcard.md").is_file()


# --- validation and injection ---------------------------------------------------------------------------
def test_front_matter_delimiters_in_description_are_neutralised() -> None:
    evil = "Intro.\n---\nlicense: mit\npipeline_tag: text-generation\n---\n\n```yaml\n---\nkept: in code\n```\n"
    text = str(_build(_fields(description=evil)))
    front, body = split_front_matter(text)
    assert yaml.safe_load(front)["license"] == "apache-2.0"
    assert ModelCard(text).data.pipeline_tag == "image-classification"
    outside_code = body.split("```yaml")[0]
    assert "\n---\n" not in outside_code, "a bare --- line would start a second metadata block for naive parsers"
    assert "license: mit" in body  # the text itself is kept, only the delimiter changes
    assert "---\nkept: in code" in body  # code blocks are left as written


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"tags": ["ok", "key: value"]}, "tags[1]", "': '"),
        ({"tags": ["---"]}, "tags[0]", "---"),
        ({"tags": ["two\nlines"]}, "tags[0]", "several lines"),
        ({"tags": ["x" * 200]}, "tags[0]", "at most"),
        ({"tags": ["a\x00b"]}, "tags[0]", "control character"),
        ({"tags": "timm"}, "tags", "must be a list"),
        ({"license": "mit\nlicense: other"}, "license", "several lines"),
        ({"license": "apache2.0"}, "license", "Did you mean apache-2.0"),
        ({"license": "Proprietary"}, "license", "not a license identifier"),
        ({"license": "other"}, "license_name", "required"),
        ({"license_name": "x"}, "license_name", "only used with license 'other'"),
        ({"language": ["english"]}, "language[0]", "language code"),
        ({"datasets": ["bad id!"]}, "datasets[0]", "dataset id"),
        ({"pipeline_tag": "Image Classification"}, "pipeline_tag", "task id"),
        ({"description": "bad \udc80 bytes"}, "description", "lone surrogate"),
        ({"citation": b"bytes"}, "citation", "must be text"),
        ({"model_name": "a\rb"}, "model_name", "control character"),
        ({"eval_results": [{"task_type": "x"}]}, "eval_results[0]", "lacks"),
        ({"eval_results": [{"oops": 1}]}, "eval_results[0]", "oops"),
    ],
)
def test_invalid_fields_are_rejected(overrides: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(InvalidCardError) as info:
        validate_fields(_fields(**overrides))
    assert repr(field) in info.value.message or field in info.value.message
    assert fragment in str(info.value)
    assert info.value.hint


def test_bad_value_is_truncated_in_message() -> None:
    with pytest.raises(InvalidCardError) as info:
        validate_fields(_fields(license="z" * 500))
    assert len(info.value.message) < 200


def test_other_license_with_name_and_link() -> None:
    fields = _fields(license="other", license_name="my-license-1.0", license_link="LICENSE")
    data = ModelCard(str(_build(fields))).data
    assert (data.license, data.license_name, data.license_link) == ("other", "my-license-1.0", "LICENSE")


def test_license_list_has_the_common_ones() -> None:
    assert {"apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-nc-4.0", "openrail", "llama2", "other"} <= (
        HUB_LICENSES
    )


# --- card files -----------------------------------------------------------------------------------------
def test_load_card_file_json_and_yaml(tmp_path: Path) -> None:
    payload = {
        "license": "mit",
        "language": "en",
        "tags": ["timm"],
        "description": "From a file.",
        "eval_results": [
            {
                "task_type": "image-classification",
                "dataset_type": "imagenet-1k",
                "dataset_name": "ImageNet-1k",
                "metric_type": "accuracy",
                "metric_value": 0.5,
            }
        ],
    }
    path = tmp_path / "card.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    fields = load_card_file(path)
    assert fields.language == ["en"] and fields.license == "mit"
    assert fields.eval_results[0].metric_value == 0.5
    ypath = tmp_path / "card.yaml"
    ypath.write_text("license: cc-by-4.0\ntags: [timm, resnet]\ndatasets: imagenet-1k\n", encoding="utf-8")
    assert load_card_file(ypath).datasets == ["imagenet-1k"]


def test_load_card_file_errors(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"license": "mit", "lisence": "x", "author": "me"}), encoding="utf-8")
    with pytest.raises(InvalidCardError, match="unknown key\\(s\\): author, lisence"):
        load_card_file(unknown)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("description: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InvalidCardError, match="not UTF-8"):
        load_card_file(latin1)
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('{"description": "bad \\udc80"}', encoding="utf-8")
    with pytest.raises(InvalidCardError, match="lone surrogate"):
        load_card_file(surrogate)
    broken = tmp_path / "broken.yaml"
    broken.write_text("tags: [a, b\n", encoding="utf-8")
    with pytest.raises(InvalidCardError, match="not valid YAML"):
        load_card_file(broken)
    listy = tmp_path / "list.json"
    listy.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidCardError, match="mapping"):
        load_card_file(listy)
    with pytest.raises(InvalidCardError, match=r"\.json, \.yaml"):
        load_card_file(tmp_path / "card.txt")
    with pytest.raises(InvalidCardError, match="Cannot read"):
        load_card_file(tmp_path / "missing.json")


# --- existing READMEs -----------------------------------------------------------------------------------
_HANDWRITTEN = """---
license: mit
custom_key: keep me
tags:
- handwritten
---

# My ResNet

Hand-written introduction.
"""


def test_merge_modes_without_existing_readme() -> None:
    card = _build()
    for mode in ("keep", "replace", "merge"):
        assert merge_card(None, card, mode) == str(card)


def test_keep_and_replace() -> None:
    card = _build()
    assert merge_card(_HANDWRITTEN, card, "keep") is None
    assert merge_card(_HANDWRITTEN, card, "replace") == str(card)
    with pytest.raises(InvalidInputError, match="overwrite"):
        merge_card(_HANDWRITTEN, card, "overwrite")  # type: ignore[arg-type]


def test_merge_keeps_text_updates_metadata_and_appends_parity() -> None:
    merged = merge_card(_HANDWRITTEN, _build(), "merge")
    assert merged is not None
    card = ModelCard(merged)
    assert card.data.license == "apache-2.0"  # new metadata wins
    assert card.data.custom_key == "keep me"  # keys only the old card has stay
    assert card.data.tags == ["image-classification", "timm", "arxiv:1512.03385"]
    assert card.text.startswith("\n# My ResNet\n\nHand-written introduction.\n")
    assert card.text.count(f"## {PARITY_HEADING}") == 1
    assert "## Usage" not in card.text  # only the parity section is brought over


def test_merge_replaces_an_existing_parity_section() -> None:
    first = merge_card(_HANDWRITTEN, _build(), "merge")
    assert first is not None
    with_footer = first + "\n## License notes\n\nStays.\n"
    second = merge_card(with_footer, _build(parity=_parity(verdict="fail")), "merge")
    assert second is not None
    assert second.count(f"## {PARITY_HEADING}") == 1
    assert "**Verdict:** fail" in second and "**Verdict:** pass" not in second
    assert second.rstrip().endswith("Stays.")


def test_merge_replaces_a_heading_only_section() -> None:
    existing = (
        f"---\nlicense: mit\n---\n# Card\n\n## {PARITY_HEADING}\n\nold numbers\n\n### detail\nold\n\n## Other\nkeep\n"
    )
    merged = merge_card(existing, _build(), "merge")
    assert merged is not None
    assert "old numbers" not in merged and "\nold\n" not in merged
    assert merged.index("| logits |") < merged.index("## Other\nkeep")


def test_merge_with_broken_metadata() -> None:
    with pytest.raises(InvalidCardError, match="replace"):
        merge_card("---\nlicense: [unclosed\n---\nbody\n", _build(), "merge")


def test_card_diff() -> None:
    new = str(_build())
    created = card_diff(None, new)
    assert created.startswith("--- /dev/null\n+++ README.md (new)\n")
    assert "+license: apache-2.0\n" in created
    assert card_diff(new, new) == ""
    changed = card_diff(_HANDWRITTEN, new)
    assert "-license: mit\n" in changed and "+license: apache-2.0\n" in changed


# --- against the local Hub ------------------------------------------------------------------------------
@pytest.fixture
def tiny_timm_repo(localhub, repo_name: str, tmp_path: Path) -> tuple[str, Any]:
    """A seeded test_resnet pushed with timm's own save_for_hf to alice/<unique>, public."""
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False).eval()
    folder = tmp_path / "export"
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    repo_id = f"alice/{repo_name}"
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="weights")
    return repo_id, model


def test_card_round_trip_through_local_hub(localhub, tiny_timm_repo: tuple[str, Any]) -> None:
    repo_id, _ = tiny_timm_repo
    card = _build(repo_id=repo_id)
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    # upload_file sends the README through the Hub's validate-yaml before committing it.
    api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md", repo_id=repo_id)
    loaded = ModelCard.load(repo_id, token=localhub.users.alice)
    assert loaded.data.to_dict() == card.data.to_dict()
    assert loaded.text == card.text
    assert card_diff(str(loaded), str(card)) == ""


def test_usage_snippet_loads_the_pushed_model(localhub, tiny_timm_repo: tuple[str, Any]) -> None:
    import torch

    repo_id, original = tiny_timm_repo
    card = _build(repo_id=repo_id)
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md", repo_id=repo_id)
    readme = ModelCard.load(repo_id).content
    (code,) = python_blocks(readme)
    assert code == usage_snippet(repo_id)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<model card usage>", "exec"), namespace)
    loaded = namespace["model"]
    assert namespace["top5_class_indices"].shape == (1, 5)
    for name, tensor in original.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
