"""What the app's form values mean to the core: a ModelSpec, ConvertOptions' tolerance, CardFields, a PushRequest.

Pure functions, no gradio. Empty boxes mean "not given"; comma-separated boxes become lists; the core
validates the values themselves (and names the bad one).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hubui
from hubui.libraries import DEFAULT_SOURCE, get_format, get_source

RANDOM_WEIGHTS = "(random weights)"
HUB_PREFIX = "hf-hub:"  # typed in the tag box: the weights of a Hub repo (``hf-hub:owner/name[@revision]``)
PRESET_TOLERANCE = "preset for the precision"
STRICT_TOLERANCE = "strict"
README_MODES = ("keep", "replace", "merge")
EVAL_COLUMNS = ("task_type", "dataset_type", "dataset_name", "metric_type", "metric_value")
PIPELINE_TAGS = ("image-classification", "zero-shot-image-classification", "image-feature-extraction")


def default_pipeline_tag(library: str) -> str:
    """The card's ``pipeline_tag`` for a model of ``library`` written in its own format.

    Raises:
        InvalidInputError: ``library`` is not a registered library.
    """
    return get_format(get_source(library).native_format).card.pipeline_tag


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _opt(text: str | None) -> str | None:
    return text if text and text.strip() else None


def file_path(value: Any) -> str | None:
    """The server-side path of a ``gr.File`` value (a path string, or an object with ``.name``)."""
    if value is None or value == "":
        return None
    return str(getattr(value, "name", value))


def file_paths(values: Iterable[Any] | None) -> tuple[str, ...]:
    """The paths of a ``gr.File(file_count="multiple")`` value."""
    return tuple(p for p in (file_path(v) for v in values or ()) if p)


def weights_choice(tag: str | None, checkpoint: Any = None) -> tuple[str | None, str | None]:
    """What the tag box asks for: ``(pretrained tag, Hub repo)``, at most one of them.

    Args:
        tag: The tag box: a pretrained tag, ``(random weights)``, or ``hf-hub:owner/name[@revision]``.
        checkpoint: The checkpoint upload; it wins over the tag box (both are then None).

    Returns:
        ``(None, None)`` for random weights or a checkpoint.

    Raises:
        InvalidInputError: ``hf-hub:`` with no repo after it.
    """
    text = (tag or "").strip()
    if file_path(checkpoint) or not text or text == RANDOM_WEIGHTS:
        return None, None
    if not text.startswith(HUB_PREFIX):
        return text, None
    repo = text.removeprefix(HUB_PREFIX).strip()
    if not repo:
        raise hubui.InvalidInputError(
            f"{text!r} names no Hub repo.", "Type the repo after it, e.g. hf-hub:demo-org/tiny-resnet-random-weights."
        )
    return None, repo


def model_spec(
    library: str,
    architecture: str | None,
    tag: str | None,
    checkpoint: Any,
    num_classes: str | float | None = None,
) -> hubui.ModelSpec:
    """The model to convert: a checkpoint wins over the tag box; ``(random weights)`` is seeded.

    Args:
        library: The library radio.
        architecture: The chosen architecture.
        tag: The tag box (``(random weights)``: none; ``hf-hub:owner/name``: that Hub repo's weights).
        checkpoint: The checkpoint upload, if any.
        num_classes: The Classes box: empty keeps the model's own classifier, 0 takes it off.

    Returns:
        The spec (the core checks the rest and names the bad value).

    Raises:
        InvalidInputError: No architecture chosen, ``hf-hub:`` with no repo, or Classes is not a whole
            number >= 0.
    """
    if not architecture or not architecture.strip():
        raise hubui.InvalidInputError(
            "No model chosen.", "Search for an architecture on the Model tab and pick one from the results."
        )
    pretrained, hub_repo = weights_choice(tag, checkpoint)
    classes = _classes(num_classes)
    return hubui.ModelSpec(
        library,
        architecture.strip(),
        pretrained=pretrained,
        checkpoint=file_path(checkpoint),
        hf_hub_id=hub_repo,
        num_classes=classes,
    )


def _classes(value: str | float | None) -> int | None:
    text = "" if value is None else str(value).strip()
    if text in ("", "nan"):
        return None
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if number != int(number) or number < 0:
        raise hubui.InvalidInputError(
            f"Classes must be a whole number of 0 or more, not {text!r}.",
            "Leave Classes empty to keep the model's own classifier, or set 0 for none.",
        )
    return int(number)


def target_choices() -> list[str]:
    """The conversion targets to offer: ``native``, plus each other target whose library is installed."""
    return list(hubui.available_targets())


def target_info() -> str:
    """The line under the target choice: what each non-native target does, or how to get it."""
    from hubui.libraries import NATIVE, target_info, target_names

    return "\n".join(target_info(t) for t in target_names() if t != NATIVE)


def tolerance(mode: str, precision: str) -> hubui.Tolerance | None:
    """``None`` for the precision's preset; ``strict`` asks for float32-exact parity whatever the precision."""
    if mode == STRICT_TOLERANCE:
        return hubui.tolerance_preset("fp32")
    return None


def _eval_rows(table: Any) -> list[dict[str, Any]]:
    """Rows of the eval-results table that hold anything, as dicts (numbers parsed where they are numbers)."""
    if table is None:
        return []
    rows = table.values.tolist() if hasattr(table, "values") else list(table.get("data", table))
    out = []
    for row in rows:
        cells = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in row]
        if not any(cells):
            continue
        item: dict[str, Any] = dict(zip(EVAL_COLUMNS, cells, strict=False))
        with contextlib.suppress(ValueError):  # a short string such as "80.1 ± 0.2" is allowed too
            item["metric_value"] = float(item.get("metric_value", ""))
        out.append(item)
    return out


def card_fields(
    library: str,
    license: str | None,
    language: str | None,
    tags: str | None,
    datasets: str | None,
    base_model: str | None,
    pipeline_tag: str | None,
    description: str | None,
    usage: str | None,
    citation: str | None,
    evals: Any,
) -> hubui.CardFields:
    """The card form as :class:`hubui.CardFields` (validated by the core when the card is built)."""
    bases = split_list(base_model)
    return hubui.CardFields(
        license=_opt(license),
        language=split_list(language),
        tags=split_list(tags),
        datasets=split_list(datasets),
        base_model=bases[0] if len(bases) == 1 else (bases or None),
        pipeline_tag=_opt(pipeline_tag),
        library_name=library or DEFAULT_SOURCE,
        description=description or "",
        usage=_opt(usage),
        citation=_opt(citation),
        eval_results=list(_eval_rows(evals)),
    )


def repo_id(namespace: str | None, name: str | None) -> str:
    """``namespace/name``, checked like the Hub checks it.

    Raises:
        NotLoggedInError: No namespace (nobody logged in).
        InvalidRepoIdError: A bad name.
    """
    if not namespace:
        raise hubui.NotLoggedInError("No namespace to push to.", "Log in on the Login tab, then pick a namespace.")
    value = f"{namespace}/{(name or '').strip()}"
    hubui.validate_repo_id(value)
    return value


def push_request(
    folder: Path,
    namespace: str | None,
    name: str | None,
    private: bool,
    branch: str | None,
    create_pr: bool,
    message: str | None,
    readme_mode: str | None,
    override: bool,
    *,
    allow_random_weights: bool = False,
) -> hubui.PushRequest:
    """The push as the core takes it; ``override`` is recorded in the card by the core.

    ``allow_random_weights``: the "Push random weights anyway" box; without it the core refuses a folder of
    random weights (its card and parity.json say they are random either way).
    """
    return hubui.PushRequest(
        Path(folder),
        repo_id(namespace, name),
        private=bool(private),
        branch=_opt(branch.strip() if branch else None),
        create_pr=bool(create_pr),
        commit_message=(message or "").strip() or "Upload model with hubui",
        readme_mode=readme_mode or "keep",  # type: ignore[arg-type]
        allow_failed_parity=bool(override),
        allow_random_weights=bool(allow_random_weights),
    )
