"""The Card & push tab's layout: the card form with its writing guidance, the card's Markdown beside it, the
rendered preview, and the push controls with the push's progress and result right by the Push button.

Building it wires nothing: :mod:`hubui.ui.app` wires the events. The element ids are a contract with the
browser tests (see ``tests/test_ui_browser.py`` and ``tests/test_ui_status.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

import hubui
from hubui.card import HUB_LICENSES
from hubui.ui import forms

EVAL_ROWS = 3  # empty rows shown from the start, so that the table reads as a place to type results
PREVIEW_HINT = "_Run a conversion first: the card includes its parity section._"
MARKDOWN_INFO = (
    "The README a push would write, as Markdown. Edit it here, then “Use this Markdown” takes it into the form: "
    "what a push writes is always the form's value (hubui writes the parity section itself)."
)
LICENCE_NAME_INFO = "A licence the Hub has no identifier for needs a short lowercase name (letters, digits, - . _)."
LICENCE_LINK_INFO = "Where its text is: an https:// URL, or a file in the repo such as LICENSE (optional)."


def section_id(name: str) -> str:
    """``intended_use`` -> ``card-intended-use``."""
    return "card-" + name.replace("_", "-")


@dataclass
class CardTab:
    """The components of the Card & push tab the wiring needs.

    Args:
        card: The card form in :data:`hubui.ui.card_handlers.CARD_INPUTS` order.
        sections: The writing-guidance sections, in :data:`hubui.CARD_SECTIONS` order.
        licence_more: The licence's name and link boxes, shown only with the licence "other" (``licence_row``).
        target: The push target's inputs after the session: namespace, name, private, branch, create PR,
            message, README mode, override (:func:`hubui.ui.forms.push_request`'s order).
    """

    card: list[Any]
    sections: list[Any]
    licence_more: list[Any]
    licence_row: Any
    defaults_note: Any
    load_card: Any
    markdown: Any
    use_markdown: Any
    preview: Any
    namespace: Any
    name: Any
    name_error: Any
    branch: Any
    private: Any
    create_pr: Any
    readme_mode: Any
    message: Any
    override: Any
    allow_random: Any
    dry: Any
    push: Any
    result: Any
    verification: Any
    plan: Any

    @property
    def target(self) -> list[Any]:
        return [
            self.namespace, self.name, self.private, self.branch, self.create_pr, self.message, self.readme_mode,
            self.override,
        ]  # fmt: skip

    @property
    def extras(self) -> list[Any]:
        """The inputs after :attr:`card` (:data:`card_handlers.EXTRAS`): the sections, the licence's name and link."""
        return [*self.sections, *self.licence_more]

    @property
    def loaded(self) -> list[Any]:
        """The outputs of "Load existing card" and "Use this Markdown" (:data:`card_handlers.LOADED_KEYS`)."""
        license, language, tags, datasets, base_model, pipeline_tag, description, _, citation, evals = self.card
        return [license, language, tags, datasets, base_model, pipeline_tag, evals, citation, *self.sections,
                description, *self.licence_more]  # fmt: skip


def _licence_more() -> tuple[list[Any], Any]:
    """The name and link a licence "other" needs (the Hub's ``license_name`` / ``license_link``), hidden otherwise."""
    with gr.Row(visible=False, elem_id="card-license-other") as row:
        name = gr.Textbox(
            label="License name", info=LICENCE_NAME_INFO, placeholder="my-license-1.0", elem_id="card-license-name"
        )
        link = gr.Textbox(
            label="License link", info=LICENCE_LINK_INFO, placeholder="LICENSE", elem_id="card-license-link"
        )
    return [name, link], row


def _form() -> tuple[list[Any], list[Any], Any, list[Any], Any]:
    """The card form: metadata, description, the four guided sections, usage, citation, eval rows."""
    note = gr.Markdown("", elem_id="card-defaults-note")
    license = gr.Dropdown(sorted(HUB_LICENSES), value=None, label="License", elem_id="card-license")
    licence_more, licence_row = _licence_more()
    language = gr.Textbox(label="Language (comma-separated codes)", elem_id="card-language")
    tags = gr.Textbox(label="Tags (comma-separated)", elem_id="card-tags")
    datasets = gr.Textbox(label="Datasets (comma-separated Hub ids)", elem_id="card-datasets")
    base_model = gr.Textbox(label="Base model (Hub id)", elem_id="card-base-model")
    pipeline_tag = gr.Dropdown(
        list(forms.PIPELINE_TAGS),
        value=forms.PIPELINE_TAGS[0],
        allow_custom_value=True,
        label="Pipeline tag",
        elem_id="card-pipeline-tag",
    )
    description = gr.Textbox(label="Description (Markdown)", lines=4, elem_id="card-description")
    sections = [
        gr.Textbox(
            label=f"{hubui.SECTION_HEADINGS[name]} (Markdown; empty = left out)",
            info=hubui.SECTION_PROMPTS[name],
            lines=3,
            elem_id=section_id(name),
        )
        for name in hubui.CARD_SECTIONS
    ]
    usage = gr.Textbox(label="Usage (Markdown; empty = generated snippet)", lines=3, elem_id="card-usage")
    citation = gr.Textbox(label="Citation (BibTeX)", lines=3, elem_id="card-citation")
    gr.Markdown(f"**Eval results.** {hubui.EVAL_PROMPT}", elem_id="card-eval-prompt")
    evals = gr.Dataframe(
        [[""] * len(forms.EVAL_COLUMNS) for _ in range(EVAL_ROWS)],
        headers=list(forms.EVAL_COLUMNS),
        column_count=len(forms.EVAL_COLUMNS),
        row_count=EVAL_ROWS,
        label="Eval results",
        interactive=True,
        elem_id="card-eval",
    )
    card = [license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals]
    return card, sections, note, licence_more, licence_row


def build_card_tab() -> CardTab:
    """The "Card & push" tab (call inside the Blocks, where the tab goes)."""
    with gr.Tab("Card & push", elem_id="tab-push"):
        with gr.Row():
            with gr.Column():
                card, sections, note, licence_more, licence_row = _form()
                load_card = gr.Button("Load existing card", elem_id="card-load-existing")
            with gr.Column():
                markdown = gr.Textbox(
                    label="Card Markdown", info=MARKDOWN_INFO, lines=24, max_lines=60, elem_id="card-markdown"
                )
                use_markdown = gr.Button("Use this Markdown", elem_id="card-markdown-apply")
        with gr.Accordion("Rendered card", open=True, elem_id="card-preview-accordion"):
            preview = gr.Markdown(PREVIEW_HINT, elem_id="card-preview")
        with gr.Row():
            namespace = gr.Dropdown([], label="Namespace", allow_custom_value=True, elem_id="push-namespace")
            with gr.Column():
                name = gr.Textbox(label="Repo name", elem_id="push-name")
                name_error = gr.Markdown("", elem_id="push-name-error")
            branch = gr.Textbox(label="Branch (empty = main)", elem_id="push-branch")
        with gr.Row():
            private = gr.Checkbox(label="Private (new repos)", elem_id="push-private")
            create_pr = gr.Checkbox(label="Open a pull request", elem_id="push-create-pr")
            readme_mode = gr.Radio(
                list(forms.README_MODES),
                value="keep",
                label="Existing README",
                info="keep it, replace it, or merge metadata + parity section",
                elem_id="push-readme-mode",
            )
        message = gr.Textbox(label="Commit message", value="Upload model with hubui", elem_id="push-message")
        with gr.Row():
            override = gr.Checkbox(
                label="Push even though parity did not pass (recorded in the card)", elem_id="push-override"
            )
            allow_random = gr.Checkbox(
                label="Push random weights anyway (the card and parity.json say they are random)",
                elem_id="push-allow-random",
            )
        # The push's progress and result stand by its button; the dry run's long plan comes after them.
        with gr.Row(equal_height=False, elem_id="push-actions"):
            with gr.Column(scale=1, min_width=160):
                dry = gr.Button("Dry run", elem_id="push-dry-run")
                push = gr.Button("Push", variant="primary", interactive=False, elem_id="push-button")
            with gr.Column(scale=4):
                result = gr.Markdown("", elem_id="push-result")
                verification = gr.Markdown("", elem_id="push-verification")
        plan = gr.Markdown("", elem_id="push-plan")
    return CardTab(
        card, sections, licence_more, licence_row, note, load_card, markdown, use_markdown, preview, namespace,
        name, name_error, branch, private, create_pr, readme_mode, message, override, allow_random, dry, push, result,
        verification, plan,
    )  # fmt: skip


__all__ = ["CardTab", "build_card_tab", "section_id"]
