"""Harness for the browser tests: Debian's Chromium through Playwright, the app in a subprocess, and
helpers that drive gradio 6 components by the app's ``elem_id`` contract.

gradio puts an ``elem_id`` on the component's wrapper element, so every helper finds the real
control inside ``#id`` (the ``<input>``, ``<textarea>``, the combobox, the radio labels...). A tab's
``elem_id`` is on its panel (``div[role=tabpanel]#tab-x``); its button is the ``[role=tab]`` whose
``aria-controls`` names that panel.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"

# Root needs --no-sandbox; without the background-networking flags Chromium tries the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_executable() -> str:
    """The Chromium binary to drive: ``HUBUI_CHROMIUM`` or Debian's ``/usr/bin/chromium``.

    A missing browser fails the test (never skips it): ``scripts/test.sh`` installs it.
    """
    wanted = os.environ.get("HUBUI_CHROMIUM", "/usr/bin/chromium")
    found = wanted if os.path.isabs(wanted) else shutil.which(wanted)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        pytest.fail(
            f"Chromium not found at {wanted!r}: the browser tests drive a real Chromium. Install Debian's "
            "(`apt-get install chromium`; `bash scripts/test.sh` does it when missing) or set HUBUI_CHROMIUM "
            "to a Chromium binary. Playwright's own browser download is not used.",
            pytrace=False,
        )
    return found


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the app --------------------------------------------------------------------------------------
@dataclass
class AppServer:
    """``python -m hubui app`` running against a Hub, with its output in a log file."""

    url: str
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_app(hub_url: str, log: Path, timeout: float = 120.0) -> AppServer:
    """Start ``hubui app`` on a free port with ``HF_ENDPOINT=hub_url`` and no server token.

    Returns once ``GET /`` answers 200; fails the test with the app's log if it never does.
    """
    port = free_port()
    env = {
        **os.environ,
        "HF_ENDPOINT": hub_url,
        "HF_HUB_DISABLE_XET": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):  # sessions must start logged out
        env.pop(var, None)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubui", "app", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    app = AppServer(f"http://127.0.0.1:{port}", log, proc)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"`hubui app` exited with code {proc.returncode}:\n{app.log_tail()}", pytrace=False)
        try:
            if httpx.get(app.url + "/", timeout=5).status_code == 200:
                return app
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            app.stop()
            pytest.fail(f"`hubui app` did not answer within {timeout:.0f} s:\n{app.log_tail()}", pytrace=False)
        time.sleep(0.3)


# --- one browser page of the app ------------------------------------------------------------------
# A component's visible text: its innerText plus the values of its text boxes (a Textbox's value is
# not part of innerText).
_READ_TEXT = """(e) => {
  let t = e.innerText;
  for (const i of e.querySelectorAll('textarea, input[type=text], input:not([type])')) {
    if (i.value) t += '\\n' + i.value;
  }
  return t.trim();
}"""

# Snapshots of the live parity state, taken by a MutationObserver on every DOM change, so that a
# state that lasts only a few milliseconds (one parity batch of a tiny model) is still seen.
_WATCH_JS = (
    """
(ids) => {
  const readText = """
    + _READ_TEXT
    + """;
  const text = (id) => { const e = document.getElementById(id); return e ? readText(e) : null; };
  const rows = (id) => {
    const e = document.getElementById(id);
    if (!e) return 0;
    const cells = e.querySelectorAll('[role=gridcell][data-col="0"]');
    return cells.length || e.querySelectorAll('tbody tr').length;
  };
  window.__hubuiStates = [];
  const take = () => {
    const s = {t: performance.timeOrigin + performance.now()};
    for (const id of ids) { s[id] = text(id); s[id + ':rows'] = rows(id); }
    const last = window.__hubuiStates[window.__hubuiStates.length - 1];
    const key = JSON.stringify(ids.map((id) => [s[id], s[id + ':rows']]));
    if (!last || last.key !== key) { s.key = key; window.__hubuiStates.push(s); }
  };
  if (window.__hubuiObserver) window.__hubuiObserver.disconnect();
  window.__hubuiObserver = new MutationObserver(take);
  const all = {subtree: true, childList: true, characterData: true, attributes: true};
  window.__hubuiObserver.observe(document.body, all);
  take();
}
"""
)

_WAIT_JS = (
    """
([id, source]) => {
  const readText = """
    + _READ_TEXT
    + """;
  const e = document.getElementById(id);
  if (!e) return false;
  if (new RegExp(source, 'is').test(readText(e))) return 'match';
  // gradio marks the outputs of an event that raised with an "Error" badge in their status tracker
  return e.querySelector('[data-testid=status-tracker] .error') ? 'error' : false;
}
"""
)

# Every toast text ever shown, kept after gradio removes the toast (an error toast lives 10 s).
_TOAST_RECORDER = """
(() => {
  window.__hubuiToasts = [];
  const seen = new WeakSet();
  const scan = () => {
    for (const t of document.querySelectorAll('[data-testid=toast-text]')) {
      if (!seen.has(t)) { seen.add(t); window.__hubuiToasts.push(t.innerText.trim()); }
    }
  };
  new MutationObserver(scan).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""


def _quiet(text: str) -> str:
    """A component's text without gradio's status-tracker timer ("queue: 1/1 | processing | 0.3s")."""
    return re.sub(r"^(?:(?:queue: \d+/\d+|processing|[\d./]+s)\s*\|?\s*)+", "", text).strip()


# Watches the whole document on every change and records each pattern that matches its HTML, with some
# context: "never shows X" checked at every moment, not only when the test looks.
_FORBID_JS = """
(patterns) => {
  window.__hubuiLeaks = window.__hubuiLeaks || [];
  const check = () => {
    const html = document.documentElement.outerHTML;
    for (const [label, source] of patterns) {
      const m = new RegExp(source).exec(html);
      if (m && !window.__hubuiLeaks.some((l) => l.label === label)) {
        window.__hubuiLeaks.push({label, context: html.slice(Math.max(m.index - 120, 0), m.index + 60)});
      }
    }
  };
  const all = {subtree: true, childList: true, characterData: true, attributes: true};
  new MutationObserver(check).observe(document, all);
  check();
}
"""


class AppPage:
    """A Playwright page on the app, driven through the elem_id contract."""

    def __init__(self, page: Page, name: str = "page") -> None:
        self.page = page
        self.name = name
        self.external: list[str] = []  # requests to anything but the app (offline, they would fail)
        self.js_errors: list[str] = []  # uncaught exceptions in the page
        page.add_init_script(_TOAST_RECORDER)
        page.on("request", self._on_request)
        page.on("pageerror", lambda exc: self.js_errors.append(str(exc)))

    def _on_request(self, request: Any) -> None:
        host = urlsplit(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
            self.external.append(f"{request.resource_type} {request.url}")

    # navigation
    def open(self, url: str) -> AppPage:
        self.page.goto(url)
        expect(self.page.locator("#tab-login"), "the app has no #tab-login panel").to_be_attached(timeout=30_000)
        return self

    def tab(self, tab_id: str) -> None:
        """Select the tab whose panel is ``#tab_id``."""
        button = self.page.locator(f"button[role=tab][aria-controls='{tab_id}']")
        expect(button, f"no tab button controls #{tab_id}").to_have_count(1)
        button.click()
        expect(self.page.locator(f"#{tab_id}")).to_be_visible()

    # locating
    def el(self, elem_id: str) -> Locator:
        loc = self.page.locator(f"#{elem_id}")
        expect(loc, f"no element with elem_id {elem_id!r}").to_have_count(1)
        return loc

    def control(self, elem_id: str) -> Locator:
        """The text control of a textbox / number / password / dropdown component."""
        return self.el(elem_id).locator("textarea, input:not([type=checkbox]):not([type=radio]):not([type=file])").first

    def kind(self, elem_id: str) -> str:
        """What the component is: dropdown, radio, checkbox, textarea, input, button, or other."""
        return self.el(elem_id).evaluate(
            """(e) => {
              if (e.tagName === 'BUTTON') return 'button';
              if (e.querySelector('input[role=combobox]')) return 'dropdown';
              if (e.querySelector('input[type=radio]')) return 'radio';
              if (e.querySelector('input[type=checkbox]')) return 'checkbox';
              if (e.querySelector('textarea')) return 'textarea';
              if (e.querySelector('input')) return 'input';
              return 'other';
            }"""
        )

    # acting
    def click(self, elem_id: str) -> None:
        loc = self.el(elem_id)
        if loc.evaluate("e => e.tagName") != "BUTTON":
            loc = loc.locator("button").first
        expect(loc, f"#{elem_id} is not enabled").to_be_enabled()
        loc.click()

    def fill(self, elem_id: str, text: str, submit: bool = False) -> None:
        box = self.control(elem_id)
        # gradio 6 fires a Textbox's .input on key presses only (not on Playwright's fill, nor on a paste
        # without keys): fill all but the last character, then type that one like a person.
        if text:
            box.fill(text[:-1])
            box.press_sequentially(text[-1])
        else:
            box.fill("x")
            box.press("Backspace")
        if submit:
            box.press("Enter")
        else:
            box.blur()  # gradio fires .change / .blur; Enter would also fire .submit

    def choose(self, elem_id: str, option: str, timeout: float = 30_000, custom: bool = False) -> None:
        """Pick ``option`` in a gradio 6 dropdown (a combobox: click, type to filter, click the option).

        With ``custom``, a value the dropdown does not offer is typed and entered, as a person would
        (this only sticks when the dropdown allows custom values).
        """
        box = self.el(elem_id).locator("input[role=combobox]")
        expect(box, f"#{elem_id} is not a dropdown").to_have_count(1)
        expect(box, f"dropdown #{elem_id} is not enabled").to_be_enabled(timeout=timeout)
        # gradio opens the list on focus: a box still focused (after Escape, say) stays closed when clicked.
        box.blur()
        box.click()
        box.fill(option)
        item = self.el(elem_id).locator("[role=option]").filter(has_text=re.compile(rf"^\W*{re.escape(option)}$"))
        try:
            expect(item.first).to_be_visible(timeout=5_000 if custom else timeout)
        except AssertionError:
            if custom:
                box.press("Enter")
                box.blur()
                got = box.input_value()
                assert got == option, (
                    f"#{elem_id} does not offer {option!r} and does not take it as a typed value (it shows {got!r})"
                )
                return
            box.fill("")
            offered = self.el(elem_id).locator("[role=option]").all_inner_texts()
            box.press("Escape")
            raise AssertionError(f"#{elem_id} does not offer {option!r}; it offers {offered}") from None
        item.first.click()
        if not self.el(elem_id).locator(".token").count():  # single-select: the box now shows the value
            expect(box).to_have_value(option)

    def add_tags(self, elem_id: str, values: list[str]) -> None:
        """Add free-text values to a multiselect dropdown, or write them comma-separated into a textbox."""
        if self.kind(elem_id) != "dropdown":
            self.fill(elem_id, ", ".join(values))
            return
        box = self.el(elem_id).locator("input[role=combobox]")
        for value in values:
            box.click()
            box.fill(value)
            box.press("Enter")
        box.blur()
        for value in values:
            expect(self.el(elem_id).locator(".token").filter(has_text=value)).to_have_count(1)

    def set(self, elem_id: str, value: Any) -> None:
        """Set a component to ``value`` whatever gradio component it is (per :meth:`kind`)."""
        kind = self.kind(elem_id)
        if kind == "dropdown":
            if self.el(elem_id).locator("input[role=combobox]").get_attribute("aria-multiselectable") == "true":
                self.add_tags(elem_id, list(value) if isinstance(value, list | tuple) else [value])
            else:
                self.choose(elem_id, str(value))
        elif kind == "radio":
            self.el(elem_id).locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(str(value))}\s*$")).click()
            expect(self.el(elem_id).locator(f"input[type=radio][value='{value}']")).to_be_checked()
        elif kind == "checkbox":
            self.el(elem_id).locator("input[type=checkbox]").set_checked(bool(value))
        elif kind in ("textarea", "input"):
            self.fill(elem_id, ", ".join(value) if isinstance(value, list | tuple) else str(value))
        else:
            raise AssertionError(f"#{elem_id} is a {kind}: it cannot be set to {value!r}")

    # reading
    def text(self, elem_id: str) -> str:
        """The component's visible text, text-box values included."""
        return self.el(elem_id).evaluate(_READ_TEXT)

    def wait_text(self, elem_id: str, pattern: str, timeout: float = 60_000) -> str:
        """Wait until ``#elem_id``'s text matches ``pattern`` (a JS regex, case-insensitive); return the text."""
        self.el(elem_id)
        deadline = time.monotonic() + timeout / 1000
        while True:
            left = max(deadline - time.monotonic(), 0.001) * 1000
            try:
                state = self.page.wait_for_function(_WAIT_JS, arg=[elem_id, pattern], timeout=left, polling=100)
            except PlaywrightTimeout:
                raise AssertionError(
                    f"{self.name}: #{elem_id} never matched {pattern!r} in {timeout / 1000:.0f} s; it shows "
                    f"{self.text(elem_id)!r}; toasts so far: {self.toasts_seen()}"
                ) from None
            if state.json_value() == "match":
                return self.text(elem_id)
            # An error badge: give a new event a moment to clear an earlier one's badge, then fail fast.
            self.page.wait_for_timeout(1500)
            if self.page.evaluate(_WAIT_JS, [elem_id, pattern]) == "error":
                raise AssertionError(
                    f"{self.name}: the event behind #{elem_id} failed before it matched {pattern!r}; it shows "
                    f"{self.text(elem_id)!r}; toasts so far: {self.toasts_seen()}"
                )

    def toasts_seen(self) -> list[str]:
        """Every toast text shown on this page so far, also those gradio has already removed."""
        return self.page.evaluate("() => window.__hubuiToasts || []")

    def mark(self) -> int:
        """A point in the page's toast history, for :meth:`wait_message`'s ``since``."""
        return len(self.toasts_seen())

    def wait_message(
        self, elem_ids: list[str], pattern: str, since: int = 0, timeout: float = 30_000, stay: float = 2_000
    ) -> str:
        """Wait until a toast (shown after ``since``) or one of ``elem_ids`` shows text matching ``pattern``,
        and check that it is still there ``stay`` ms later (a message wiped at once is not readable).

        Watch ``elem_ids`` first (:meth:`watch`) to get their history in the failure message.
        """
        rx = re.compile(pattern, re.I | re.S)
        deadline = time.monotonic() + timeout / 1000
        found: str | None = None
        while True:
            seen = self.toasts_seen()[since:] + [self.text(i) for i in elem_ids if self.page.locator(f"#{i}").count()]
            match = next((text for text in seen if rx.search(text)), None)
            if match is not None and found is not None:
                return match
            if match is None and found is not None:
                problem = f"showed {found!r}, then it was gone {stay / 1000:.1f} s later; it shows {seen}"
                break
            if match is not None:
                found = match
                self.page.wait_for_timeout(stay)
                continue
            if time.monotonic() > deadline:
                problem = f"no message matching {pattern!r} on the page; it shows {seen}"
                break
            self.page.wait_for_timeout(200)
        history = [_quiet(s[i]) for s in self.states() for i in elem_ids if s.get(i) is not None]
        history = [h for n, h in enumerate(history) if n == 0 or h != history[n - 1]]
        flashed = next((h for h in history if rx.search(h)), None)
        if found is None and flashed is not None:
            problem = f"{flashed!r} was shown but wiped within 0.2 s; it shows {seen}"
        raise AssertionError(
            f"{self.name}: {problem}" + (f"; what {elem_ids} showed meanwhile, in order: {history}" if history else "")
        )

    def close_toasts(self) -> None:
        for button in self.page.locator("[data-testid=toast-close]").all():
            if button.is_visible():
                button.click()

    def html(self) -> str:
        return self.page.content()

    def assert_no_traceback(self) -> None:
        content = self.html()
        assert "Traceback" not in content, f"{self.name}: the page shows a traceback"
        assert 'File "' not in content, f"{self.name}: the page shows Python stack frames"

    # live state
    def watch(self, elem_ids: list[str]) -> None:
        """Start recording every distinct state of ``elem_ids`` (text, and row count for tables)."""
        self.page.evaluate(_WATCH_JS, elem_ids)

    def states(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.__hubuiStates || []")

    def forbid(self, words: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> None:
        """From now on, record every moment the page's HTML holds one of ``words`` (as a whole word) or
        ``secrets`` (anywhere); both map a label to the text. See :meth:`leaks`.

        The texts reach the page's JavaScript only, never its HTML.
        """
        patterns = [[k, rf"(^|[^A-Za-z0-9_]){re.escape(w)}($|[^A-Za-z0-9_])"] for k, w in (words or {}).items()]
        patterns += [[label, re.escape(value)] for label, value in (secrets or {}).items()]
        self.page.evaluate(_FORBID_JS, patterns)

    def leaks(self) -> list[dict[str, str]]:
        """``{"label", "context"}`` for each forbidden text the page's HTML held at some moment."""
        return self.page.evaluate("() => window.__hubuiLeaks || []")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path
