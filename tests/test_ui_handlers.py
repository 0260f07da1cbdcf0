"""The Gradio app at its boundary, without a browser: the real core and the session's local Hub.

Handlers are called the way gradio calls them (positional values, a per-session ``Session``, an
optional ``gr.OAuthToken``); streaming handlers are iterated step by step.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
import timm
import torch
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from safetensors.torch import load_file

import hubui
from hubui.ui import build_app, card_handlers, forms, handlers, plots, views
from hubui.ui.errors import INTERNAL_ERROR, to_gr_error
from hubui.ui.forms import PRESET_TOLERANCE as PRESET
from hubui.ui.forms import RANDOM_WEIGHTS
from hubui.ui.state import Session, close_session, remove_session_dir, session_factory

CONTRACT = {
    "tab-login", "login-token", "login-button", "logout-button", "login-status",
    "tab-model", "model-library", "model-search", "model-results", "model-tag", "model-checkpoint", "model-facts",
    "model-error",
    "tab-convert", "convert-precision", "convert-tolerance", "convert-images", "convert-run", "convert-cancel",
    "parity-table", "parity-progress", "parity-plot", "parity-verdict", "export-files",
    "tab-push", "card-license", "card-language", "card-tags", "card-datasets", "card-base-model",
    "card-pipeline-tag", "card-description", "card-usage", "card-citation", "card-eval", "card-preview",
    "card-load-existing", "push-namespace", "push-name", "push-private", "push-branch", "push-create-pr",
    "push-message", "push-override", "push-dry-run", "push-plan", "push-button", "push-result", "push-verification",
}  # fmt: skip
MODEL = "test_resnet"
CARD = {
    "license": "mit",
    "language": "en",
    "tags": "vision, hubui-test",
    "datasets": "",
    "base_model": "",
    "pipeline_tag": "image-classification",
    "description": "A tiny test ResNet.",
    "usage": "",
    "citation": "",
    "evals": None,
}


def _convert(session: Session, precision: str = "fp32", cancel_after: int | None = None) -> list[tuple]:
    """Run the streaming convert handler to the end; optionally press Cancel after N updates.

    The model gets random weights, so every push and dry run below ticks "Push random weights anyway"
    (``allow_random_weights=True``): without it the core refuses them (issue 20).
    """
    steps = []
    run = handlers.run_convert(session, "timm", MODEL, RANDOM_WEIGHTS, None, precision, PRESET, None, "", False)
    for i, step in enumerate(run):
        steps.append(step)
        if cancel_after is not None and i + 1 == cancel_after:
            assert handlers.cancel_convert(session).startswith("cancelling")
    return steps


def _target(name: str, namespace: str = "alice", **changes) -> dict:
    target = {
        "namespace": namespace,
        "name": name,
        "private": False,
        "branch": "",
        "create_pr": False,
        "message": "Upload from the app",
        "readme_mode": "keep",
        "override": False,
    }
    return {**target, **changes}


def _logged_in(token: str, **kwargs) -> Session:
    session = Session(**kwargs)
    handlers.log_in(token, session)
    return session


@pytest.fixture(scope="module")
def converted(localhub, tmp_path_factory) -> Session:
    """A session logged in as alice with a passed fp32 conversion of a tiny model."""
    session = _logged_in(localhub.users.alice, scratch_root=tmp_path_factory.mktemp("scratch"))
    _convert(session)
    assert session.result is not None and session.result.passed
    return session


def _with_result(source: Session, **kwargs) -> Session:
    session = Session(**kwargs)
    session.result = source.result
    return session


# --- the app --------------------------------------------------------------------------------------
def _elem_ids(app: gr.Blocks) -> set[str]:
    return {b.elem_id for b in app.blocks.values() if getattr(b, "elem_id", None)}


def test_build_app_does_not_launch_and_carries_the_elem_id_contract():
    app = build_app(hub_url="http://127.0.0.1:1", oauth=False)
    assert isinstance(app, gr.Blocks) and not app.is_running
    ids = _elem_ids(app)
    assert ids >= CONTRACT, sorted(CONTRACT - ids)
    assert "login-oauth" not in ids
    assert "login-oauth" in _elem_ids(build_app(oauth=True))


def test_no_trigger_has_two_always_last_listeners():
    # gradio's page re-dispatches a whole trigger when a deferred always_last listener ends, which runs its
    # siblings again, which defer in turn: with two on one trigger the events looped while the page was open,
    # and the loop put the visitor's tag and licence back to the defaults (see hubui.ui.app.FAST).
    config = build_app(hub_url="http://127.0.0.1:1", oauth=False).get_config_file()
    names = {c["id"]: c["props"].get("elem_id") or c["type"] for c in config["components"]}
    listeners: dict[tuple[str, str], int] = {}
    for dep in config["dependencies"]:
        for target, event in dep["targets"]:
            if dep["trigger_mode"] == "always_last" and event not in ("then", "success", "failure"):
                listeners[(names.get(target), event)] = listeners.get((names.get(target), event), 0) + 1
    assert ("model-results", "change") in listeners  # select_model: the tag list follows the architecture
    assert {k: n for k, n in listeners.items() if n > 1} == {}
    # The quick listeners skip the queue: each queued event costs the page a round of status updates.
    card_views = [d for d in config["dependencies"] if d["outputs"] and names[d["outputs"][0]] == "card-preview"]
    assert card_views and not any(d["queue"] for d in card_views if d["targets"][0][1] == "change")


def test_each_browser_session_gets_its_own_state(localhub, tmp_path):
    make = session_factory(False, tmp_path)
    one, two = make(), make()
    assert one is not two and copy.deepcopy(one) is one  # gradio's deepcopy must not clone a token
    handlers.log_in(localhub.users.alice, one)
    handlers.log_in(localhub.users.bob, two)
    assert (one.identity.name, two.identity.name) == ("alice", "bob")
    assert one.token == localhub.users.alice and two.token == localhub.users.bob
    assert localhub.users.alice not in repr(one)
    state = next(b for b in build_app(oauth=False).blocks.values() if isinstance(b, gr.State))
    assert callable(state.value) and state.value() is not state.value()


# --- login ----------------------------------------------------------------------------------------
def test_login_with_a_write_token_shows_user_orgs_and_rights(localhub):
    session = Session()
    status, box, namespaces, same = handlers.log_in(f"  {localhub.users.alice}\n", session)
    assert same is session and box == ""
    assert "alice" in status and "team" in status and "can write" in status and "typed token" in status
    assert localhub.users.alice not in status
    assert namespaces["choices"] == ["alice", "team", "timm", "laion"] and namespaces["value"] == "alice"


def test_login_with_a_read_only_token_says_so(localhub):
    status, *_ = handlers.log_in(localhub.users.reader, Session())
    assert "reader" in status and "read-only" in status


def test_login_with_a_bad_token_is_a_gr_error_with_a_hint_and_no_token():
    bad = "hf_" + "x" * 30
    with pytest.raises(gr.Error) as err:
        handlers.log_in(bad, Session())
    assert "rejected this token" in err.value.message and "log in again" in err.value.message
    assert bad not in err.value.message and "Traceback" not in err.value.message


def test_logout_forgets_the_token(localhub):
    session = _logged_in(localhub.users.alice)
    status, namespaces, _ = handlers.log_out(session)
    assert session.token is None and status == "Logged out." and namespaces["choices"] == []


def test_single_user_mode_picks_up_hf_token(localhub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", localhub.users.bob)
    status, namespaces, session = handlers.on_load(Session(), None)
    assert "bob" in status and "HF_TOKEN" in status and session.token == localhub.users.bob
    assert namespaces["value"] == "bob"


def test_oauth_mode_never_uses_the_server_token(localhub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", localhub.users.bob)
    status, namespaces, session = handlers.on_load(Session(oauth=True), None)
    assert session.token is None and "bob" not in status and namespaces["choices"] == []
    with pytest.raises(gr.Error, match="Sign in with Hugging Face"):
        handlers.dry_run(session, *_target("x").values(), *CARD.values(), None)


def test_oauth_sign_in_is_adopted_on_load(localhub):
    token = gr.OAuthToken(token=localhub.users.alice, scope="openid write-repos", expires_at=0)
    status, namespaces, _ = handlers.on_load(Session(oauth=True), token)
    assert "alice" in status and "Hugging Face sign-in" in status and namespaces["value"] == "alice"


# --- model ----------------------------------------------------------------------------------------
def test_search_gives_instant_results_and_facts():
    results, message = handlers.search("timm", "test_res")
    assert MODEL in results["choices"] and message == ""
    waiting, *_, (facts, tags, message) = handlers.select_model("timm", MODEL)
    # The tag box waits while the tags are looked up (a tag picked from the old list would be replaced)...
    assert waiting[1]["interactive"] is False and MODEL in waiting[1]["info"]
    assert tags["interactive"] is True  # ...and is usable again with the new list
    assert "parameters" in facts and "input size" in facts and "mean / std" in facts and message == ""
    assert tags["choices"][0] == RANDOM_WEIGHTS


def test_a_late_search_keeps_the_architecture_already_chosen():
    # A search sent before the user picked a model (current None) and answered after must not wipe the pick
    # (it did: value=None): it sends the list only. A choice the new list lacks is cleared.
    results, _ = handlers.search("timm", "test_res", None)
    assert "value" not in results and MODEL in results["choices"]
    results, _ = handlers.search("timm", "test_res", MODEL)
    assert "value" not in results
    results, _ = handlers.search("timm", "no-such-model-anywhere", MODEL)
    assert results["value"] is None


def test_an_empty_classes_box_keeps_the_model_s_own_classifier():
    # A browser's empty number box can arrive as 0: the Classes box is text, and empty means "the model's own".
    assert forms.model_spec("timm", MODEL, RANDOM_WEIGHTS, None, "").num_classes is None
    assert forms.model_spec("timm", MODEL, RANDOM_WEIGHTS, None, " 0 ").num_classes == 0
    assert forms.model_spec("timm", MODEL, RANDOM_WEIGHTS, None, "12").num_classes == 12
    with pytest.raises(hubui.InvalidInputError, match="'twelve'"):
        forms.model_spec("timm", MODEL, RANDOM_WEIGHTS, None, "twelve")


def test_model_errors_are_inline_with_what_to_do():
    results, message = handlers.search("timm", "no-such-model-anywhere")
    assert results["choices"] == [] and "No timm architecture matches" in message
    *_, (facts, tags, message) = handlers.select_model("timm", "resnet5O")
    assert tags["interactive"] is True and tags["value"] == RANDOM_WEIGHTS
    assert facts == "" and "Unknown timm model" in message and "Did you mean" in message


def test_open_clip_search_answers_or_explains_inline():
    results, message = handlers.search("open_clip", "ViT")
    assert results["choices"] or message  # support is landing in the core; either way no exception


# --- convert --------------------------------------------------------------------------------------
def test_convert_streams_intermediate_states_before_the_verdict(localhub, tmp_path):
    session = Session(scratch_root=tmp_path)
    steps = _convert(session)
    table, _, plot, verdict, files, push, name, same = steps[-1]
    assert "PASS" in verdict and same is session and name == f"{MODEL}-random-seed0"  # the name follows the weights
    assert any("batch" in s[1] and "RUNNING" in s[3] for s in steps[:-1]), [s[1] for s in steps]
    assert list(table["output"]) == ["logits"] and table["max abs diff"].iloc[0] == "0"
    assert {"config.json", "model.safetensors", "parity.json"} <= set(files["file"])
    assert push["interactive"] is True and "label" in plot
    assert session.result is not None and session.result.export.folder.is_relative_to(tmp_path)


def test_a_failing_convert_shows_where_it_stopped_then_raises_the_mapped_error(tmp_path):
    steps = []
    run = handlers.run_convert(Session(scratch_root=tmp_path), "timm", "resnet5O", None, None, "fp32", PRESET, None,
                               "", False)  # fmt: skip
    with pytest.raises(gr.Error) as err:
        steps.extend(run)
    assert "Unknown timm model" in err.value.message and "Did you mean" in err.value.message
    assert steps[-1][1] == "stopped by an error" and "## ERROR" in steps[-1][3] and "Did you mean" in steps[-1][3]


def test_the_tag_box_takes_a_hub_repo_and_names_it_everywhere(localhub, tmp_path, repo_name):
    assert forms.weights_choice(" hf-hub:alice/x@v1 ") == (None, "alice/x@v1")
    assert forms.weights_choice("a1_in1k") == ("a1_in1k", None)
    assert forms.weights_choice(RANDOM_WEIGHTS) == forms.weights_choice("") == (None, None)
    assert forms.weights_choice("hf-hub:alice/x", "/uploads/w.pth") == (None, None)  # a checkpoint wins
    with pytest.raises(hubui.InvalidInputError, match="names no Hub repo"):
        forms.weights_choice("hf-hub: ")
    repo = f"alice/{repo_name}"
    torch.manual_seed(3)
    pushed = timm.create_model("test_resnet", pretrained=False).eval()
    timm.models.push_to_hf_hub(pushed, repo, token=localhub.users.alice, safe_serialization=True)
    session = _logged_in(localhub.users.alice, scratch_root=tmp_path)
    # Loaded as another architecture: one message, saying which to pick, in the app's words.
    run = handlers.run_convert(session, "timm", "test_vit", f"hf-hub:{repo}", None, "fp32", PRESET, None, "", False)
    with pytest.raises(gr.Error) as err:
        list(run)
    assert "holds a 'test_resnet'" in err.value.message, err.value.message
    assert "Pick test_resnet as the Architecture on the Model tab." in err.value.message, err.value.message
    # The right one: the facts, the name, the card's base model, the verdict and the weights all follow the repo.
    facts, _ = handlers.select_weights("timm", "test_resnet", f"hf-hub:{repo}", None)
    assert f"Hub repo {repo} at main" in facts
    license, _, base, *_ = card_handlers.card_defaults_view("timm", "test_resnet", f"hf-hub:{repo}", None, "native")
    assert (license, base) == (None, repo)  # the repo claims lineage; its licence is for the visitor to say
    steps = list(handlers.run_convert(session, "timm", "test_resnet", f"hf-hub:{repo}", None, "fp32", PRESET, None,
                                      "", False))  # fmt: skip
    *_, verdict, _, _, name, _ = steps[-1]
    assert "PASS" in verdict and f"Hub repo {repo} at main" in verdict and name == repo_name, (verdict, name)
    loaded = session.result.loaded
    assert loaded.spec.hf_hub_id == repo and loaded.spec.pretrained is None
    saved = load_file(session.result.export.folder / "model.safetensors")  # what a push would upload
    own = pushed.state_dict()
    assert saved.keys() == own.keys() and all(torch.equal(saved[k], own[k]) for k in own)


def test_plot_data_follows_the_report_samples_schema():
    report = SimpleNamespace(
        samples={
            "logits": {"original": [1.0, 2.0, float("nan")], "converted": [1.0, 2.5, 3.0]},
            "image_features": {"original": [0.5], "converted": [0.25]},
        }
    )

    frame = plots.samples_frame(report)
    assert list(frame.columns) == ["original", "converted", "output"] and len(frame) == 3
    assert frame[frame.output == "logits"].converted.tolist() == [1.0, 2.5]
    assert plots.plot_label(frame) == plots.PLOT_LABEL
    assert plots.NO_SAMPLES in plots.plot_label(plots.samples_frame(None))


def test_cancel_stops_the_run_and_the_gate_needs_the_override(localhub, tmp_path):
    session = Session(scratch_root=tmp_path)
    steps = _convert(session, cancel_after=1)
    verdict = steps[-1][3]
    assert "CANCELLED" in verdict and session.cancel is None
    assert handlers.gate(session, False)["interactive"] is False
    assert handlers.gate(session, True)["interactive"] is True


def test_gate_is_closed_before_any_run_unless_overridden():
    assert handlers.gate(Session(), False)["interactive"] is False
    assert handlers.gate(Session(), True)["interactive"] is True


def test_session_folder_goes_when_the_session_ends(tmp_path):
    session = Session(scratch_root=tmp_path)
    run = session.new_run_dir("abc123")
    run.mkdir()
    assert run.parent == tmp_path / "abc123"
    remove_session_dir(tmp_path, "abc123")
    assert not (tmp_path / "abc123").exists()
    other = Session(scratch_root=tmp_path)
    folder = other.new_run_dir().parent
    close_session(other)
    assert not folder.exists() and other.token is None


# --- card and push --------------------------------------------------------------------------------
def test_card_preview_renders_fields_and_shows_bad_ones_inline(converted):
    preview = handlers.preview_card(converted, "alice", "demo", False, *CARD.values())
    assert "license: mit" in preview and "Conversion and parity" in preview and "A tiny test ResNet." in preview
    bad = handlers.preview_card(converted, "alice", "demo", False, *{**CARD, "language": "English!"}.values())
    assert "language" in bad and "ISO 639" in bad


def test_push_as_pr_lands_on_refs_pr_with_the_edited_card(localhub, converted, repo_name):
    result, verification = handlers.push(
        converted, *_target(repo_name, create_pr=True).values(), *CARD.values(), None, allow_random_weights=True
    )
    assert "pull request" in result and "refs/pr/1" in result
    assert "**passed**" in verification
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    assert [r.ref for r in api.list_repo_refs(f"alice/{repo_name}", include_pull_requests=True).pull_requests] == [
        "refs/pr/1"
    ]
    card = ModelCard.load(hf_hub_download(f"alice/{repo_name}", "README.md", revision="refs/pr/1", token=False))
    assert card.data.license == "mit" and card.data.tags == ["vision", "hubui-test"]
    assert "A tiny test ResNet." in card.text
    assert "model.safetensors" not in api.list_repo_files(f"alice/{repo_name}")  # main is untouched


def test_dry_run_lists_files_and_uploads_nothing(localhub, converted, repo_name):
    plan = handlers.dry_run(converted, *_target(repo_name).values(), *CARD.values(), None, allow_random_weights=True)
    assert "Dry run" in plan and "model.safetensors" in plan and "README.md" in plan and "new repo" in plan
    assert not HfApi(endpoint=localhub.url).repo_exists(f"alice/{repo_name}")


def test_licence_other_takes_its_name_and_link_from_the_form(localhub, converted, repo_name):
    # 80 of timm's pretrained tags name a licence the Hub has no identifier for: the form fills "other" and its name.
    license, name, base, pipeline, note = card_handlers.card_defaults_view(
        "timm", "mobileone_s0", "apple_in1k", None, "native"
    )
    assert (license, name, base, pipeline) == (
        "other",
        "mobileone-license",
        "timm/mobileone_s0.apple_in1k",
        "image-classification",
    )
    assert "mobileone-license" in note
    # The name and link boxes show with "other" only.
    assert card_handlers.licence_more_view("other")["visible"] is True
    assert card_handlers.licence_more_view("mit")["visible"] is False
    other = {**CARD, "license": "other"}
    empty = handlers.preview_card(converted, "alice", "demo", False, *other.values())
    assert "License name box is empty" in empty and "license_name" not in empty, empty
    named = handlers.preview_card(
        converted, "alice", "demo", False, *other.values(), license_name=" my-licence ", license_link="LICENSE"
    )
    assert "license_name: my-licence" in named and "license_link: LICENSE" in named, named
    bad = handlers.preview_card(converted, "alice", "demo", False, *other.values(), license_name="My Licence!")
    assert "License name" in bad and "My Licence!" in bad, bad
    # A name left in the hidden boxes after the licence went back to an identifier is not written.
    hidden = handlers.preview_card(converted, "alice", "demo", False, *CARD.values(), license_name="my-licence")
    assert "license: mit" in hidden and "license_name" not in hidden, hidden
    link = "https://example.com/licence.txt"
    handlers.push(
        converted, *_target(repo_name).values(), *other.values(), None, allow_random_weights=True,
        license_name="my-licence", license_link=link,
    )  # fmt: skip
    card = ModelCard.load(hf_hub_download(f"alice/{repo_name}", "README.md", token=localhub.users.alice))
    assert (card.data.license, card.data.license_name, card.data.license_link) == ("other", "my-licence", link)


def test_failed_gate_refuses_the_push_and_the_override_is_recorded(localhub, tmp_path, repo_name, monkeypatch):
    session = _logged_in(localhub.users.alice, scratch_root=tmp_path)
    from hubui.libraries import target_format

    fmt = target_format("timm", "native")
    real = type(fmt).rebuild_from_folder

    def rebuild_then_cancel(self, folder):  # Cancel pressed during the rebuild: parity stops before its first batch
        model = real(self, folder)
        handlers.cancel_convert(session)
        return model

    monkeypatch.setattr(type(fmt), "rebuild_from_folder", rebuild_then_cancel)
    steps = _convert(session)
    assert "CANCELLED" in steps[-1][3] and session.result is not None
    with pytest.raises(gr.Error) as err:
        handlers.push(session, *_target(repo_name).values(), *CARD.values(), None, allow_random_weights=True)
    assert "refusing to push" in err.value.message and "override" in err.value.message
    plan = handlers.dry_run(
        session, *_target(repo_name, override=True).values(), *CARD.values(), None, allow_random_weights=True
    )
    assert "Parity override" in plan


def test_errors_name_the_fix_and_never_the_token(localhub, converted, repo_name):
    reader = _with_result(converted)
    handlers.log_in(localhub.users.reader, reader)
    with pytest.raises(gr.Error) as err:
        handlers.push(
            reader, *_target(repo_name, namespace="reader").values(), *CARD.values(), None, allow_random_weights=True
        )
    assert "cannot create repos or push" in err.value.message and "'write' role" in err.value.message
    assert localhub.users.reader not in err.value.message
    with pytest.raises(gr.Error, match="namespace/name"):
        handlers.dry_run(converted, *_target("bad name!").values(), *CARD.values(), None, allow_random_weights=True)
    with pytest.raises(gr.Error, match="Run a conversion"):
        handlers.push(
            _logged_in(localhub.users.alice),
            *_target(repo_name).values(),
            *CARD.values(),
            None,
            allow_random_weights=True,
        )
    internal = to_gr_error(RuntimeError(f"boom {localhub.users.alice}"))
    assert internal.message.startswith(INTERNAL_ERROR) and localhub.users.alice not in internal.message


def test_a_token_revoked_after_login_is_refused_at_push(converted, tmp_path, repo_name, monkeypatch):
    """The session logged in with a token that works; the Hub then revokes it: the push must say so, not push."""
    import secrets

    from _hubproc import start_hub

    old, new = secrets.token_hex(16), secrets.token_hex(16)
    hub = start_hub(tmp_path / "hub", [f"erin:{old}:write"])
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        session = _with_result(converted)
        status, *_ = handlers.log_in(old, session)
        assert "erin" in status
        hub.stop()  # the same Hub, restarted with erin's token replaced: the old one is revoked
        hub = start_hub(tmp_path / "hub", [f"erin:{new}:write"], port=hub.port)
        with pytest.raises(gr.Error) as err:
            handlers.push(
                session, *_target(repo_name, namespace="erin").values(), *CARD.values(), None, allow_random_weights=True
            )
        assert "revoked" in err.value.message and old not in err.value.message
        assert not HfApi(endpoint=hub.url, token=new).repo_exists(f"erin/{repo_name}")
    finally:
        hub.stop()


def test_oauth_mode_pushes_as_the_signed_in_user(localhub, converted, repo_name, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", localhub.users.bob)  # the server's token must play no part
    session = _with_result(converted, oauth=True)
    token = gr.OAuthToken(token=localhub.users.alice, scope="openid write-repos", expires_at=0)
    result, verification = handlers.push(
        session, *_target(repo_name).values(), *CARD.values(), token, allow_random_weights=True
    )
    assert f"alice/{repo_name}" in result and "**passed**" in verification
    commits = HfApi(endpoint=localhub.url, token=localhub.users.alice).list_repo_commits(f"alice/{repo_name}")
    assert "alice" in commits[0].authors
    with pytest.raises(gr.Error, match="cannot push to namespace 'bob'"):
        handlers.dry_run(
            session, *_target(repo_name, namespace="bob").values(), *CARD.values(), token, allow_random_weights=True
        )


def test_load_existing_card_fills_the_form(localhub, converted, repo_name, tmp_path: Path):
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(f"alice/{repo_name}")
    readme = "---\nlicense: cc-by-4.0\ntags:\n- old\n- card\n---\n# Title\n\nExisting words.\n\n## More\n"
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=f"alice/{repo_name}")
    *values, preview = handlers.load_existing_card(converted, "alice", repo_name, "", None)
    got = dict(zip(card_handlers.LOADED_KEYS, values, strict=True))
    assert (got["license"], got["tags"], got["description"]) == ("cc-by-4.0", "old, card", "Existing words.")
    assert "Existing words." in preview
    other = "---\nlicense: other\nlicense_name: my-licence\nlicense_link: LICENSE\n---\n# Title\n\nWords.\n"
    api.upload_file(path_or_fileobj=other.encode(), path_in_repo="README.md", repo_id=f"alice/{repo_name}")
    *values, _ = handlers.load_existing_card(converted, "alice", repo_name, "", None)
    got = dict(zip(card_handlers.LOADED_KEYS, values, strict=True))
    assert (got["license"], got["license_name"], got["license_link"]) == ("other", "my-licence", "LICENSE")
    with pytest.raises(gr.Error, match="has no README"):
        handlers.load_existing_card(converted, "alice", repo_name + "-none", "", None)


def test_parity_table_shows_outputs_without_class_scores():
    metrics = SimpleNamespace(
        name="image_features", shape=(8, 512), max_abs_diff=0.0, mean_abs_diff=0.0, max_rel_diff=0.0,
        cosine_min=0.99999994, top1_agreement=None, top5_overlap=None,
    )  # fmt: skip
    row = views.parity_frame(SimpleNamespace(outputs=(metrics,))).iloc[0].tolist()
    assert row == ["image_features", "8×512", "0", "0", "0", "0.99999994", "n/a", "n/a"]
