"""The Gradio app's layout and wiring: four tabs over hubui's core. Building it launches nothing.

The element ids (``elem_id``) are a contract with the browser tests; see each component below.
Per-session state, the token rule and the scratch folders are described in :mod:`hubui.ui.state`.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

import hubui
from hubui.card import HUB_LICENSES
from hubui.libraries import DEFAULT_SOURCE, NATIVE, source_names
from hubui.ui import card_handlers, forms, handlers, plots, views
from hubui.ui.state import close_session, remove_session_dir, session_factory

logger = logging.getLogger(__name__)

HEAVY_LIMIT, HEAVY_ID = 2, "heavy"  # convert and push share one pool: at most two run at a time
LIGHT_CONCURRENCY = 8
PRECISIONS = ("fp32", "fp16", "bf16")
CHECKPOINT_TYPES = [".safetensors", ".pth", ".pt", ".bin", ".ckpt"]


def oauth_mode(oauth: bool | None = None) -> bool:
    """OAuth mode: forced by ``oauth``, else detected like gradio does (a Space with ``hf_oauth: true``)."""
    if oauth is not None:
        return oauth
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def _oauth_button() -> None:
    """The "Sign in with Hugging Face" button: gradio's on a Space with OAuth support installed.

    Elsewhere (OAuth mode forced locally, or ``gradio[oauth]`` missing) gradio's button cannot work (its
    local mock signs everyone in with the server's own token), so a disabled stand-in says so instead.
    """
    on_space = os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("SPACE_ID"))
    installed = all(importlib.util.find_spec(m) is not None for m in ("itsdangerous", "authlib"))
    if on_space and installed:
        gr.LoginButton("Sign in with Hugging Face", elem_id="login-oauth")
        return
    if on_space:
        logger.warning("OAuth mode without gradio[oauth] installed: the sign-in button is disabled")
    gr.Button("Sign in with Hugging Face", interactive=False, elem_id="login-oauth")
    gr.Markdown("Signing in with Hugging Face works on a Space with `hf_oauth: true`; here, paste a token.")


def _header(endpoint: str, oauth: bool) -> str:
    mode = (
        "Multi-user mode: every visitor signs in with their own account; the server's token is never used."
        if oauth
        else "Single-user mode: the server's `HF_TOKEN` or cached login is used when present."
    )
    return (
        f"# hubui {hubui.__version__}\n"
        f"Convert a {' or '.join(source_names())} model, prove logits parity, write the card, push, verify.  \n"
        f"Hub: `{endpoint}` · {mode}"
    )


def build_app(hub_url: str | None = None, *, oauth: bool | None = None) -> gr.Blocks:
    """Build (not launch) the hubui Blocks.

    Args:
        hub_url: The Hub the app talks to, shown in the header. The core uses ``HF_ENDPOINT``; set it
            to the same URL before huggingface_hub is imported (``hubui demo`` does).
        oauth: Force OAuth mode on or off; ``None`` detects a Space with OAuth enabled.

    Returns:
        The Blocks, queued, ready for ``.launch()``.
    """
    endpoint = hub_url or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if hub_url and os.environ.get("HF_ENDPOINT", "").rstrip("/") != hub_url.rstrip("/"):
        logger.warning("hub_url %s differs from HF_ENDPOINT; the core talks to HF_ENDPOINT", hub_url)
    use_oauth = oauth_mode(oauth)
    scratch = Path(tempfile.mkdtemp(prefix="hubui-app-"))
    atexit.register(shutil.rmtree, scratch, True)

    with gr.Blocks(title="hubui") as app:
        session = gr.State(session_factory(use_oauth, scratch), delete_callback=close_session)
        gr.Markdown(_header(endpoint, use_oauth), elem_id="app-header")

        with gr.Tab("Login", elem_id="tab-login"):
            if use_oauth:
                _oauth_button()
            token = gr.Textbox(
                label="Hugging Face token",
                type="password",
                placeholder="hf_…  (write access is needed to push)",
                elem_id="login-token",
            )
            with gr.Row():
                login = gr.Button("Log in", variant="primary", elem_id="login-button")
                logout = gr.Button("Log out", elem_id="logout-button")
            status = gr.Markdown("Not logged in.", elem_id="login-status")

        with gr.Tab("Model", elem_id="tab-model"):
            with gr.Row():
                library = gr.Radio(list(source_names()), value=DEFAULT_SOURCE, label="Library", elem_id="model-library")
                query = gr.Textbox(
                    label="Search architectures",
                    placeholder="resnet, vit_*, *clip* …",
                    elem_id="model-search",
                )
            with gr.Row():
                results = gr.Dropdown([], label="Architecture", info="type in the search box", elem_id="model-results")
                tag = gr.Dropdown(
                    [forms.RANDOM_WEIGHTS], value=forms.RANDOM_WEIGHTS, label="Pretrained tag", elem_id="model-tag"
                )
            checkpoint = gr.File(
                label="…or your own checkpoint (wins over the tag)",
                file_types=CHECKPOINT_TYPES,
                elem_id="model-checkpoint",
            )
            model_error = gr.Markdown("", elem_id="model-error")
            facts = gr.Markdown("", elem_id="model-facts")

        with gr.Tab("Convert & parity", elem_id="tab-convert"):
            with gr.Row():
                precision = gr.Radio(list(PRECISIONS), value="fp32", label="Precision", elem_id="convert-precision")
                tolerance = gr.Radio(
                    [forms.PRESET_TOLERANCE, forms.STRICT_TOLERANCE],
                    value=forms.PRESET_TOLERANCE,
                    label="Tolerance",
                    info="strict: float32-exact whatever the precision",
                    elem_id="convert-tolerance",
                )
                convert_target = gr.Radio(
                    forms.target_choices(),
                    value=NATIVE,
                    label="Target",
                    info=forms.target_info(),
                    elem_id="convert-target",
                )
            images = gr.File(
                label="Your own parity images (optional)",
                file_count="multiple",
                file_types=["image"],
                elem_id="convert-images",
            )
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="convert-run")
                cancel = gr.Button("Cancel", variant="stop", elem_id="convert-cancel")
            progress = gr.Markdown("", elem_id="parity-progress")
            verdict = gr.Markdown("", elem_id="parity-verdict")
            table = gr.Dataframe(views.parity_frame(None), label="Parity", interactive=False, elem_id="parity-table")
            plot = gr.ScatterPlot(
                plots.samples_frame(None),
                x="original",
                y="converted",
                color="output",
                label=plots.plot_label(plots.samples_frame(None)),
                elem_id="parity-plot",
            )
            files = gr.Dataframe(
                views.files_frame(()), label="Exported files", interactive=False, elem_id="export-files"
            )

        with gr.Tab("Card & push", elem_id="tab-push"):
            with gr.Row():
                with gr.Column():
                    card: list[Any] = [
                        gr.Dropdown(sorted(HUB_LICENSES), value=None, label="License", elem_id="card-license"),
                        gr.Textbox(label="Language (comma-separated codes)", elem_id="card-language"),
                        gr.Textbox(label="Tags (comma-separated)", elem_id="card-tags"),
                        gr.Textbox(label="Datasets (comma-separated Hub ids)", elem_id="card-datasets"),
                        gr.Textbox(label="Base model (Hub id)", elem_id="card-base-model"),
                        gr.Dropdown(
                            list(forms.PIPELINE_TAGS),
                            value=forms.PIPELINE_TAGS[0],
                            allow_custom_value=True,
                            label="Pipeline tag",
                            elem_id="card-pipeline-tag",
                        ),
                        gr.Textbox(label="Description (Markdown)", lines=4, elem_id="card-description"),
                        gr.Textbox(label="Usage (Markdown; empty = generated snippet)", lines=3, elem_id="card-usage"),
                        gr.Textbox(label="Citation (BibTeX)", lines=3, elem_id="card-citation"),
                        gr.Dataframe(
                            headers=list(forms.EVAL_COLUMNS),
                            column_count=len(forms.EVAL_COLUMNS),
                            row_count=1,
                            label="Eval results",
                            interactive=True,
                            elem_id="card-eval",
                        ),
                    ]
                    load_card = gr.Button("Load existing card", elem_id="card-load-existing")
                with gr.Column():
                    preview = gr.Markdown(
                        "_Run a conversion first: the card includes its parity section._", elem_id="card-preview"
                    )
            with gr.Row():
                namespace = gr.Dropdown([], label="Namespace", allow_custom_value=True, elem_id="push-namespace")
                name = gr.Textbox(label="Repo name", elem_id="push-name")
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
            override = gr.Checkbox(
                label="Push even though parity did not pass (recorded in the card)", elem_id="push-override"
            )
            with gr.Row():
                dry = gr.Button("Dry run", elem_id="push-dry-run")
                push = gr.Button("Push", variant="primary", interactive=False, elem_id="push-button")
            plan = gr.Markdown("", elem_id="push-plan")
            result = gr.Markdown("", elem_id="push-result")
            verification = gr.Markdown("", elem_id="push-verification")

        # --- wiring -----------------------------------------------------------------------------------
        # The api_names are a contract too: scripts and tests drive sessions through gradio_client with them.
        login_out = [status, namespace, session]
        app.load(handlers.on_load, [session], login_out, api_name="on_load")
        gr.on(
            [login.click, token.submit],
            handlers.log_in,
            [token, session],
            [status, token, namespace, session],
            api_name="log_in",
        )
        logout.click(handlers.log_out, [session], login_out, api_name="log_out")

        gr.on(
            [query.change, query.submit, library.change],
            handlers.search,
            [library, query],
            [results, model_error],
            trigger_mode="always_last",
            show_progress="hidden",
            api_name="search",
        )
        results.change(handlers.select_model, [library, results], [facts, tag, model_error], api_name="select_model")
        tag.input(handlers.select_tag, [library, results, tag], [facts, model_error], api_name="select_tag")

        preview_in = [session, namespace, name, override, *card]
        run.click(
            handlers.run_convert,
            [session, library, results, tag, checkpoint, precision, tolerance, images, name, override, convert_target],
            [table, progress, plot, verdict, files, push, name, session],
            concurrency_limit=HEAVY_LIMIT,
            concurrency_id=HEAVY_ID,
            api_name="run_convert",
        ).then(card_handlers.preview_card, preview_in, [preview], show_progress="hidden")
        cancel.click(handlers.cancel_convert, [session], [progress], concurrency_limit=None, api_name="cancel_convert")
        override.change(handlers.gate, [session, override], [push])
        gr.on(
            [c.change for c in card] + [namespace.change, name.change, override.change],
            card_handlers.preview_card,
            preview_in,
            [preview],
            trigger_mode="always_last",
            show_progress="hidden",
        )

        target = [session, namespace, name, private, branch, create_pr, message, readme_mode, override, *card]
        load_card.click(card_handlers.load_existing_card, [session, namespace, name, branch], [*card[:7], preview])
        dry.click(card_handlers.dry_run, target, [plan], api_name="dry_run")
        push.click(
            card_handlers.push,
            target,
            [result, verification],
            concurrency_limit=HEAVY_LIMIT,
            concurrency_id=HEAVY_ID,
            api_name="push",
        )

        def _unload(request: gr.Request) -> None:
            remove_session_dir(scratch, request.session_hash)

        app.unload(_unload)
    return app.queue(default_concurrency_limit=LIGHT_CONCURRENCY)


__all__ = ["build_app", "oauth_mode"]
