"""The metadata rules the Hub applies to a README's YAML block, shared by hubui's own card check and the
local Hub (``/api/validate-yaml`` and commits that change ``README.md``).

What the Hub refuses is an error; what it only points out is a warning. The rules cover what the Hub's
card validation checks and what huggingface_hub's tests exercise: licence identifiers, the
``model-index`` (evaluation results) schema, the shape of ``base_model``, and list-of-string fields such
as ``tags``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from hubui.card_licenses import HUB_LICENSES
from hubui.errors import InvalidCardError

MISSING_METADATA = (
    "Empty or missing yaml metadata in repo card (https://huggingface.co/docs/hub/model-cards#model-card-metadata)"
)
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
STRING_LISTS = ("tags", "datasets", "language", "metrics")
BASE_MODEL_RELATIONS = ("adapter", "merge", "quantized", "finetune")
MAX_WALK = 64  # items of each list looked at (models, results, metrics, base models)


@dataclass(frozen=True)
class CardProblem:
    """One problem of a card's metadata.

    Args:
        field: The metadata key it concerns, with a path for nested ones (``model-index[0].results``).
        message: What is wrong, naming the field, as the Hub words it.
        severity: ``"error"`` (the Hub refuses the card) or ``"warning"``.
    """

    field: str
    message: str
    severity: str = "error"


def _is_str_list(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value[:MAX_WALK]))


def _check_license(value: object, repo_type: str) -> list[CardProblem]:
    values = value[:MAX_WALK] if isinstance(value, list) and repo_type == "dataset" else [value]
    known = HUB_LICENSES
    for v in values:
        if not isinstance(v, str) or v not in known:
            shown = ", ".join(sorted(known))
            return [CardProblem("license", f'"license" must be one of [{shown}], not {str(v)[:60]!r}')]
    return []


def _need(obj: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> list[CardProblem]:
    if key not in obj or obj[key] is None:
        return [CardProblem(path, f'"{path}.{key}" is required')]
    if not isinstance(obj[key], kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        word = {"str": "a string", "list": "an array", "dict": "an object"}.get(names, names)
        return [CardProblem(f"{path}.{key}", f'"{path}.{key}" must be {word}')]
    return []


def _check_model_index(value: object) -> list[CardProblem]:
    if not isinstance(value, list) or not value:
        return [CardProblem("model-index", '"model-index" must be a non-empty array of {name, results}')]
    problems: list[CardProblem] = []
    for i, model in enumerate(value[:MAX_WALK]):
        path = f"model-index[{i}]"
        if not isinstance(model, dict):
            problems.append(CardProblem(path, f'"{path}" must be an object with "name" and "results"'))
            continue
        problems += _need(model, "name", path, str) + _need(model, "results", path, list)
        results: list[Any] = model["results"] if isinstance(model.get("results"), list) else []
        for j, result in enumerate(results[:MAX_WALK]):
            rpath = f"{path}.results[{j}]"
            if not isinstance(result, dict):
                problems.append(CardProblem(rpath, f'"{rpath}" must be an object with task, dataset and metrics'))
                continue
            problems += _need(result, "task", rpath, dict) + _need(result, "dataset", rpath, dict)
            problems += _need(result, "metrics", rpath, list)
            if isinstance(result.get("task"), dict):
                problems += _need(result["task"], "type", f"{rpath}.task", str)
            if isinstance(result.get("dataset"), dict):
                problems += _need(result["dataset"], "type", f"{rpath}.dataset", str)
                problems += _need(result["dataset"], "name", f"{rpath}.dataset", str)
            metrics: list[Any] = result["metrics"] if isinstance(result.get("metrics"), list) else []
            for k, metric in enumerate(metrics[:MAX_WALK]):
                mpath = f"{rpath}.metrics[{k}]"
                if not isinstance(metric, dict):
                    problems.append(CardProblem(mpath, f'"{mpath}" must be an object with type and value'))
                    continue
                problems += _need(metric, "type", mpath, str)
                if "value" not in metric:
                    problems.append(CardProblem(mpath, f'"{mpath}.value" is required'))
            source = result.get("source")
            if source is not None and not (isinstance(source, dict) and isinstance(source.get("url"), str)):
                problems.append(CardProblem(f"{rpath}.source", f'"{rpath}.source" must be an object with a "url"'))
    return problems


def _check_base_model(value: object) -> list[CardProblem]:
    values = value[:MAX_WALK] if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, str) or not _REPO_ID_RE.match(v) or ".." in v:
            return [
                CardProblem(
                    "base_model",
                    f'"base_model" must be a model id or a list of model ids like "org/name", not {str(v)[:60]!r}',
                )
            ]
    return []


def check_metadata(data: object, repo_type: str = "model") -> list[CardProblem]:
    """The problems of a card's parsed metadata (``None`` or ``{}``: no metadata).

    Args:
        data: The parsed YAML block.
        repo_type: ``"model"``, ``"dataset"`` or ``"space"``; a dataset may list several licences.

    Returns:
        Errors and warnings, errors first; empty when the Hub would take the card as it is.
    """
    if data is None or data == {}:
        return [CardProblem("metadata", MISSING_METADATA, "warning")]
    if not isinstance(data, dict):
        return [CardProblem("metadata", "The YAML metadata block must be a mapping (key: value)")]
    problems: list[CardProblem] = []
    if data.get("license") is not None:
        problems += _check_license(data["license"], repo_type)
    if "model-index" in data:
        problems += _check_model_index(data["model-index"])
    if data.get("base_model") is not None:
        problems += _check_base_model(data["base_model"])
    relation = data.get("base_model_relation")
    if relation is not None and relation not in BASE_MODEL_RELATIONS:
        problems.append(
            CardProblem("base_model_relation", f'"base_model_relation" must be one of {list(BASE_MODEL_RELATIONS)}')
        )
    for key in STRING_LISTS:
        if data.get(key) is not None and not _is_str_list(data[key]):
            problems.append(CardProblem(key, f'"{key}" must be a string or an array of strings'))
    for key in ("pipeline_tag", "library_name", "new_version"):
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(CardProblem(key, f'"{key}" must be a string'))
    return sorted(problems, key=lambda p: p.severity != "error")


def check_card_text(text: str, repo_type: str = "model") -> list[CardProblem]:
    """Like :func:`check_metadata`, on a whole README; YAML that does not parse is an error on ``metadata``.

    The caller bounds the README's size; aliases stay shared references here and every list this module walks
    is capped at :data:`MAX_WALK` items, so a YAML alias bomb costs nothing.
    """
    match = REGEX_YAML_BLOCK.search(text)
    if match is None:
        return check_metadata(None, repo_type)
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        return [CardProblem("metadata", f"The YAML metadata block is not valid YAML: {str(exc)[:200]}")]
    return check_metadata(data, repo_type)


def raise_for_card_text(text: str, what: str = "The model card", repo_type: str = "model") -> None:
    """Refuse a README the Hub would refuse, naming the first bad field.

    Raises:
        InvalidCardError: On the first error (warnings pass).
    """
    errors = [p for p in check_card_text(text, repo_type) if p.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidCardError(
            f"{what}'s metadata field {first.field!r} would be refused by the Hub: {first.message[:300]}{more}",
            f"Fix {first.field!r} in the card's YAML block; see https://huggingface.co/docs/hub/model-cards.",
        )
