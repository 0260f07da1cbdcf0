"""Issue 20 in a real Chromium: the status bar on every tab (item 6), the push result by its button and the card
diff collapsed (item 9), a reload that keeps the model, the run and the card (item 11), the card's writing
guidance with its Markdown beside the form (item 13) and the card fields that follow the model (item 2).

The app runs in a subprocess against the session's local Hub (the fixtures of ``test_ui_browser``); every test
drives the page through the elem_id contract and checks what a person sees. The "after" screenshots of every tab
(``docs/screenshot.png`` is a copy of after-convert.png) come from :func:`test_status_bar_on_every_tab_follows_the_run`.
"""

from __future__ import annotations

import re
import uuid

import test_ui_browser
from _browser import SCREENSHOTS, AppPage
from huggingface_hub import HfApi
from playwright.sync_api import expect
from test_ui_browser import OPEN_CLIP_MODEL, TABS, TIMM_MODEL, convert, log_in

import hubui
from hubui.ui import status as status_bar
from hubui.ui.state import Session, SessionStore, close_session

# The app's browser-test fixtures (its own app server for this module, Chromium, a fresh context per page).
app, browser, new_page = test_ui_browser.app, test_ui_browser.browser, test_ui_browser.new_page

TAB_NAMES = {"tab-login": "login", "tab-model": "model", "tab-convert": "convert", "tab-push": "push"}


def _box(page: AppPage, elem_id: str) -> dict[str, float]:
    box = page.el(elem_id).bounding_box()
    assert box is not None, f"#{elem_id} is not displayed"
    return box


def pick(page: AppPage, library: str, name: str) -> None:
    """Choose a model with random weights the way a person does: pick it again if a late search emptied the list.

    A search of the library and one of the typed text can finish in either order (a cold search takes seconds);
    what this module checks comes after the choice, so the choice is made once the searches are done.
    """
    page.tab("tab-model")
    settled = "() => !/searching/.test(document.getElementById('model-results').innerText)"
    page.set("model-library", library)
    page.page.wait_for_function(settled, timeout=120_000)  # the library's own list first (a cold search)
    page.fill("model-search", name)
    for _ in range(3):
        page.page.wait_for_function(settled, timeout=120_000)
        page.choose("model-results", name)
        page.page.wait_for_function(settled, timeout=120_000)
        if page.control("model-results").input_value() == name:
            break
    test_ui_browser.pick_weights(page, name)


def _converted(page: AppPage, token: str, user: str = "alice") -> str:
    log_in(page, token, user)
    pick(page, "timm", TIMM_MODEL)
    verdict, _ = convert(page)
    assert "PASS" in verdict, verdict
    return verdict


# --- item 6 -----------------------------------------------------------------------------------------
def test_status_bar_on_every_tab_follows_the_run(new_page, localhub):
    page = new_page("status")
    page.tab("tab-login")
    bar = page.wait_text("status-bar", r"no model chosen")
    assert re.search(r"not ready: convert a model", bar), bar
    _converted(page, localhub.users.alice)
    bar = page.wait_text("status-bar", r"parity PASS")
    # model · weights origin · precision · verdict · ready to push, or why not
    assert f"timm/{TIMM_MODEL}" in bar and "random weights" in bar and "fp32" in bar, bar
    assert re.search(r"not ready: random weights: tick", bar), bar
    for tab in TABS:  # the same line on every tab, at the top of the page
        page.tab(tab)
        expect(page.el("status-bar")).to_be_visible()
        assert "parity PASS" in page.text("status-bar")
    page.tab("tab-push")
    page.set("push-allow-random", True)
    page.wait_text("status-bar", r"· ready to push")
    # Sticky: scrolled to the bottom of the longest tab, the bar is still at the top of the window.
    page.page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    page.page.wait_for_function("() => window.scrollY > 300")
    top = _box(page, "status-bar")["y"]
    assert 0 <= top < 60, f"the status bar scrolled away (its top is at {top} px)"
    # A form that no longer matches the run says so, on whatever tab the visitor is.
    page.page.evaluate("() => window.scrollTo(0, 0)")
    page.tab("tab-convert")
    page.set("convert-precision", "fp16")
    bar = page.wait_text("status-bar", r"form has changed since this run")
    assert "fp32" in bar, bar
    page.set("convert-precision", "fp32")
    page.wait_text("status-bar", r"· ready to push$")
    page.assert_no_traceback()

    # The "after" screenshots of every tab (the Convert tab after a passing run is the README's picture).
    for tab in TABS:
        page.tab(tab)
        page.screenshot(f"after-{TAB_NAMES[tab]}.png")
    assert (SCREENSHOTS / "after-convert.png").stat().st_size > 10_000  # docs/screenshot.png is a copy of it


# --- item 9 -----------------------------------------------------------------------------------------
def test_push_result_stands_by_the_button_and_the_diff_is_collapsed(new_page, localhub):
    page = new_page("push-layout")
    _converted(page, localhub.users.alice)
    repo = f"ui-layout-{uuid.uuid4().hex[:8]}"
    page.tab("tab-push")
    page.set("push-namespace", "alice")
    page.set("push-name", repo)
    if page.page.locator("#push-allow-random").count():  # random weights need the confirmation (item 1)
        page.set("push-allow-random", True)
    page.click("push-dry-run")
    page.wait_text("push-plan", r"model\.safetensors")
    plan = page.el("push-plan")
    summary = plan.locator("summary").filter(has_text=re.compile("Card diff"))
    expect(summary).to_be_visible()
    diff = plan.locator("pre, code").filter(has_text=re.compile(r"^\+", re.M)).first
    expect(diff).to_be_attached()
    expect(diff).to_be_hidden()  # collapsed until the visitor opens it
    page.click("push-button")
    page.wait_text("push-result", r"pushed", timeout=180_000)
    page.wait_text("push-verification", r"passed", timeout=120_000)
    button, shown = _box(page, "push-button"), _box(page, "push-result")
    # The result is beside the button (same band of the page), above the long plan.
    assert abs(shown["y"] - button["y"]) < 150, (button, shown)
    assert shown["y"] < _box(page, "push-plan")["y"], "the push result sits under the dry-run plan"
    summary.click()
    expect(diff).to_be_visible()
    page.assert_no_traceback()
    page.screenshot("after-push-result.png")
    assert HfApi(endpoint=localhub.url, token=localhub.users.alice).repo_exists(f"alice/{repo}")


# --- item 11 ----------------------------------------------------------------------------------------
def test_a_reload_keeps_the_model_the_run_and_the_card(new_page, localhub):
    page = new_page("reload")
    _converted(page, localhub.users.alice)
    page.tab("tab-push")
    words = f"Reload check {uuid.uuid4().hex[:6]}."
    page.set("card-description", words)
    page.set("card-tags", "kept-after-reload")
    page.set("card-license", "other")
    page.set("card-license-name", "reload-licence")
    page.wait_text("card-preview", r"license_name: reload-licence", timeout=15_000)
    page.wait_text("card-preview", re.escape(words), timeout=15_000)
    page.page.reload()
    expect(page.page.locator("#tab-login")).to_be_attached(timeout=30_000)

    # The run is back: the verdict and the files, the status bar, and the login (the token stays on the server).
    page.tab("tab-convert")
    assert "PASS" in page.wait_text("parity-verdict", r"PASS", timeout=30_000)
    assert "model.safetensors" in page.text("export-files")
    page.wait_text("status-bar", rf"timm/{TIMM_MODEL}.*parity PASS")
    page.wait_text("login-status", r"\balice\b")
    # The model tab shows the model the run was made from.
    page.tab("tab-model")
    expect(page.control("model-results")).to_have_value(TIMM_MODEL, timeout=30_000)
    page.wait_text("model-facts", re.escape(TIMM_MODEL))
    # The card, as it was typed.
    page.tab("tab-push")
    expect(page.control("card-description")).to_have_value(words)
    expect(page.control("card-tags")).to_have_value("kept-after-reload")
    expect(page.control("card-license")).to_have_value("other")
    expect(page.control("card-license-name")).to_have_value("reload-licence")
    page.wait_text("card-preview", re.escape(words), timeout=15_000)
    stored = page.page.evaluate("() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")
    assert localhub.users.alice not in stored and localhub.users.alice not in page.html()
    # The session still works: a dry run of the restored run.
    page.set("push-namespace", "alice")
    page.set("push-name", f"ui-reload-{uuid.uuid4().hex[:8]}")
    page.set("push-allow-random", True)
    page.click("push-dry-run")
    page.wait_text("push-plan", r"model\.safetensors")
    page.assert_no_traceback()


# --- item 13 ----------------------------------------------------------------------------------------
def test_card_guidance_sections_markdown_editor_and_loaded_eval_rows(new_page, localhub):
    page = new_page("card-guidance")
    _converted(page, localhub.users.alice)
    page.tab("tab-push")
    for name in ("intended_use", "limitations", "training_data", "evaluation"):  # each with its short prompt
        box = page.el("card-" + name.replace("_", "-"))
        assert hubui.SECTION_PROMPTS[name][:40] in box.inner_text(), name
    # Eval rows from the start: an editable table with empty rows to type into.
    rows = page.el("card-eval").locator("[role=gridcell][data-col='0']")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 3, f"the eval table shows {rows.count()} rows"
    # The Markdown beside the form (to its right, level with it), holding the card a push would write.
    form, editor = _box(page, "card-description"), _box(page, "card-markdown")
    assert editor["x"] > form["x"] + form["width"] / 2 and editor["y"] < form["y"] + form["height"], (form, editor)
    markdown = page.wait_text("card-markdown", r"Conversion and parity", timeout=15_000)
    assert "library_name: timm" in markdown

    # "Load existing card" brings back the sections and the eval rows.
    repo = f"ui-card-{uuid.uuid4().hex[:8]}"
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(f"alice/{repo}")
    readme = (
        "---\nlicense: mit\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: image-classification\n"
        "    dataset:\n      type: imagenet-1k\n      name: ImageNet-1k\n    metrics:\n    - type: accuracy\n"
        "      value: 71.3\n---\n# m\n\nOld words.\n\n## Intended use\n\nFor the loading test.\n\n"
        "## Limitations\n\nNot trained.\n"
    )
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=f"alice/{repo}")
    page.set("push-namespace", "alice")
    page.set("push-name", repo)
    page.click("card-load-existing")
    expect(page.control("card-intended-use")).to_have_value("For the loading test.", timeout=30_000)
    expect(page.control("card-limitations")).to_have_value("Not trained.")
    expect(page.el("card-eval")).to_contain_text("accuracy")
    expect(page.el("card-eval")).to_contain_text("71.3")
    # The raw Markdown, edited, goes into the form (what a push writes is the form's value).
    page.wait_text("card-markdown", r"For the loading test", timeout=15_000)
    edited = page.control("card-markdown").input_value().replace("Not trained.", "Edited in the Markdown box.")
    page.fill("card-markdown", edited)
    expect(page.control("card-markdown")).to_have_value(edited)
    page.click("card-markdown-apply")
    expect(page.control("card-limitations")).to_have_value("Edited in the Markdown box.", timeout=30_000)
    page.wait_text("card-preview", r"Edited in the Markdown box", timeout=15_000)
    page.assert_no_traceback()
    page.screenshot("after-card-guidance.png")


# --- item 2 -----------------------------------------------------------------------------------------
def test_card_fields_follow_the_chosen_model(new_page, localhub):
    page = new_page("card-follows")
    log_in(page, localhub.users.alice, "alice")
    pick(page, "open_clip", OPEN_CLIP_MODEL)
    page.tab("tab-push")
    expect(page.control("card-pipeline-tag")).to_have_value("zero-shot-image-classification", timeout=30_000)
    page.wait_text("card-defaults-note", r"Filled from the model")
    pick(page, "timm", TIMM_MODEL)
    page.tab("tab-push")
    expect(page.control("card-pipeline-tag")).to_have_value("image-classification", timeout=30_000)
    expect(page.page.locator("#card-license-name")).to_be_hidden()  # asked for with the licence "other" only
    # A tag whose licence the Hub has no identifier for: "other", its name filled and shown, a box for the link.
    pick(page, "timm", "mobileone_s0")
    _choose_tag(page, "apple_in1k")
    page.tab("tab-push")
    expect(page.control("card-license")).to_have_value("other", timeout=30_000)
    expect(page.control("card-license-name")).to_have_value("mobileone-license")
    expect(page.control("card-license-link")).to_be_visible()
    page.wait_text("card-defaults-note", r"mobileone-license")
    page.choose("card-license", "mit")
    expect(page.page.locator("#card-license-name")).to_be_hidden(timeout=15_000)
    page.assert_no_traceback()


def _choose_tag(page: AppPage, tag: str) -> None:
    """Pick ``tag`` in the tag box, whatever its label says of this Hub ("apple_in1k (not on this Hub)")."""
    page.tab("tab-model")
    box = page.el("model-tag").locator("input[role=combobox]")
    expect(box).to_be_enabled(timeout=60_000)
    box.blur()
    box.click()
    box.fill(tag)
    options = page.el("model-tag").locator("[role=option]")
    options.filter(has_text=re.compile(rf"^\W*{re.escape(tag)}\b")).first.click()
    expect(box).to_have_value(re.compile(rf"^{re.escape(tag)}\b"))


# --- the pieces behind them, without a browser ------------------------------------------------------
def test_session_store_resumes_by_key_and_closes_what_is_not_resumed(tmp_path):
    store = SessionStore(keep_s=3600)
    session = Session(scratch_root=tmp_path)
    folder = session.new_run_dir("tab1").parent
    key = store.register(session, "tab1")
    assert len(key) >= 40 and store.resume("not-the-key", "tab2") is None
    assert store.detach("tab1") is True  # the reload: tab1 goes away...
    assert store.resume(key, "tab2") is session and session.tabs == 2  # ...and tab2 takes the session up
    assert folder.exists(), "a resumable session's folder went with the old tab"
    close_session(session)  # gradio drops tab1's state (an hour later): tab2 still holds the session
    assert not session.closed and folder.exists()
    # tab1's late unload (it can come after tab2 resumed) neither detaches the session tab2 holds nor lets the
    # app remove the folder: it is the session's (True: keep it).
    assert store.detach("tab1") is True and session.detached_at is None and folder.exists()
    close_session(session)
    assert session.closed and not folder.exists() and store.resume(key, "tab3") is None

    expired = SessionStore(keep_s=-1)  # every detached session is past its time
    other = Session(scratch_root=tmp_path)
    other_folder = other.new_run_dir("tab4").parent
    other_key = expired.register(other, "tab4")
    assert expired.detach("tab4") is True
    assert other.closed and not other_folder.exists() and expired.resume(other_key, "tab5") is None


def test_status_line_before_any_run_says_what_to_do():
    fresh = status_bar.status_markdown(Session(), status_bar.StatusForm("timm", "resnet18", "a1_in1k", None, "fp16"))
    assert fresh.startswith("**timm/resnet18** · pretrained tag a1\\_in1k · fp16 · parity not run · not ready: convert")
    stopped = Session(runs=1)
    line = status_bar.status_markdown(stopped, status_bar.StatusForm("timm", "resnet18", None, "/x/my.pth", "fp32"))
    assert "checkpoint my.pth" in line and "/x/" not in line
    assert line.endswith("not ready: the last run stopped before parity finished: convert again to push")
    hub = status_bar.status_markdown(Session(), status_bar.StatusForm("timm", "resnet18", "hf-hub:alice/r18@v2"))
    assert "· Hub repo alice/r18 at v2 ·" in hub, hub
    nothing = status_bar.status_markdown(Session(), status_bar.StatusForm("timm", None, "(random weights)"))
    assert nothing.startswith("no model chosen · fp32 · parity not run · not ready: convert a model"), nothing
