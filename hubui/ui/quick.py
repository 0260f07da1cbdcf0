"""The Quick tab: one field for a Hub model id, one button, and the verified fix proposed as a PR to that repo.

It calls only hubui's public API (:func:`hubui.iter_quick`); what quick mode checks and proposes is described in
:mod:`hubui.quick`. The app's layout owner places the tab with one call to :func:`build_quick_tab` inside its
``gr.Blocks``; the element ids below are a contract with the browser tests.

Element ids: ``tab-quick`` (the tab), ``quick-repo`` (the repo id), ``quick-run`` (the button), ``quick-progress``
(one line per stage, its latest news, while it runs), ``quick-result`` (what was found and proposed, the PR link,
or the one error).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

import hubui
from hubui.ui import errors
from hubui.ui.state import Session
from hubui.ui.tokens import session_token

PLACEHOLDER = "timm/resnet18.a1_in1k  or  hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
_INTRO = (
    "Paste a Hub model id. hubui reads the repo and, when it lacks safetensors weights, a model card or the card's "
    "`library_name` / `pipeline_tag`, loads it with the library's own loader, converts it, proves parity and "
    "opens a **pull request** with the fix on that repo (then downloads the PR again and checks it). Nothing is "
    "committed to the repo's branches; a repo with nothing to fix gets no PR. The other tabs give full control."
)


@dataclass(frozen=True)
class QuickTab:
    """The Quick tab's components, for a layout that wants to wire more to them."""

    repo: gr.Textbox
    run: gr.Button
    progress: gr.Markdown
    result: gr.Markdown


def build_quick_tab(
    session: gr.State, *, concurrency_limit: int | None = 2, concurrency_id: str | None = "heavy"
) -> QuickTab:
    """Add the Quick tab to the ``gr.Blocks`` being built, and wire its button.

    Args:
        session: The app's per-session ``gr.State`` holding a :class:`~hubui.ui.state.Session` (its token
            opens the PR; log in on the Login tab).
        concurrency_limit: How many quick runs (with the conversions sharing ``concurrency_id``) at a time.
        concurrency_id: The queue shared with the app's other heavy events (convert, push).

    Returns:
        The components.
    """
    with gr.Tab("Quick fix", elem_id="tab-quick"):
        gr.Markdown(_INTRO)
        with gr.Row():
            repo = gr.Textbox(label="Hub model id", placeholder=PLACEHOLDER, scale=4, elem_id="quick-repo", max_lines=1)
            run = gr.Button("Propose fix", variant="primary", scale=1, elem_id="quick-run")
        progress = gr.Markdown("", elem_id="quick-progress")
        result = gr.Markdown("", elem_id="quick-result")
    gr.on(
        [run.click, repo.submit],
        on_quick,
        [session, repo],
        [progress, result],
        concurrency_limit=concurrency_limit,
        concurrency_id=concurrency_id,
        api_name="quick",
    )
    return QuickTab(repo, run, progress, result)


def on_quick(session: Session, repo_id: str, oauth_token: gr.OAuthToken | None) -> Iterator[tuple[str, str]]:
    """The button's callback: stream the stage lines, then the result (or the error, once, in the result).

    Args:
        session: The browser session.
        repo_id: What was typed.
        oauth_token: The Hugging Face sign-in on a Space with OAuth (gradio fills it in).

    Yields:
        ``(progress Markdown, result Markdown)``.
    """
    token: str | None = None
    stages: dict[str, str] = {}  # one line per stage, its latest news ("batch 5/8" replaces "batch 4/8")
    try:
        if not (repo_id or "").strip():
            raise hubui.InvalidRepoIdError(
                "No Hub model id given.", "Paste one, e.g. timm/resnet18.a1_in1k or hf-hub:owner/name."
            )
        token = session_token(session, oauth_token)
        for event in hubui.iter_quick(hubui.QuickRequest(repo_id.strip(), token=token)):
            if event.result is not None:
                yield _progress(stages, done=True), result_markdown(event.result)
                return
            stages[event.stage] = event.message
            yield _progress(stages, fraction=event.fraction), ""
    except Exception as exc:  # every failure is shown once, in the result, in the app's words
        yield _progress(stages, done=True), errors.inline(exc, [token or ""])


def result_markdown(result: hubui.QuickResult) -> str:
    """What quick mode found and did, as Markdown: the PR link first."""
    out: list[str] = []
    where = f"`{_code(result.repo_id)}` at `{_code(result.branch)}` ({result.library}, commit `{result.commit[:10]}`)"
    if result.pr_url:
        label = result.pr_revision or "pull request"
        out.append(f"**Pull request: [{_md(label)}]({result.pr_url})** on {where}")
    elif not result.problems:
        out.append(f"**Nothing to fix** on {where}: no PR was opened.")
    else:
        out.append(f"**Nothing was proposed** for {where}.")
    if result.problems:
        out.append("What the repo lacked:\n" + "\n".join(f"- {_md(p)}" for p in result.problems))
    if result.files:
        out.append("Files in the PR: " + ", ".join(f"`{_code(f)}`" for f in result.files))
    if result.parity_verdict is not None:
        checks = f"Parity **{_md(result.parity_verdict)}**"
        if result.verification is not None:
            checks += f" · the PR downloaded again: **{_md(result.verification)}**"
        out.append(checks + (f" · weights: {_md(result.origin)}" if result.origin else ""))
    out.append(_md(result.message))
    return "\n\n".join(out)


def _progress(stages: dict[str, str], fraction: float | None = None, done: bool = False) -> str:
    head = "" if done or fraction is None else f"**{round(100 * fraction)}%**  \n"
    # The stage lines name the server's work folders ("wrote /tmp/hubui-quick-…/export"): only their own names show.
    return head + "  \n".join(_md(errors.ui_words(f"{stage}: {message}")) for stage, message in stages.items())


def _md(text: str) -> str:
    """Plain text that Markdown shows as written."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", str(text))


def _code(text: str) -> str:
    return str(text).replace("`", "'")


__all__ = ["QuickTab", "build_quick_tab", "on_quick", "result_markdown"]
