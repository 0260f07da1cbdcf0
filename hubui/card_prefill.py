"""The card a model gets unless its user says otherwise: the values a card form starts from.

Each value is taken from what is known about the model, never made up:

* ``library_name``, ``pipeline_tag`` and ``tags`` from the format the model is written in (its
  :class:`~hubui.libraries.base.CardDefaults`): a zero-shot task for a CLIP model, image classification for a
  classifier, whatever a converted model's format writes.
* ``license`` from the pretrained tag's facts (:func:`hubui.catalog.model_facts`), when they name one; a licence
  the Hub has no identifier for is ``other`` with its name. Random weights, a checkpoint or a Hub repo have no
  licence hubui knows of: None, and the dry run says the card has none.
* ``base_model`` from the pretrained tag's Hub repo (``timm/resnet18.a1_in1k``), or the Hub repo the model was
  loaded from. Random weights and a checkpoint have none: a ``base_model`` claims lineage.

The card then writes exactly what the form holds (:func:`hubui.pipeline.make_card` takes given fields as they are).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hubui.card_fields import CardFields
from hubui.card_licenses import HUB_LICENSES
from hubui.errors import InvalidInputError
from hubui.libraries import NATIVE, get_format, get_source, target_format
from hubui.spec import LoadedModel, ModelSpec

if TYPE_CHECKING:
    from hubui.facts import ModelFacts
    from hubui.libraries.base import Format
    from hubui.pipeline import ConvertResult

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_NO_LICENSE = ("unknown", "other")  # "other" alone names nothing; "unknown" says just that


def licence_of(value: str | None) -> tuple[str | None, str | None]:
    """A facts licence as the card's ``(license, license_name)``.

    Args:
        value: The licence a library's pretrained config names (``"apache-2.0"``, ``"seer-license"``...), or None.

    Returns:
        ``(value, None)`` for a Hub licence identifier; ``("other", value)`` for a licence the Hub has no identifier
        for (a slug); ``(None, None)`` when none is known.
    """
    if not isinstance(value, str) or not value.strip() or value.strip().lower() in _NO_LICENSE:
        return None, None
    text = value.strip()
    if text in HUB_LICENSES:
        return text, None
    if text.lower() in HUB_LICENSES:
        return text.lower(), None
    if _SLUG_RE.match(text.lower()):
        return "other", text.lower()
    return None, None


def _spec_of(model: ModelSpec | LoadedModel) -> ModelSpec:
    spec = model.spec if isinstance(model, LoadedModel) else model
    if not isinstance(spec, ModelSpec):
        raise InvalidInputError(
            f"card_defaults takes a ModelSpec or a LoadedModel, not {type(model).__name__}.",
            "Pass the model spec the form describes, or the loaded model.",
        )
    return spec


def _tag_facts(spec: ModelSpec, facts: ModelFacts | None) -> ModelFacts:
    """The facts of the spec's pretrained tag: ``facts`` when they describe it, else the catalog's (cached)."""
    source = get_source(spec.library)
    tag = str(spec.pretrained)
    if (
        facts is not None
        and facts.architecture == spec.architecture
        and facts.tag is not None
        and source.clean_tag(facts.tag) == source.clean_tag(tag)
    ):
        return facts
    from hubui.catalog import model_facts, pretrained_name

    return model_facts(spec.library, pretrained_name(spec.library, spec.architecture, tag))


def _hub_repo(value: str | None) -> str | None:
    text = (value or "").strip().removeprefix("hf-hub:")
    return text if _REPO_RE.match(text) and ".." not in text else None


def _lineage(spec: ModelSpec, facts: ModelFacts | None) -> tuple[str | None, str | None, str | None]:
    """``(license, license_name, base_model)`` from where the weights come from."""
    if spec.checkpoint is not None:
        return None, None, None
    if spec.pretrained is not None:
        tag_facts = _tag_facts(spec, facts)
        return (*licence_of(tag_facts.license), _hub_repo(tag_facts.hf_hub_id))
    if spec.hf_hub_id is not None:
        return None, None, _hub_repo(spec.hf_hub_id)
    return None, None, None  # random weights


def _fields(spec: ModelSpec, fmt: Format, facts: ModelFacts | None, config: Mapping[str, Any] | None) -> CardFields:
    license, license_name, base_model = _lineage(spec, facts)
    card = fmt.card
    fields = CardFields(
        license=license,
        license_name=license_name,
        tags=list(card.tags),
        pipeline_tag=card.pipeline_tag,
        library_name=card.library_name,
        base_model=base_model,
    )
    # What the format adds to a card of its folder (a converted model's description...) is in the form too, so
    # that the form shows everything the card will say.
    return fmt.card_fields(fields, dict(config)) if config is not None else fields


def card_defaults(
    model: ModelSpec | LoadedModel,
    target: str = NATIVE,
    *,
    facts: ModelFacts | None = None,
    config: Mapping[str, Any] | None = None,
) -> CardFields:
    """The card fields a form starts from for ``model`` written as ``target``.

    Args:
        model: What the form describes (a spec), or the loaded model.
        target: ``ConvertOptions.target``: ``"native"`` or another format the library converts to.
        facts: The facts of the model's pretrained tag, when the caller has them (else they are looked up,
            cached; facts of another tag are not used).
        config: After a conversion: the export's config (``ExportResult.config``); what the format adds to its
            cards (a transformers model's description) is then filled in as well.

    Returns:
        Fresh :class:`~hubui.card.CardFields`: the format's library, pipeline tag and tags; the licence and
        ``base_model`` of a pretrained tag (None when unknown, and always for a checkpoint or random weights).

    Raises:
        InvalidInputError: An unknown library or target, a target that is not installed, or ``model`` is neither
            a spec nor a loaded model.
        ModelNotFoundError: The spec's pretrained tag is not in the library's catalog.
    """
    spec = _spec_of(model)
    return _fields(spec, target_format(spec.library, target), facts, config)


def card_defaults_for(result: ConvertResult, *, facts: ModelFacts | None = None) -> CardFields:
    """:func:`card_defaults` of a finished conversion: its model, the format it was written in, its config.

    Args:
        result: What :func:`hubui.convert` returned.
        facts: As for :func:`card_defaults`.

    Returns:
        The fields; :func:`hubui.make_card` with them writes exactly these values.

    Raises:
        ModelNotFoundError: The spec's pretrained tag is not in the library's catalog.
    """
    return _fields(_spec_of(result.loaded), get_format(result.export.library), facts, result.export.config)


def fields_for_folder(fields: CardFields, library: str) -> CardFields:
    """The user's fields for a card of a ``library`` folder: taken as they are, except fields still naming
    :class:`~hubui.card.CardFields`'s own library, which were not made for this one and get its library and (if
    still the default one) its pipeline tag.

    Args:
        fields: The user's fields.
        library: The folder's format (:func:`hubui.libraries.folder_format`).

    Returns:
        ``fields``, or a copy with those two values changed.
    """
    plain = CardFields()
    card = get_format(library).card
    if fields.library_name != plain.library_name or card.library_name == plain.library_name:
        return fields  # made for this library: a pipeline tag the user chose is theirs, even the default one
    changes: dict[str, Any] = {"library_name": card.library_name}
    if fields.pipeline_tag == plain.pipeline_tag:
        changes["pipeline_tag"] = card.pipeline_tag
    return replace(fields, **changes)


__all__ = ["card_defaults", "card_defaults_for", "fields_for_folder", "licence_of"]
