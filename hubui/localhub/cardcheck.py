"""The local Hub's answer to a README's metadata: ``/api/validate-yaml`` and commits that add ``README.md``.

The rules are :mod:`hubui.card_rules`, the same ones hubui applies before a push. Errors make the Hub
refuse (400); warnings (a card without metadata) are returned and the card is taken.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

from hubui.card_rules import CardProblem, check_card_text


def _split(content: str, repo_type: str) -> tuple[list[CardProblem], list[CardProblem]]:
    problems = check_card_text(content, repo_type)
    return [p for p in problems if p.severity == "error"], [p for p in problems if p.severity != "error"]


def validate_yaml_answer(content: str, repo_type: str, plain: bool) -> Response:
    """What ``POST /api/validate-yaml`` answers: JSON ``{errors, warnings}``, or text when the client asked for
    ``text/plain`` (``RepoCard.validate`` does, and shows the text as its error)."""
    errors, warnings = _split(content, repo_type or "model")
    status = 400 if errors else 200
    if plain:
        lines = [f"- Error: {p.message}" for p in errors] + [f"- Warning: {p.message}" for p in warnings]
        return PlainTextResponse("\n".join(lines), status_code=status)
    body: dict[str, Any] = {
        "errors": [{"message": p.message, "field": p.field} for p in errors],
        "warnings": [{"message": p.message, "field": p.field} for p in warnings],
    }
    if errors:
        body["error"] = "Invalid metadata in README.md: " + "; ".join(p.message[:200] for p in errors[:3])
    return JSONResponse(body, status_code=status)


def readme_error(data: bytes, repo_type: str) -> str | None:
    """Why a commit adding this ``README.md`` is refused, or ``None`` when the Hub would take it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "README.md is not UTF-8 text"
    errors, _ = _split(text, repo_type)
    if not errors:
        return None
    return "Invalid metadata in README.md: " + "; ".join(p.message[:200] for p in errors[:3])
