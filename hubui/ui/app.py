"""The Gradio app. Until the app issue lands this is a single status page over the core."""

from __future__ import annotations

import gradio as gr

import hubui


def build_app(hub_url: str | None = None) -> gr.Blocks:
    """Build (not launch) the hubui Blocks.

    Args:
        hub_url: The Hub endpoint the app talks to; ``None`` means the real Hub.

    Returns:
        The Blocks, ready for ``.launch()``.
    """
    endpoint = hub_url or "https://huggingface.co"
    with gr.Blocks(title="hubui") as app:
        gr.Markdown(
            f"# hubui {hubui.__version__}\n"
            "Convert a timm or open_clip model, prove logits parity, write the card, push, verify.\n\n"
            f"Hub endpoint: `{endpoint}`\n\n"
            "The four-tab app (login, model, convert & parity, card & push) is not built yet; "
            "the command-line `hubui localhub` server works today."
        )
    return app
