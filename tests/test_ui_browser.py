"""The Gradio app in a real headless Chromium, against the session's local Hub.

`hubui app` runs in a subprocess (module fixture) with ``HF_ENDPOINT`` at the local Hub and no server
token, so every browser session starts logged out. Each test drives the page only through the app's
elem_id contract (see ``_browser.py``), then checks on the Hub itself, with huggingface_hub, that what
the page claims really happened. Screenshots go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _browser import OUTPUT, AppPage, AppServer, launch_chromium, start_app
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from playwright.sync_api import Browser, sync_playwright

TIMM_MODEL = "test_resnet"  # a few k parameters, 160 px: the whole flow in seconds on 2 cores
OPEN_CLIP_MODEL = "ViT-S-32-alt"  # the smallest open_clip config
RANDOM = "(random weights)"
EXPORT_FILES = {
    "timm": ("config.json", "model.safetensors"),
    "open_clip": ("open_clip_config.json", "open_clip_model.safetensors"),
}
LICENSE = "apache-2.0"

TABS = ("tab-login", "tab-model", "tab-convert", "tab-push")
CONTRACT = {
    "tab-login": ["login-token", "login-button", "logout-button", "login-status"],
    "tab-model": [
        "model-library",
        "model-search",
        "model-results",
        "model-tag",
        "model-checkpoint",
        "model-facts",
        "model-error",
    ],
    "tab-convert": [
        "convert-precision",
        "convert-tolerance",
        "convert-images",
        "convert-run",
        "convert-cancel",
        "parity-table",
        "parity-progress",
        "parity-plot",
        "parity-verdict",
        "export-files",
    ],
    "tab-push": [
        "card-license",
        "card-language",
        "card-tags",
        "card-datasets",
        "card-base-model",
        "card-pipeline-tag",
        "card-description",
        "card-usage",
        "card-citation",
        "card-eval",
        "card-preview",
        "card-load-existing",
        "push-namespace",
        "push-name",
        "push-private",
        "push-branch",
        "push-create-pr",
        "push-message",
        "push-override",
        "push-dry-run",
        "push-plan",
        "push-button",
        "push-result",
        "push-verification",
    ],
}
DONE = r"PASS|FAIL|CANCELLED"


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(localhub) -> Iterator[AppServer]:
    server = start_app(localhub.url, OUTPUT / "logs" / "ui-app.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser, app: AppServer, request) -> Iterator[Callable[[str], AppPage]]:
    """Open the app in a fresh browser context (its own cookies and gradio session) per call."""
    contexts = []
    pages: list[AppPage] = []

    def open_page(name: str) -> AppPage:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = AppPage(context.new_page(), name)
        page.page.set_default_timeout(30_000)
        pages.append(page)
        return page.open(app.url)

    yield open_page
    for page in pages:  # the last state of every page, for a failing run
        with contextlib.suppress(Exception):  # a closed page has nothing to show
            page.screenshot(f"last-{request.node.name}-{page.name}.png")
    for context in contexts:
        context.close()


def _api(token: str, localhub) -> HfApi:
    return HfApi(endpoint=localhub.url, token=token)


# --- flow steps (each one the way a person does it) ---------------------------------------------------
def log_in(page: AppPage, token: str, user: str) -> str:
    page.tab("tab-login")
    page.fill("login-token", token)
    page.click("login-button")
    status = page.wait_text("login-status", rf"\b{user}\b")
    page.assert_no_traceback()
    return status


def pick_model(page: AppPage, library: str, search: str, name: str, tag: str = RANDOM) -> str:
    page.tab("tab-model")
    page.set("model-library", library)
    page.fill("model-search", search, submit=True)
    page.choose("model-results", name)
    return pick_weights(page, name, tag)


def pick_weights(page: AppPage, name: str, tag: str = RANDOM) -> str:
    """Pick the weights once the architecture's own tags are shown (its facts with them), as a person does: the
    Hub is asked which tags it can serve, and the default it picks replaces whatever the old list offered."""
    page.wait_text("model-facts", re.escape(name), timeout=60_000)
    page.choose("model-tag", tag)
    facts = page.wait_text("model-facts", r"random weights" if tag == RANDOM else re.escape(tag), timeout=60_000)
    page.assert_no_traceback()
    return facts


def start_conversion(page: AppPage) -> None:
    """Click Run with a recorder on the parity widgets (see :meth:`AppPage.watch`)."""
    page.tab("tab-convert")
    page.watch(["parity-progress", "parity-table", "parity-verdict"])
    page.click("convert-run")


def finish_conversion(page: AppPage, timeout: float = 180_000) -> tuple[str, list[dict]]:
    """Wait for the verdict; return it and every distinct state the parity widgets went through."""
    verdict = page.wait_text("parity-verdict", DONE, timeout=timeout)
    page.assert_no_traceback()
    return verdict, page.states()


def convert(page: AppPage) -> tuple[str, list[dict]]:
    start_conversion(page)
    return finish_conversion(page)


def fill_card(page: AppPage, tag: str, description: str) -> None:
    page.tab("tab-push")
    page.set("card-license", LICENSE)
    page.set("card-tags", [tag])
    page.set("card-description", description)


def start_push(page: AppPage, namespace: str, name: str, create_pr: bool) -> None:
    page.tab("tab-push")
    page.set("push-namespace", namespace)
    page.set("push-name", name)
    page.set("push-create-pr", create_pr)
    page.set("push-allow-random", True)  # these models have seeded random weights: confirmed, as a user would
    page.click("push-button")


def push_link(page: AppPage, pattern: str, timeout: float = 180_000) -> str:
    """Wait for the push result and return the first link in it whose href matches ``pattern``."""
    page.wait_text("push-result", r"pushed|nothing changed", timeout=timeout)
    hrefs = page.el("push-result").locator("a").evaluate_all("as => as.map(a => a.href)")
    found = [h for h in hrefs if re.search(pattern, h)]
    assert found, f"{page.name}: no link matching {pattern!r} in #push-result; links: {hrefs}"
    return found[0]


def intermediate_states(states: list[dict]) -> list[dict]:
    """States where the progress says ``batch k/N`` (N >= 2, k < N) and no verdict is shown yet."""
    live = []
    for s in states:
        m = re.search(r"batch\s+(\d+)\s*/\s*(\d+)", s.get("parity-progress") or "", re.I)
        partial = m is not None and int(m.group(2)) >= 2 and int(m.group(1)) < int(m.group(2))
        if partial and not re.search(DONE, s.get("parity-verdict") or ""):
            live.append(s)
    return live


def assert_live_parity(states: list[dict]) -> None:
    live = intermediate_states(states)
    progress = [s.get("parity-progress") for s in states]
    assert live, f"never saw a partial parity state ('batch k/N', N >= 2, no verdict yet); progress went {progress}"
    assert any(re.search(r"batch\s+1\s*/", s["parity-progress"], re.I) for s in live), progress
    assert any(s["parity-table:rows"] >= 1 for s in live), "the parity table had no rows before the verdict"


def assert_plot_drawn(page: AppPage) -> None:
    """The parity plot is drawn (gradio's bundled Vega-Lite, offline) with its points: SVG paths."""
    marks = page.el("parity-plot").locator("svg path").count()
    assert marks > 50, f"#parity-plot draws {marks} marks; it says {page.text('parity-plot')!r}"


def assert_pr_on_hub(localhub, cache: Path, repo: str, pr_url: str, tag: str, description: str, library: str) -> None:
    """The PR page answers; the files are on refs/pr/N; main only has what a new repo has; the card is edited."""
    assert pr_url.startswith(localhub.url + f"/{repo}/discussions/"), pr_url
    number = int(pr_url.rstrip("/").rsplit("/", 1)[1])
    assert httpx.get(pr_url, timeout=30).status_code == 200
    api = _api(localhub.users.alice, localhub)
    revision = f"refs/pr/{number}"
    assert revision in [ref.ref for ref in api.list_repo_refs(repo, include_pull_requests=True).pull_requests]
    pr_files = set(api.list_repo_files(repo, revision=revision))
    assert {"README.md", *EXPORT_FILES[library]} <= pr_files, pr_files
    assert api.list_repo_files(repo) == [".gitattributes"], "the PR push changed main"
    readme = hf_hub_download(repo, "README.md", revision=revision, token=localhub.users.alice, cache_dir=cache)
    card = ModelCard.load(readme)
    assert card.data.license == LICENSE
    assert tag in (card.data.tags or [])
    assert card.data.library_name == library
    assert description in card.text


# --- tests ------------------------------------------------------------------------------------------
def test_every_tab_renders_with_the_contract_ids(new_page, localhub):
    page = new_page("alice")
    log_in(page, localhub.users.alice, "alice")
    missing = {}
    for tab in TABS:
        page.tab(tab)
        panel = page.page.locator(f"#{tab}")
        absent = [i for i in CONTRACT[tab] if panel.locator(f"#{i}").count() != 1]
        if absent:
            missing[tab] = absent
        page.screenshot(f"{tab}.png")
    # OAuth sign-in only exists in OAuth mode (a Space); `hubui app` is single-user mode.
    assert page.page.locator("#login-oauth").count() == 0
    assert not missing, f"elem_ids missing from their tab: {missing}"
    # The page is styled (gradio's own CSS loaded, nothing from a CDN needed): the Run button is a
    # real, visible button with a size.
    page.tab("tab-convert")
    box = page.el("convert-run").bounding_box()
    assert box and box["width"] > 40 and box["height"] > 20
    assert page.external == [], "the page asked for something outside the app (offline it cannot load)"
    assert page.js_errors == []
    page.assert_no_traceback()


def test_login_status_and_logout(new_page, localhub):
    page = new_page("login")
    status = log_in(page, localhub.users.alice, "alice")
    assert "team" in status and re.search(r"can write", status, re.I), status
    # Nothing of the login stays in the browser: gradio's run history kept each event's inputs, the token
    # box's among them, in localStorage.
    page.page.wait_for_timeout(1000)  # gradio records a run when its event ends
    stored = page.page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert localhub.users.alice not in stored, "the token was written into the browser's storage"
    assert "run-history" not in stored, stored[:200]
    page.click("logout-button")
    page.wait_text("login-status", r"logged out|not logged in")
    assert "alice" not in page.text("login-status")

    status = log_in(page, localhub.users.reader, "reader")
    assert re.search(r"read-only", status, re.I), status
    for token in (localhub.users.alice, localhub.users.reader):
        assert token not in page.html()


def test_timm_flow_live_parity_card_and_pr(new_page, localhub, fresh_cache):
    page = new_page("timm")
    log_in(page, localhub.users.alice, "alice")
    page.screenshot("timm-1-login.png")
    pick_model(page, "timm", TIMM_MODEL, TIMM_MODEL)
    page.screenshot("timm-2-model.png")

    # 8 shipped/synthetic inputs in at least 4 batches, so there are states in between.
    verdict, states = convert(page)
    assert "PASS" in verdict, verdict
    assert_live_parity(states)
    assert page.el("parity-table").locator("[role=gridcell][data-col='0']").count() >= 1
    assert "model.safetensors" in page.text("export-files"), page.text("export-files")
    assert_plot_drawn(page)
    page.screenshot("timm-3-convert.png")

    repo_name = f"ui-timm-{uuid.uuid4().hex[:8]}"
    tag = "hubui-browser-test"
    description = f"Browser-test model {repo_name}, converted by hubui."
    fill_card(page, tag, description)
    page.set("push-namespace", "alice")
    page.set("push-name", repo_name)
    page.set("push-create-pr", True)
    # The preview follows the form: the edited description and the repo the card will live in.
    page.wait_text("card-preview", re.escape(description), timeout=15_000)
    page.wait_text("card-preview", re.escape(f"alice/{repo_name}"), timeout=15_000)
    # The dry run shows the plan and uploads nothing (random weights, confirmed as a user would).
    page.set("push-allow-random", True)
    page.click("push-dry-run")
    page.wait_text("push-plan", r"model\.safetensors")
    assert not _api(localhub.users.alice, localhub).repo_exists(f"alice/{repo_name}")

    start_push(page, "alice", repo_name, create_pr=True)
    pr_url = push_link(page, r"/discussions/\d+$")
    page.wait_text("push-verification", r"passed", timeout=120_000)
    page.assert_no_traceback()
    page.screenshot("timm-4-push.png")
    assert_pr_on_hub(localhub, fresh_cache, f"alice/{repo_name}", pr_url, tag, description, "timm")


def test_open_clip_flow_live_parity_card_and_pr(new_page, localhub, fresh_cache):
    page = new_page("open_clip")
    log_in(page, localhub.users.alice, "alice")
    pick_model(page, "open_clip", OPEN_CLIP_MODEL, OPEN_CLIP_MODEL)
    verdict, states = convert(page)
    assert "PASS" in verdict, verdict
    assert_live_parity(states)
    assert "open_clip_model.safetensors" in page.text("export-files"), page.text("export-files")
    assert_plot_drawn(page)
    page.screenshot("open_clip-3-convert.png")

    repo_name = f"ui-clip-{uuid.uuid4().hex[:8]}"
    tag = "hubui-browser-test"
    description = f"Browser-test open_clip model {repo_name}."
    fill_card(page, tag, description)
    start_push(page, "alice", repo_name, create_pr=True)
    pr_url = push_link(page, r"/discussions/\d+$")
    page.wait_text("push-verification", r"passed", timeout=180_000)
    page.assert_no_traceback()
    page.screenshot("open_clip-4-push.png")
    assert_pr_on_hub(localhub, fresh_cache, f"alice/{repo_name}", pr_url, tag, description, "open_clip")


def test_error_paths_show_readable_messages(new_page, localhub):
    page = new_page("errors")
    # A token the Hub rejects.
    page.tab("tab-login")
    page.fill("login-token", "hf_" + uuid.uuid4().hex)
    since = page.mark()
    page.click("login-button")
    message = page.wait_message(["login-status"], r"reject|invalid", since)
    assert "token" in message.lower(), message
    assert not re.search(r"logged in as", page.text("login-status"), re.I)
    page.assert_no_traceback()
    page.close_toasts()

    # A model that does not exist.
    log_in(page, localhub.users.bob, "bob")
    page.tab("tab-model")
    page.set("model-library", "timm")
    since = page.mark()
    page.watch(["model-error"])
    page.fill("model-search", "no_such_model_zz", submit=True)
    # the message for the whole name (a search for a prefix may answer first)
    message = page.wait_message(["model-error"], r"(no .*match|unknown|not found).*no_such_model_zz(?!z)", since)
    page.assert_no_traceback()


def test_push_to_a_namespace_the_user_cannot_write_is_refused(new_page, localhub):
    # bob is not in the org 'team' (alice is): the push is refused with a message and nothing is created.
    page = new_page("bob-team")
    log_in(page, localhub.users.bob, "bob")
    pick_model(page, "timm", TIMM_MODEL, TIMM_MODEL)
    verdict, _ = convert(page)
    assert "PASS" in verdict
    repo = f"team/ui-denied-{uuid.uuid4().hex[:8]}"
    page.tab("tab-push")
    page.choose("push-namespace", "team", custom=True)
    page.set("push-name", repo.split("/")[1])
    page.set("push-allow-random", True)
    since = page.mark()
    page.click("push-button")
    message = page.wait_message(["push-result"], r"cannot push|not allowed|forbidden|no write", since)
    assert "team" in message, message
    page.assert_no_traceback()
    assert not _api(localhub.users.alice, localhub).repo_exists(repo)


def test_two_users_at_once_stay_apart(new_page, localhub, record_property):
    users = {"alice": localhub.users.alice, "bob": localhub.users.bob}
    pages = {name: new_page(name) for name in users}
    secrets = {f"{name}'s token": token for name, token in users.items()}
    for name, page in pages.items():  # from now on, every change of each page is checked
        page.forbid(words={f"the name {other!r}": other for other in users if other != name}, secrets=secrets)

    def assert_apart(step: str) -> None:
        for name, page in pages.items():
            leaks = page.leaks()
            for leak in leaks:  # never print a token, even in a failure
                for label, token in secrets.items():
                    leak["context"] = leak["context"].replace(token, f"<{label}>")
            assert leaks == [], f"{name}'s page, by the end of {step}, showed: {leaks}"

    for name, page in pages.items():
        log_in(page, users[name], name)
    assert_apart("login")
    for page in pages.values():
        pick_model(page, "timm", TIMM_MODEL, TIMM_MODEL)
    for page in pages.values():  # both runs start before either is awaited
        start_conversion(page)
    spans = {}
    for name, page in pages.items():
        verdict, states = finish_conversion(page)
        assert "PASS" in verdict
        done = [s["t"] for s in states if re.search(DONE, s.get("parity-verdict") or "")]
        spans[name] = (states[0]["t"], done[0] if done else states[-1]["t"])
    # Informational (timing-dependent, so not asserted): were both conversions in flight at once?
    (a0, a1), (b0, b1) = spans["alice"], spans["bob"]
    record_property("conversions_overlapped", a0 < b1 and b0 < a1)
    print(f"conversion spans, click to verdict (ms): {spans}; overlapped: {a0 < b1 and b0 < a1}")
    assert_apart("convert")

    repos = {name: f"{name}/ui-both-{uuid.uuid4().hex[:8]}" for name in users}
    for name, page in pages.items():
        fill_card(page, "hubui-browser-test", f"{name}'s model")
    for name, page in pages.items():  # both pushes start before either is awaited
        start_push(page, name, repos[name].split("/")[1], create_pr=False)
    for name, page in pages.items():
        link = push_link(page, r"/commit/")
        assert f"/{repos[name]}/" in link, link
        page.wait_text("push-verification", r"passed", timeout=120_000)
        page.assert_no_traceback()
    assert_apart("push")

    for name, repo in repos.items():  # every commit, the upload first, is authored by its own user
        commits = _api(users[name], localhub).list_repo_commits(repo)
        assert commits[0].authors == [name], (repo, [c.authors for c in commits])
        assert {a for c in commits for a in c.authors} == {name}, (repo, [c.authors for c in commits])
