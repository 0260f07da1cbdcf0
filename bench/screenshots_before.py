"""Before screenshots for issue 20: the app at an older commit, in Chromium, every tab, after a run and a dry run.

Run from the repository root (a script, not a test)::

    git worktree add /tmp/hubui-before 0815fd0
    .venv/bin/python bench/screenshots_before.py /tmp/hubui-before

It writes ``test-output/screenshots/before-<tab>.png``; the "after" ones come from tests/test_ui_status.py.
"""

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MAIN = Path(__file__).resolve().parent.parent
OLD = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hubui-before").resolve()
sys.path.insert(0, str(MAIN / "tests"))
from _browser import AppPage, free_port, launch_chromium  # noqa: E402
from _hubproc import start_hub  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

OUT = MAIN / "test-output" / "screenshots"
OUT.mkdir(parents=True, exist_ok=True)
token = secrets.token_hex(16)
root = Path(tempfile.mkdtemp(prefix="u1-before-hub-"))
hub = start_hub(root / "hub", [f"alice:{token}:write"])
port = free_port()
env = {
    **os.environ,
    "HF_ENDPOINT": hub.url,
    "HF_HUB_DISABLE_XET": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONUNBUFFERED": "1",
    "PYTHONPATH": str(OLD),
}
env.pop("HF_TOKEN", None)
code = (
    f"import sys; sys.path.insert(0, {str(OLD)!r}); import hubui; "
    f"assert hubui.__file__.startswith({str(OLD)!r}), hubui.__file__; "
    f"print('hubui from', hubui.__file__, flush=True); from hubui.cli import main; main(['app', '--port', '{port}'])"
)
log = open(root / "app.log", "w")  # noqa: SIM115 - open for the app's whole life, closed at the end
proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=OLD)
try:
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit((root / "app.log").read_text())
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    print((root / "app.log").read_text()[:300])
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = AppPage(context.new_page(), "before").open(url)
        page.page.set_default_timeout(60_000)
        page.tab("tab-login")
        page.fill("login-token", token)
        page.click("login-button")
        page.wait_text("login-status", r"alice")
        page.page.screenshot(path=str(OUT / "before-login.png"), full_page=True)
        page.tab("tab-model")
        page.set("model-library", "timm")
        page.fill("model-search", "test_resnet", submit=True)
        page.choose("model-results", "test_resnet")
        page.wait_text("model-facts", "test_resnet")
        page.page.screenshot(path=str(OUT / "before-model.png"), full_page=True)
        page.tab("tab-convert")
        page.click("convert-run")
        page.page.wait_for_function(
            "() => /ERROR|PASS|FAIL/.test(document.getElementById('parity-verdict').innerText)", timeout=300_000
        )
        page.page.screenshot(path=str(OUT / "before-convert-first-run-defaults.png"), full_page=True)
        page.close_toasts()
        page.tab("tab-model")
        page.choose("model-tag", "(random weights)")
        page.page.wait_for_timeout(1000)
        page.tab("tab-convert")
        page.click("convert-run")
        page.page.wait_for_function(
            "() => /PASS|FAIL/.test(document.getElementById('parity-verdict').innerText)", timeout=300_000
        )
        page.page.screenshot(path=str(OUT / "before-convert.png"), full_page=True)
        page.tab("tab-push")
        page.set("push-namespace", "alice")
        page.set("push-name", "before-shot")
        page.click("push-dry-run")
        page.wait_text("push-plan", r"model\.safetensors")
        page.page.screenshot(path=str(OUT / "before-push.png"), full_page=True)
        box = page.el("push-result").bounding_box()
        button = page.el("push-button").bounding_box()
        print("before: push-button y", button and button["y"], "push-result y", box and box["y"])
        browser.close()
finally:
    proc.terminate()
    proc.wait(timeout=30)
    hub.stop()
print("done", sorted(p.name for p in OUT.glob("before-*")))
