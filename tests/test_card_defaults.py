"""Issue 20, items 2 and 13 (core): the card form starts from what is known about the model, the card a push writes
is exactly the form, the dry run says when the card names no licence, and the writing-guidance sections render
under their headings and load back from a README ("Load existing card"), evaluation rows included.

Pushes go to the session's local Hub over HTTP with the real huggingface_hub client; the README is read back
from the Hub. Pretrained weights are seeded where timm's own config looks for them (``timm/<arch>.<tag>``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from hubui.card import (
    CARD_SECTIONS,
    EVAL_PROMPT,
    SECTION_HEADINGS,
    SECTION_PROMPTS,
    CardEvalResult,
    CardFields,
    build_card,
    load_card_file,
)
from hubui.card_lint import NO_LICENSE
from hubui.card_parse import fields_from_readme
from hubui.card_prefill import card_defaults, card_defaults_for, licence_of
from hubui.catalog import model_facts
from hubui.errors import InvalidCardError
from hubui.libraries import get_format
from hubui.pipeline import ConvertOptions, ConvertResult, convert, dry_run, publish
from hubui.publishing import PushRequest
from hubui.spec import ModelSpec

ARCH, TAG = "test_byobnet", "r160_in1k"  # a tiny timm model no other test seeds on the Hub
CLIP_NAME = "hubui-card-defaults-clip"


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained(localhub, tmp_path_factory) -> ConvertResult:
    """``timm:test_byobnet.r160_in1k`` converted from weights seeded at ``timm/test_byobnet.r160_in1k``."""
    import timm

    torch.manual_seed(11)
    model = timm.create_model(ARCH, pretrained=False).eval()
    timm.models.push_to_hf_hub(model, f"timm/{ARCH}.{TAG}", token=localhub.users.alice, safe_serialization=True)
    result = convert(ModelSpec("timm", ARCH, pretrained=TAG), ConvertOptions(tmp_path_factory.mktemp("tag") / "out"))
    assert result.passed
    return result


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory) -> ModelSpec:
    """A tiny open_clip architecture (registered as its users do) and a checkpoint of seeded weights."""
    import open_clip
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("clip")
    text = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
    vision = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}
    (folder / f"{CLIP_NAME}.json").write_text(json.dumps({"embed_dim": 32, "vision_cfg": vision, "text_cfg": text}))
    open_clip.add_model_config(folder / f"{CLIP_NAME}.json")
    torch.manual_seed(4)
    model = open_clip.create_model(CLIP_NAME, pretrained=None).eval()
    save_file(model.state_dict(), folder / "clip.safetensors")
    return ModelSpec("open_clip", CLIP_NAME, checkpoint=str(folder / "clip.safetensors"))


@pytest.fixture
def api(localhub) -> HfApi:
    return HfApi(endpoint=localhub.url, token=localhub.users.alice)


def _readme(localhub, repo: str) -> str:
    """The README as the Hub serves it."""
    return ModelCard.load(repo, token=localhub.users.alice).content


# --- item 2: the form's pre-filled values -------------------------------------------------------------
def test_a_timm_tag_prefills_its_licence_base_model_and_task(pretrained: ConvertResult) -> None:
    form = card_defaults_for(pretrained)
    assert (form.license, form.license_name) == ("apache-2.0", None)  # timm's config for the tag says so
    assert form.base_model == f"timm/{ARCH}.{TAG}"
    assert (form.library_name, form.pipeline_tag) == ("timm", "image-classification")
    assert card_defaults(pretrained.loaded) == card_defaults(ModelSpec("timm", ARCH, pretrained=TAG)) == form
    # The issue's own example, from the catalog alone (no weights are downloaded for it).
    resnet = card_defaults(ModelSpec("timm", "resnet18", pretrained="a1_in1k"))
    assert (resnet.license, resnet.base_model) == ("apache-2.0", "timm/resnet18.a1_in1k")


def test_facts_of_another_tag_are_not_used(pretrained: ConvertResult) -> None:
    other = model_facts("timm", "resnet18.a1_in1k")
    form = card_defaults(ModelSpec("timm", "resnet18", pretrained="tv_in1k"), facts=other)
    assert form.base_model == "timm/resnet18.tv_in1k"
    assert form.license == model_facts("timm", "resnet18.tv_in1k").license


def test_an_open_clip_tag_prefills_its_hub_repo_and_the_zero_shot_task() -> None:
    form = card_defaults(ModelSpec("open_clip", "ViT-B-32", pretrained="laion2b_s34b_b79k"))
    assert (form.library_name, form.pipeline_tag, form.tags) == (
        "open_clip",
        "zero-shot-image-classification",
        ["clip"],
    )
    assert form.base_model == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    facts = model_facts("open_clip", "ViT-B-32:laion2b_s34b_b79k")
    assert form.license == licence_of(facts.license)[0]  # None: open_clip's config names no licence; none is made up


def test_random_weights_and_checkpoints_claim_no_lineage(tmp_path: Path, clip_checkpoint: ModelSpec) -> None:
    ckpt = tmp_path / "mine.safetensors"  # never read: where the weights come from is enough
    tagged = model_facts("timm", "resnet18.a1_in1k")
    cases = {
        "timm random": (card_defaults(ModelSpec("timm", "resnet18")), "image-classification"),
        "timm checkpoint": (
            card_defaults(ModelSpec("timm", "resnet18", checkpoint=str(ckpt)), facts=tagged),
            "image-classification",
        ),
        "open_clip random": (card_defaults(ModelSpec("open_clip", "ViT-B-32")), "zero-shot-image-classification"),
        "open_clip checkpoint": (card_defaults(clip_checkpoint), "zero-shot-image-classification"),
    }
    for name, (form, task) in cases.items():
        assert (form.license, form.license_name, form.base_model) == (None, None, None), name
        assert form.pipeline_tag == task, name


def test_the_transformers_target_prefills_what_it_writes() -> None:
    if not get_format("transformers").available():
        pytest.skip("transformers is not installed")
    form = card_defaults(ModelSpec("timm", "resnet18", pretrained="a1_in1k"), "transformers")
    assert (form.library_name, form.pipeline_tag, form.tags) == ("transformers", "image-classification", ["timm"])
    assert (form.license, form.base_model) == ("apache-2.0", "timm/resnet18.a1_in1k")


def test_a_licence_the_hub_has_no_identifier_for_is_other_with_its_name() -> None:
    assert licence_of("apache-2.0") == ("apache-2.0", None)
    assert licence_of("MIT") == ("mit", None)
    assert licence_of("seer-license") == ("other", "seer-license")
    assert licence_of("unknown") == licence_of("other") == licence_of(None) == licence_of("") == (None, None)
    assert licence_of("Some licence, see the paper") == (None, None)  # not a name the card can carry


# --- item 2: the card is the form -------------------------------------------------------------------
def test_the_prefilled_form_is_what_the_pushed_card_says(localhub, pretrained: ConvertResult, repo_name: str) -> None:
    form = card_defaults_for(pretrained)
    repo = f"alice/{repo_name}"
    publish(PushRequest(pretrained.export.folder, repo), form, token=localhub.users.alice, verify=False)
    data = ModelCard(_readme(localhub, repo)).data
    assert (data.license, data.base_model, data.pipeline_tag, data.library_name) == (
        "apache-2.0",
        f"timm/{ARCH}.{TAG}",
        "image-classification",
        "timm",
    )


def _edited(form: CardFields) -> CardFields:
    """Every field a user may change in the form, changed."""
    return replace(
        form,
        license="mit",
        language=["en"],
        tags=["tiny", "tests"],
        datasets=["imagenet-1k"],
        pipeline_tag="image-feature-extraction",
        base_model="timm/resnet18.a1_in1k",
        description="A tiny ByobNet for tests.",
        citation="@misc{tiny,\n  title={Tiny}\n}",
        eval_results=[
            CardEvalResult(
                "image-classification", "imagenet-1k", "ImageNet-1k", "accuracy", 0.713, dataset_split="val"
            ),
            CardEvalResult("image-classification", "imagenet-1k", "ImageNet-1k", "top5", "91.2 ± 0.1"),
        ],
        intended_use="Tests of hubui only.\n\n### Out of scope\n\nAnything real.",
        limitations="Random-ish weights: its predictions mean nothing.",
        training_data="None: seeded at random, then uploaded as a pretrained tag.",
        evaluation="Accuracy on the ImageNet-1k validation split.",
    )


def test_the_pushed_card_writes_each_value_of_the_form(localhub, pretrained: ConvertResult, repo_name: str) -> None:
    form = _edited(card_defaults_for(pretrained))
    repo = f"alice/{repo_name}"
    publish(PushRequest(pretrained.export.folder, repo), form, token=localhub.users.alice, verify=False)
    readme = _readme(localhub, repo)
    data = ModelCard(readme).data
    assert data.pipeline_tag == "image-feature-extraction" and data.license == "mit"
    assert data.base_model == "timm/resnet18.a1_in1k"
    # "Load existing card" gives the form back, field for field (usage is generated for the repo, never loaded).
    loaded = fields_from_readme(readme)
    assert loaded.left_out == ()
    assert loaded.fields == form


def test_an_open_clip_card_writes_the_pipeline_tag_the_form_holds(
    localhub, clip_checkpoint: ModelSpec, tmp_path: Path, repo_name: str
) -> None:
    result = convert(clip_checkpoint, ConvertOptions(tmp_path / "out"))
    assert result.passed
    form = card_defaults_for(result)
    assert form.pipeline_tag == "zero-shot-image-classification"  # what the form shows first
    chosen = replace(form, pipeline_tag="image-classification")  # the user's choice in the form
    repo = f"alice/{repo_name}"
    publish(PushRequest(result.export.folder, repo), chosen, token=localhub.users.alice, verify=False)
    data = ModelCard(_readme(localhub, repo)).data
    assert (data.pipeline_tag, data.library_name) == ("image-classification", "open_clip")


def test_the_dry_run_warns_when_the_card_names_no_licence(
    localhub, api: HfApi, pretrained: ConvertResult, repo_name: str
) -> None:
    repo = f"alice/{repo_name}"
    form = card_defaults_for(pretrained)
    folder = pretrained.export.folder
    plan = dry_run(PushRequest(folder, repo), replace(form, license=None), token=localhub.users.alice)
    assert plan.warnings == (NO_LICENSE,) and plan.to_dict()["warnings"] == [NO_LICENSE]
    assert "licence" in NO_LICENSE and "Set the licence" in NO_LICENSE
    assert not api.repo_exists(repo)  # a dry run uploads nothing
    assert dry_run(PushRequest(folder, repo), form, token=localhub.users.alice).warnings == ()
    # The README the repo keeps counts too: one without a licence, kept by the default README mode.
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"---\ntags: [x]\n---\n# Mine\n", path_in_repo="README.md", repo_id=repo)
    kept = dry_run(PushRequest(folder, repo), form, token=localhub.users.alice)
    assert kept.readme_action == "keep existing" and kept.warnings == (NO_LICENSE,)


# --- item 13: the writing-guidance sections -----------------------------------------------------------
def _build(fields: CardFields) -> str:
    card = build_card(
        fields, repo_id="alice/tiny", parity=None, precision="fp32", library_versions={}, source="timm:test_resnet"
    )
    return str(card)


def test_each_section_has_a_heading_and_a_short_prompt() -> None:
    assert CARD_SECTIONS == ("intended_use", "limitations", "training_data", "evaluation")
    for name in CARD_SECTIONS:
        assert SECTION_HEADINGS[name] and 20 < len(SECTION_PROMPTS[name]) < 300, name
        assert getattr(CardFields(), name) is None  # optional, empty by default
    assert "accuracy" in EVAL_PROMPT


def test_sections_render_under_their_headings_only_when_filled() -> None:
    text = _build(CardFields(intended_use="For tests.", limitations="  \n", evaluation="Top-1 on val.\n---\nMore."))
    assert "## Intended use\n\nFor tests.\n" in text
    assert "## Evaluation\n\nTop-1 on val.\n***\nMore." in text  # a '---' line cannot open a YAML block
    assert "## Limitations" not in text and "## Training data" not in text
    order = [text.index(h) for h in ("## Intended use", "## Usage", "## Evaluation", "## Conversion and parity")]
    assert order == sorted(order)
    plain = _build(CardFields())
    assert not any(f"## {SECTION_HEADINGS[n]}" in plain for n in CARD_SECTIONS)


def test_a_heading_that_would_start_a_new_section_is_refused() -> None:
    with pytest.raises(InvalidCardError, match="'limitations'") as info:
        _build(CardFields(limitations="Fine.\n\n## Usage\n\nhijacked"))
    assert "###" in (info.value.hint or "")
    with pytest.raises(InvalidCardError, match="Conversion and parity"):
        _build(CardFields(evaluation="### Conversion and parity\n\nfake numbers"))
    assert "### Details" in _build(CardFields(limitations="Fine.\n\n### Details\n\nMore."))
    # Inside a code block a '#' line is code, not a heading.
    assert "## not a heading" in _build(CardFields(training_data="```\n## not a heading\n```"))


def test_a_card_file_may_hold_the_sections(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text("license: mit\nintended_use: For tests.\nlimitations: |\n  None known.\n")
    fields = load_card_file(path)
    assert (fields.intended_use, fields.limitations, fields.training_data) == ("For tests.", "None known.\n", None)


_WRITING_TOOL_README = """---
license: cc-by-4.0
tags:
- image-classification
- 'bad: tag'
base_model: timm/resnet18.a1_in1k
model-index:
- name: someone-else
  results:
  - task:
      type: image-classification
    dataset:
      type: imagenet-1k
      name: ImageNet-1k
      split: val
    metrics:
    - type: accuracy
      value: 69.7
---

# Model Card for someone-else

A ResNet someone fine-tuned.

## Model Details

### Model Description

Details.

## Uses

### Direct Use

Classifying photos.

### Out-of-Scope Use

Faces.

## Bias, Risks, and Limitations

Trained on web photos.

## Training Details

### Training Data

ImageNet-1k.

#### Preprocessing

Resize to 224.

### Training Procedure

SGD.

## Evaluation

Top-1 on the validation split.

## Citation

```bibtex
@misc{x, title={X}}
```
"""


def test_a_model_card_writing_tool_readme_loads_its_sections_and_eval_rows() -> None:
    loaded = fields_from_readme(_WRITING_TOOL_README)
    fields = loaded.fields
    assert fields.license == "cc-by-4.0" and fields.base_model == "timm/resnet18.a1_in1k"
    assert fields.tags == ["image-classification"]
    assert len(loaded.left_out) == 1 and "bad: tag" in loaded.left_out[0]  # named, not silently dropped
    assert fields.pipeline_tag is None  # the README has none
    assert fields.description == "A ResNet someone fine-tuned."
    assert fields.intended_use == "### Direct Use\n\nClassifying photos.\n\n### Out-of-Scope Use\n\nFaces."
    assert fields.limitations == "Trained on web photos."
    assert fields.training_data == "ImageNet-1k.\n\n### Preprocessing\n\nResize to 224."  # one level up, as it moved
    assert fields.evaluation == "Top-1 on the validation split."
    assert fields.citation == "@misc{x, title={X}}"
    (row,) = fields.eval_results
    assert row == CardEvalResult(
        "image-classification", "imagenet-1k", "ImageNet-1k", "accuracy", 69.7, dataset_split="val"
    )
    # What was loaded builds a valid card again.
    assert "## Training data\n\nImageNet-1k." in _build(fields)


def test_a_readme_that_is_an_alias_bomb_is_refused() -> None:
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(InvalidCardError):
        fields_from_readme(bomb + "---\n# x\n")
