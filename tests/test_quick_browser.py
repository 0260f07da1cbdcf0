"""The Quick fix tab in real Chromium: paste a repo id, get the PR link; the PR is then checked on the Hub itself.

``hubui app`` runs in a subprocess with ``HF_ENDPOINT`` at the session's local Hub (``_browser.start_app``); the
page is driven only through the elem_id contract of :mod:`hubui.ui.quick`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
import timm
import torch
from _browser import OUTPUT, AppPage, AppServer, launch_chromium, start_app
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="module")
def app(localhub) -> Iterator[AppServer]:
    server = start_app(localhub.url, OUTPUT / "logs" / "ui-quick.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def test_quick_tab_proposes_the_pr_and_links_it(browser, app, localhub, alice, repo_name, tmp_path, fresh_cache):
    repo = f"alice/{repo_name}"
    torch.manual_seed(21)
    original = timm.create_model("test_resnet", pretrained=False).eval()
    timm.models.save_for_hf(original, str(tmp_path / "alice"), safe_serialization=False)
    alice.create_repo(repo)
    alice.upload_folder(repo_id=repo, folder_path=str(tmp_path / "alice"))
    main_before = alice.model_info(repo).sha

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = AppPage(context.new_page(), "quick")
        page.page.set_default_timeout(30_000)
        page.open(app.url)
        page.tab("tab-login")
        page.fill("login-token", localhub.users.bob)
        page.click("login-button")
        page.wait_text("login-status", r"\bbob\b")

        page.tab("tab-quick")
        page.fill("quick-repo", repo)
        page.click("quick-run")
        shown = page.wait_text("quick-result", r"Pull request|⚠", timeout=300_000)
        page.screenshot("quick-tab-pr.png")
        page.assert_no_traceback()
        assert "Pull request" in shown and "⚠" not in shown, shown
        assert "pytorch_model.bin" in shown and "passed" in shown, shown
        # One line per stage, its latest news: "verify: … batch 8/8" replaced "… batch 7/8" (it was 8 lines of them).
        stages = [line.split(":", 1)[0] for line in page.text("quick-progress").splitlines() if line.strip()]
        assert len(stages) == len(set(stages)) and "verify" in stages, page.text("quick-progress")
        assert tempfile.gettempdir() not in page.text("quick-progress") + page.text("quick-result")  # no server paths
        link = page.el("quick-result").locator("a").first.get_attribute("href")
    finally:
        context.close()

    (pr,) = [d for d in alice.get_repo_discussions(repo) if d.is_pull_request]
    assert link == f"{localhub.url}/{repo}/discussions/{pr.num}"
    assert alice.model_info(repo).sha == main_before
    rebuilt = timm.create_model(f"hf-hub:{repo}@refs/pr/{pr.num}", pretrained=True, cache_dir=str(fresh_cache))
    pixels = torch.randn((1, *original.pretrained_cfg["input_size"]), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(rebuilt.eval()(pixels), original(pixels))
