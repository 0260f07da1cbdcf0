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
from hubui.libraries import DEFAULT_SOURCE, NATIVE, source_names
from hubui.ui import card_handlers, card_tab, derived, forms, handlers, plots, resume, views
from hubui.ui import status as status_bar
from hubui.ui.errors import clear_pills, shown_at
from hubui.ui.state import Session, SessionStore, close_session, remove_session_dir, session_factory

try:  # the Quick fix tab (hubui/ui/quick.py); the app works without it
    from hubui.ui import quick as quick_ui
except ImportError:  # pragma: no cover - only while that module is missing
    quick_ui = None  # type: ignore[assignment]

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


# The status bar stays in view on every tab and at any scroll (gradio 6 takes CSS at launch: see hubui.ui.launch).
CSS = """
#status-bar { position: sticky; top: 0; z-index: 50; padding: 6px 12px;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary);
  border-radius: var(--radius-md); box-shadow: var(--shadow-drop); }
#status-bar p { margin: 0; }
.gradio-container { overflow: clip !important; }  /* hidden makes it a scroll box, and sticky stops working */
"""


def launch_options() -> dict[str, Any]:
    """What every face passes to ``Blocks.launch()`` (``hubui app``, ``hubui demo``, the Space).

    Gradio 6 takes CSS at launch, not in ``Blocks``. Its run history is off: it keeps every event's inputs and
    outputs in the browser's ``localStorage``, the token box among them, and re-serialises up to 100 runs after
    each event, which kept the page busy for seconds after every click. Off, nothing is recorded and what an
    earlier version recorded is deleted from the browser.
    """
    return {"css": CSS, "run_history": False}


def _targets_note() -> str:
    """How to get each conversion target that is not installed here (empty when all are)."""
    from hubui.libraries import target_names

    missing = [t for t in target_names() if t not in forms.target_choices()]
    return "\n".join(
        f"The **{t}** target is not installed in this environment. To get it, start the app with "
        f"`bash scripts/start.sh` (it installs the {t} extra; if you set `HUBUI_EXTRAS`, include `[{t}]`, e.g. "
        f"`HUBUI_EXTRAS='[{t}]' bash scripts/start.sh`), or run `pip install 'hubui[{t}]'` here; then restart the app."
        for t in missing
    )


# The events that follow every change (remembering the form, the status bar, the card fields and the repo name that
# follow the model, the preview, the out-of-date marks) are quick; they skip the queue and run on every trigger.
# - Queued, each sent the page a handful of status messages, and for each one gradio's page updated the loading
#   state of every component: a click took seconds in a busy browser.
# - "always_last" (gradio's default for .change) loops when two such listeners share a trigger: a listener
#   triggered while it runs is deferred, and when it ends gradio dispatches the whole *trigger* again, running its
#   siblings too, which defer in turn. The loop never ended while the page was open, re-ran select_model (the
#   visitor's tag went back to the default) and the card defaults (a licence the visitor picked went back to the
#   model's). One always_last listener per trigger at most: select_model, the search and select_weights.
TAG_LABEL = f"Pretrained tag (or type {forms.HUB_PREFIX}owner/name for a Hub repo's weights)"
FAST: dict[str, Any] = {"show_progress": "hidden", "queue": False, "trigger_mode": "multiple"}


def _wire_memory_and_status(
    session: gr.State,
    remembered: list[Any],
    keys: tuple[str, ...],
    bar: gr.Markdown,
    status_in: list[Any],
    *,
    watched: list[Any],
    model_inputs: list[Any],
    defaults_in: list[Any],
    defaults_out: list[Any],
    defaults_note: gr.Markdown,
) -> None:
    """The wiring of the status bar, the card fields that follow the model, and the form a reload puts back."""
    remember = resume.remember(keys)
    gr.on([c.change for c in remembered], remember, [session, *remembered], None, **FAST)
    gr.on([c.input for c in model_inputs], resume.forget_pending, [session], None, **FAST)
    gr.on(
        [c.change for c in defaults_in],
        card_handlers.card_defaults_view,
        defaults_in,
        [*defaults_out, defaults_note],
        **FAST,
    ).then(resume.reapply_defaults, [session, *defaults_in[:3]], defaults_out, **FAST)
    gr.on(
        [c.change for c in (*status_in, *watched)],
        status_bar.refresh,
        [session, *status_in],
        [bar],
        **FAST,
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
    store = SessionStore()  # the sessions a reloaded tab can take up again (hubui.ui.resume)

    with gr.Blocks(title="hubui") as app:
        session = gr.State(session_factory(use_oauth, scratch), delete_callback=close_session)
        gr.Markdown(_header(endpoint, use_oauth), elem_id="app-header")
        bar = gr.Markdown(status_bar.status_markdown(Session(), status_bar.StatusForm()), elem_id="status-bar")
        key = gr.Textbox("", visible="hidden", elem_id="session-key")  # this tab's resume key (see hubui.ui.resume)

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
                tag = gr.Dropdown(  # a typed hf-hub:owner/name loads that Hub repo's weights (forms.weights_choice)
                    [forms.RANDOM_WEIGHTS],
                    value=forms.RANDOM_WEIGHTS,
                    allow_custom_value=True,
                    label=TAG_LABEL,
                    elem_id="model-tag",
                )
            checkpoint = gr.File(
                label="…or your own checkpoint (wins over the tag)",
                file_types=CHECKPOINT_TYPES,
                elem_id="model-checkpoint",
            )
            # A Textbox, not a Number: a browser's empty Number can arrive as 0, which would silently take the
            # classifier off; empty here always means "the model's own".
            num_classes = gr.Textbox(
                label="Classes (empty = the model's own; 0 = no classifier)",
                value="",
                placeholder="the model's own",
                elem_id="model-num-classes",
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
            gr.Markdown(_targets_note(), elem_id="convert-target-note")
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

        tab = card_tab.build_card_tab()
        card, extras, load_card, preview, markdown = tab.card, tab.extras, tab.load_card, tab.preview, tab.markdown
        namespace, name, name_error, branch, private = tab.namespace, tab.name, tab.name_error, tab.branch, tab.private
        create_pr, readme_mode, message, override = tab.create_pr, tab.readme_mode, tab.message, tab.override
        allow_random, dry, push, plan = tab.allow_random, tab.dry, tab.push, tab.plan
        result, verification = tab.result, tab.verification
        if quick_ui is not None:
            quick_ui.build_quick_tab(session, concurrency_limit=HEAVY_LIMIT, concurrency_id=HEAVY_ID)

        # --- wiring -----------------------------------------------------------------------------------
        # The api_names are a contract too: scripts and tests drive sessions through gradio_client with them.
        # Every error shows once, in the output next to its cause: shown_at puts it there and raises it without a
        # toast; clear_pills takes gradio's "Error" pills off the outputs of a failed event (see hubui.ui.errors).
        quiet: dict[str, Any] = {"show_progress": "hidden"}
        login_out = [status, namespace, session]
        # A reload takes up this tab's session again (hubui.ui.resume), before the login is looked at.
        remembered = [library, query, results, tag, precision, tolerance, convert_target, *card, *extras]
        remembered += [namespace, name, branch, private, create_pr, readme_mode, message, override, allow_random]
        keys = resume.remembered_ids(resume.card_ids())
        run_out = [verdict, table, plot, files, push]
        loaded = (
            app.load(
                resume.resume_session(store, keys),
                [key, session],
                [session, key, *remembered, *run_out],
                js=resume.READ_KEY_JS,
                **quiet,
            )
            .then(None, [key], None, js=resume.WRITE_KEY_JS)
            .then(shown_at(handlers.on_load, 0, 3), [session], login_out, api_name="on_load", **quiet)
        )
        status_in = [library, results, tag, checkpoint, precision, override, allow_random]
        # The bar is drawn again from the session the load took up: its change events alone left a reloaded tab's
        # bar at a line computed before the restore (seen once in CI: "parity not run" over a restored PASS).
        clear_pills(loaded, login_out).then(resume.reapply_namespace, [session], [namespace], **quiet).then(
            status_bar.refresh, [session, *status_in], [bar], **quiet
        )
        login_event = gr.on(
            [login.click, token.submit],
            shown_at(handlers.log_in, 0, 4),
            [token, session],
            [status, token, namespace, session],
            api_name="log_in",
            **quiet,
        )
        clear_pills(login_event, [status, token, namespace])
        clear_pills(
            logout.click(shown_at(handlers.log_out, 0, 3), [session], login_out, api_name="log_out", **quiet), login_out
        )

        searched = gr.on(  # the list says "searching…" first: a cold search takes seconds
            [query.change, query.submit, library.change],
            handlers.searching,
            [library, query],
            [results],
            trigger_mode="always_last",
            **quiet,
        ).then(
            shown_at(handlers.search, 1, 2),
            [library, query, results],
            [results, model_error],
            api_name="search",
            trigger_mode="always_last",  # a .then is "once": the search for the last keystroke was dropped
            **quiet,
        )
        clear_pills(searched, [results, model_error]).then(
            resume.reapply_architecture, [session, library], [results], trigger_mode="always_last", **quiet
        )
        selected = results.change(
            shown_at(handlers.select_model, 2, 3, also={1: handlers.TAG_READY}),
            [library, results],
            [facts, tag, model_error],
            api_name="select_model",
            trigger_mode="always_last",
            **quiet,
        )
        last: dict[str, Any] = {"trigger_mode": "always_last", **quiet}
        clear_pills(selected, [facts, tag, model_error]).then(
            resume.reapply_tag, [session, library, results], [tag], **last
        ).then(resume.reapply_facts, [session, library, results, tag, checkpoint], [facts, model_error], **last)
        weights_in = [library, results, tag, checkpoint]
        weighed = gr.on(
            [tag.input, checkpoint.change],
            shown_at(handlers.select_weights, 1, 2),
            weights_in,
            [facts, model_error],
            trigger_mode="always_last",
            api_name="select_tag",
            **quiet,
        )
        clear_pills(weighed, [facts, model_error])
        # The repo name follows the weights unless the user typed their own (the last suggestion tells them apart).
        suggested = gr.State("")
        gr.on(
            [results.change, tag.change, checkpoint.change],
            derived.follow_name,
            [*weights_in, name, suggested],
            [name, suggested],
            **FAST,
        )
        # The repo name is checked as it is typed; leaving the box splits a pasted "ns/name" into the two boxes.
        name_in = [namespace, name]
        gr.on(
            [name.change, namespace.change],
            derived.name_problem,
            name_in,
            [name_error],
            **FAST,
        )
        gr.on([name.blur, name.submit], derived.split_name, name_in, [namespace, name, name_error], **FAST)

        preview_in = [session, namespace, name, override, *card, *extras]
        run_in = [session, library, results, tag, checkpoint, precision, tolerance, images, name, override]
        converted = run.click(
            shown_at(handlers.run_convert, 3, 8, prefix="## ERROR\n", also={1: "stopped by an error"}),
            [*run_in, convert_target, num_classes],
            [table, progress, plot, verdict, files, push, name, session],
            concurrency_limit=HEAVY_LIMIT,
            concurrency_id=HEAVY_ID,
            api_name="run_convert",
            **quiet,
        )
        clear_pills(converted, [table, progress, plot, verdict, files, push, name]).then(
            card_handlers.card_views, preview_in, [preview, markdown], show_progress="hidden"
        ).then(status_bar.refresh, [session, *status_in], [bar], **FAST)  # the run has let go of its cancel by now
        cancel.click(handlers.cancel_convert, [session], [progress], concurrency_limit=None, api_name="cancel_convert")
        override.change(handlers.gate, [session, override], [push], **FAST)
        card[0].change(card_handlers.licence_more_view, [card[0]], [tab.licence_row], **FAST)
        gr.on(
            [c.change for c in (*card, *extras)] + [namespace.change, name.change, override.change],
            card_handlers.card_views,
            preview_in,
            [preview, markdown],
            **FAST,
        )

        target = [session, namespace, name, private, branch, create_pr, message, readme_mode, override, *card]
        target += [allow_random, *extras]  # after card_handlers' oauth_token
        card_out = [*tab.loaded, preview]
        clear_pills(
            load_card.click(
                shown_at(card_handlers.load_existing_card, len(card_out) - 1, len(card_out)),
                [session, namespace, name, branch],
                card_out,
                **quiet,
            ),
            card_out,
        )
        dry_out = [plan]
        clear_pills(
            dry.click(shown_at(card_handlers.dry_run, 0, len(dry_out)), target, dry_out, api_name="dry_run", **quiet),
            dry_out,
        )
        push_out = [result, verification]
        pushed = push.click(
            shown_at(card_handlers.push, 0, len(push_out), also={1: ""}),  # an old verification is not this push's
            target,
            push_out,
            concurrency_limit=HEAVY_LIMIT,
            concurrency_id=HEAVY_ID,
            api_name="push",
            **quiet,
        )
        clear_pills(pushed, push_out)
        # A plan or result made from other inputs says so (a new Run, any push input or card field changed).
        # Each click notes what its plan or result is made from; a change event that leaves the inputs as they
        # were (a value the app set again, a late event) does not mark it.
        for kind, shown, button in (("plan", plan, dry), ("result", result, push)):
            button.click(derived.made_from(kind), target, None, **FAST)
            run.click(derived.mark_stale, [shown], [shown], **FAST)
            gr.on(
                [c.change for c in target[1:]],
                derived.stale_unless_same(kind),
                [shown, *target],
                [shown],
                **FAST,
            )

        use_markdown = tab.use_markdown
        clear_pills(
            use_markdown.click(
                shown_at(card_handlers.use_markdown, len(card_out) - 1, len(card_out)), [markdown], card_out, **quiet
            ),
            card_out,
        )
        followers = [card[0], tab.licence_more[0], card[4], card[5]]  # licence, its name, base model, pipeline tag
        _wire_memory_and_status(
            session, remembered, keys, bar, status_in,
            watched=[verdict, status, result], model_inputs=[library, query, results, tag, *followers],
            defaults_in=[library, results, tag, checkpoint, convert_target], defaults_out=followers,
            defaults_note=tab.defaults_note,
        )  # fmt: skip

        def _unload(request: gr.Request) -> None:
            if not store.detach(request.session_hash):  # a resumable session keeps its folder for a reload
                remove_session_dir(scratch, request.session_hash)

        app.unload(_unload)
    return app.queue(default_concurrency_limit=LIGHT_CONCURRENCY)


__all__ = ["build_app", "launch_options", "oauth_mode"]
