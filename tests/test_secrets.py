"""No token ever leaves hubui: every artefact of real flows run with the test users' tokens, searched for them.

One module fixture runs the flows a user runs, with the local Hub's tokens, and collects everything they
produce into one corpus:

* DEBUG logs of every logger (root, huggingface_hub with ``HF_DEBUG`` curl lines, httpx, httpcore, urllib3,
  hubui, gradio, uvicorn), with the tracebacks logged alongside;
* the messages, hints and full formatted tracebacks (causes included) of failures provoked with tokens: a
  wrong token, a read-only token, an org the user is not in, an unreachable Hub, a malformed token, the app's
  mapped ``gr.Error``;
* every file of the exported folders (``parity.json``, the card, the config, the weights) and every file of
  the pushed repos as downloaded again from the Hub;
* the CLI's stdout and stderr at ``-v`` (DEBUG), with ``HF_TOKEN`` in the environment and with ``--token``;
* the Gradio app, launched for real: the page HTML, ``/config``, ``/gradio_api/info``, the raw responses of
  the HTTP API (``log_in`` with a good and a bad token, ``on_load`` with the server's own ``HF_TOKEN``) and
  what a ``gradio_client`` session gets back from login, convert and push;
* every file of a Space deployed with :func:`hubui.deploy_space`, downloaded again.

Then every token (and its prefix, suffix, base64 and hex forms) is looked for in all of it. Failures name
the artefact and the user, never the token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi, constants, snapshot_download

import hubui
from hubui.ui import build_app, handlers, launch_options
from hubui.ui.forms import EVAL_COLUMNS, PRESET_TOLERANCE, RANDOM_WEIGHTS
from hubui.ui.state import Session

LOGGERS = (
    "", "huggingface_hub", "httpx", "httpx2", "httpcore", "httpcore2", "urllib3", "filelock", "hubui", "gradio",
    "gradio_client", "uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "starlette", "timm", "open_clip",
    "py.warnings",
)  # fmt: skip


class Secret(str):
    """A token whose repr hides it: pytest prints the arguments of every frame of a failure."""

    def __repr__(self) -> str:
        return "<token>"


# A token that no Hub knows: a wrong token is a secret too (a typo of a real one).
WRONG_TOKEN = Secret("0f" * 16)
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there
NO_EVALS = {"headers": list(EVAL_COLUMNS), "data": [], "metadata": None}  # the card's empty eval table
PART = 12  # prefix / suffix length: long enough that 40-hex commit ids never match by chance


@dataclass
class Corpus:
    """Everything the flows produced, as ``(where, text)`` pairs, plus the secrets to look for."""

    # repr=False: pytest prints a failing test's arguments, and these hold the tokens.
    secrets: dict[str, str] = field(repr=False)
    items: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def add(self, where: str, value: Any) -> None:
        if isinstance(value, bytes):
            value = value.decode("latin-1")  # every byte maps to one character: nothing is lost
        elif not isinstance(value, str):
            value = repr(value)
        self.items.append((where, value))

    def progress(self, line: str) -> None:
        self.add("progress lines", line)

    def add_error(self, where: str, exc: BaseException) -> None:
        """The message, the hint and the full formatted traceback with every chained cause."""
        self.add(f"{where}: str", str(exc))
        self.add(f"{where}: repr", repr(exc))
        self.add(f"{where}: hint", getattr(exc, "hint", ""))
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))

    def add_tree(self, where: str, folder: Path) -> int:
        files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file()]
        for path in files:
            self.add(f"{where}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        return len(files)

    def text(self, prefix: str) -> str:
        return "\n".join(text for where, text in self.items if where.startswith(prefix))


def variants(token: str) -> dict[str, str]:
    """The forms in which a token could leak: raw, cut, or encoded the obvious ways."""
    raw = token.encode()
    return {
        "raw": token,
        f"first {PART} chars": token[:PART],
        f"last {PART} chars": token[-PART:],
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
    }


def find_leaks(corpus: Corpus) -> list[str]:
    """``where: whose token (which form)`` for every hit; the token itself is never in the result."""
    leaks = []
    for whose, token in corpus.secrets.items():
        for form, needle in variants(token).items():
            leaks += [f"{where}: {whose}'s token ({form})" for where, text in corpus.items if needle in text]
    return leaks


# --- capture -------------------------------------------------------------------------------------------
class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        # Formatter.format appends the traceback of exc_info and the stack of stack_info.
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted is still evidence of something
            self.lines.append(f"unformattable record from {record.name}: {type(exc).__name__}")


@contextmanager
def capture_logs() -> Iterator[tuple[_ListHandler, Callable[[], None]]]:
    """Every named logger at DEBUG into one handler; ``reapply()`` after something reconfigures logging."""
    handler = _ListHandler()
    saved = {name: (lg.level, lg.propagate, list(lg.handlers)) for name in LOGGERS for lg in [logging.getLogger(name)]}

    def reapply() -> None:
        for name in LOGGERS:
            lg = logging.getLogger(name)
            lg.setLevel(logging.DEBUG)
            lg.disabled = False
            if handler not in lg.handlers:
                lg.addHandler(handler)

    reapply()
    logging.captureWarnings(True)
    try:
        yield handler, reapply
    finally:
        logging.captureWarnings(False)
        for name, (level, propagate, old) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers[:] = old


def _expect(corpus: Corpus, where: str, exc_type: type[BaseException], fn: Callable[..., Any], *args, **kw) -> None:
    """Provoke a failure and keep everything it says."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    corpus.add_error(where, info.value)


# The environment the CLI runs in, taken once: the in-process flows change HF_ENDPOINT and HF_TOKEN for a while.
_BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}


def _cli(args: list[str], env_token: str | None) -> subprocess.Popen:
    env = {**_BASE_ENV, "HF_DEBUG": "1"}  # huggingface_hub's curl lines in the CLI's stderr too
    if env_token is not None:
        env["HF_TOKEN"] = env_token
    return subprocess.Popen(
        [sys.executable, "-m", "hubui", "-v", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _finish(corpus: Corpus, name: str, proc: subprocess.Popen, code: int) -> None:
    out, err = proc.communicate(timeout=300)
    corpus.add(f"cli {name}: stdout", out)
    corpus.add(f"cli {name}: stderr", err)
    # Checked after adding, so that a failure here still leaves the output in the corpus.
    assert proc.returncode == code, f"cli {name}: exit {proc.returncode}\n{err[-3000:]}"


def _raw_call(base: str, api_name: str, data: list[Any]) -> str:
    """gradio's HTTP API as curl would use it: the raw event stream, whatever it carries."""
    with httpx.Client(timeout=120) as http:
        posted = http.post(f"{base}gradio_api/call/{api_name}", json={"data": data})
        stream = http.get(f"{base}gradio_api/call/{api_name}/{posted.json()['event_id']}")
    return f"POST {posted.status_code} {posted.text}\nGET {stream.status_code} {stream.text}"


# --- the flows -----------------------------------------------------------------------------------------
def _core_flows(corpus: Corpus, users, tmp: Path, name: str) -> None:
    api = HfApi(endpoint=os.environ["HF_ENDPOINT"])
    folder = tmp / "core-export"
    result = hubui.convert(hubui.ModelSpec("timm", "test_resnet", seed=11), hubui.ConvertOptions(folder))
    assert result.passed
    published = hubui.publish(
        hubui.PushRequest(folder, f"alice/{name}", allow_random_weights=True),
        token=users.alice,
        original=result.loaded,
        progress=corpus.progress,
    )
    assert published.verification is not None and published.verification.status == "passed"
    corpus.add("core: publish result", json.dumps(published.to_dict()))
    corpus.add("core: convert result", repr(result) + repr(result.report.to_dict()))
    corpus.add("core: card", str(hubui.make_card(folder, f"alice/{name}")))
    corpus.add_tree("core: exported folder", folder)
    assert {"parity.json", "config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    pushed = snapshot_download(f"alice/{name}", cache_dir=tmp / "dl-core", token=users.alice)
    assert corpus.add_tree(f"hub: alice/{name}", Path(pushed)) >= 4
    corpus.add("core: commits", repr(api.list_repo_commits(f"alice/{name}", token=users.alice)))

    corpus.add("core: identity", repr(hubui.whoami(users.alice)))
    request = hubui.PushRequest(folder, f"reader/{name}", allow_random_weights=True)
    _expect(corpus, "core: wrong token whoami", hubui.InvalidTokenError, hubui.whoami, WRONG_TOKEN)
    _expect(corpus, "core: wrong token push", hubui.InvalidTokenError, hubui.publish, request, token=WRONG_TOKEN)
    _expect(corpus, "core: read-only push", hubui.ReadOnlyTokenError, hubui.publish, request, token=users.reader)
    forbidden = hubui.PushRequest(folder, f"team/{name}", allow_random_weights=True)
    _expect(corpus, "core: foreign org push", hubui.NamespaceForbiddenError, hubui.publish, forbidden, token=users.bob)
    _expect(corpus, "core: malformed token", hubui.InvalidTokenError, hubui.whoami, f"{users.alice} \u00e9")
    _expect(corpus, "core: read-only dry run", hubui.ReadOnlyTokenError, hubui.dry_run, request, token=users.reader)
    _expect(
        corpus,
        "core: read-only space",
        hubui.ReadOnlyTokenError,
        hubui.deploy_space,
        f"reader/{name}-space",
        token=users.reader,
    )
    _expect(
        corpus, "core: unreachable whoami", hubui.HubUnreachableError, hubui.whoami, users.bob, endpoint=UNREACHABLE
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", UNREACHABLE)
        unreachable = hubui.PushRequest(folder, f"alice/{name}-2", allow_random_weights=True)
        _expect(
            corpus, "core: unreachable push", hubui.HubUnreachableError, hubui.publish, unreachable, token=users.alice
        )
        _expect(
            corpus, "core: unreachable README", hubui.HubUnreachableError, hubui.fetch_readme, "alice/x", users.alice
        )

    # The app's handlers, called in-process: the mapped gr.Error and the session's repr.
    session = Session()
    _expect(corpus, "handlers: wrong token login", gr.Error, handlers.log_in, WRONG_TOKEN, session)
    handlers.log_in(users.carol, session)
    corpus.add("handlers: session repr", repr(session))
    _expect(corpus, "handlers: push without export", gr.Error, handlers.push, session, "carol", name, *[None] * 17)


def _space_flow(corpus: Corpus, users, tmp: Path, name: str) -> None:
    deployed = hubui.deploy_space(f"bob/{name}-space", token=users.bob)
    corpus.add("space: deploy result", json.dumps(deployed.to_dict()))
    files = snapshot_download(f"bob/{name}-space", repo_type="space", cache_dir=tmp / "dl-space", token=users.bob)
    count = corpus.add_tree(f"space: bob/{name}-space", Path(files))
    assert count >= len(deployed.files) > 20  # plus the .gitattributes the Hub adds


def _cli_flows(corpus: Corpus, users, tmp: Path, name: str) -> None:
    out = tmp / "cli-export"
    first = {
        "convert (HF_TOKEN env)": _cli(["convert", "--model", "test_vit", "--out", str(out), "--json"], users.alice),
        "push --model --token (HF_TOKEN of another user in env)": _cli(
            [
                "push",
                "--model",
                "test_resnet",
                "--seed",
                "5",
                "--allow-random-weights",
                "--repo-id",
                f"bob/{name}-cli",
                "--token",
                users.bob,
            ],
            users.carol,
        ),
    }
    for label, proc in first.items():
        _finish(corpus, label, proc, 0)
    corpus.add_tree("cli: exported folder", out)
    push = ["push", "--from", str(out), "--allow-random-weights", "--repo-id"]
    second = {
        "push --from (HF_TOKEN env)": (_cli([*push, f"alice/{name}-cli"], users.alice), 0),
        "push read-only --token": (_cli([*push, f"reader/{name}", "--token", users.reader], None), 2),
        "push foreign org (HF_TOKEN env)": (_cli([*push, f"team/{name}", "--json"], users.bob), 2),
        "push wrong --token": (_cli([*push, f"alice/{name}-x", "--token", WRONG_TOKEN], None), 2),
    }
    for label, (proc, code) in second.items():
        _finish(corpus, label, proc, code)


def _app_flow(corpus: Corpus, users, reapply: Callable[[], None], name: str) -> None:
    # Single-user mode with a server token: a fresh page load logs in with it, and must not show it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", users.dave)
        app = build_app(os.environ["HF_ENDPOINT"], oauth=False)
        app.launch(prevent_thread_lock=True, quiet=True, show_error=True, **launch_options())  # as `hubui app` does
        try:
            reapply()  # uvicorn configures its loggers when it starts
            base = app.local_url
            with httpx.Client(timeout=60) as http:
                for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json"):
                    page = http.get(f"{base}{path}")
                    corpus.add(f"app: GET /{path} ({page.status_code})", page.text)
                assert "hubui" in http.get(base).text
            corpus.add("app: on_load (server HF_TOKEN)", _raw_call(base, "on_load", []))
            corpus.add("app: log_in alice (raw)", _raw_call(base, "log_in", [users.alice]))
            corpus.add("app: log_in wrong token (raw)", _raw_call(base, "log_in", [WRONG_TOKEN]))
            corpus.add("app: log_in read-only (raw)", _raw_call(base, "log_in", [users.reader]))

            client = Client(base, verbose=False)
            corpus.add("app client: log_in bob", client.predict(users.bob, api_name="/log_in"))
            client.predict("timm", "test_resnet", api_name="/search")
            client.predict("timm", "test_resnet", api_name="/select_model")
            job = client.submit(
                "timm", "test_resnet", RANDOM_WEIGHTS, None, "fp32", PRESET_TOLERANCE, [], f"{name}-app", False,
                api_name="/run_convert",
            )  # fmt: skip
            job.result()
            corpus.add("app client: run_convert", job.outputs())
            pushed = client.predict(
                "bob", f"{name}-app", False, "", False, "from the app", "keep", False,
                "mit", "en", "", "", "", "image-classification", "", "", "", NO_EVALS,
                True, "", "", "", "", "", "",  # random weights confirmed; no card sections, licence name, link
                api_name="/push",
            )  # fmt: skip
            corpus.add("app client: push", pushed)
            with pytest.raises(Exception) as info:  # gradio_client raises its own AppError
                client.predict(
                    "team", f"{name}-app", False, "", False, "", "keep", False,
                    "mit", "", "", "", "", "image-classification", "", "", "", NO_EVALS,
                    True, "", "", "", "", "", "",  # random weights confirmed; no card sections, licence name, link
                    api_name="/push",
                )  # fmt: skip
            corpus.add_error("app client: push to a foreign org", info.value)
            with pytest.raises(Exception) as info:
                Client(base, verbose=False).predict(WRONG_TOKEN, api_name="/log_in")
            corpus.add_error("app client: log_in wrong token", info.value)
            with httpx.Client(timeout=60) as http:
                corpus.add("app: GET / after the flows", http.get(base).text)
        finally:
            app.close()


@pytest.fixture(scope="module")
def corpus(localhub, tmp_path_factory) -> Corpus:
    tmp = tmp_path_factory.mktemp("secrets")
    name = f"s-{os.urandom(4).hex()}"
    users = SimpleNamespace(
        **{u: Secret(getattr(localhub.users, u)) for u in ("alice", "bob", "reader", "carol", "dave")}
    )
    secrets = {**vars(users), "wrong": WRONG_TOKEN}
    found = Corpus(secrets)
    with capture_logs() as (handler, reapply), pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_DEBUG", True)  # huggingface_hub logs every request as a curl line
        # The CLI's subprocesses run while the in-process flows run: each pays torch's import.
        cli_errors: list[BaseException] = []

        def run_clis() -> None:
            try:
                _cli_flows(found, users, tmp, name)
            except BaseException as exc:  # re-raised below, in the test's thread
                cli_errors.append(exc)

        thread = threading.Thread(target=run_clis)
        thread.start()
        try:
            _core_flows(found, users, tmp, name)
            _space_flow(found, users, tmp, name)
            _app_flow(found, users, reapply, name)
        finally:
            thread.join()
        if cli_errors:
            raise cli_errors[0]
        found.items.extend(("logs (DEBUG)", line) for line in handler.lines)
    assert found.items, "no artefact was collected"
    return found


# --- the tests -----------------------------------------------------------------------------------------
def test_every_artefact_was_collected_and_shows_the_flows_ran(corpus: Corpus, localhub):
    """The search below means something only if the artefacts are there and came from flows that used tokens."""
    logs = corpus.text("logs")
    # DEBUG lines from the HTTP stack and huggingface_hub's curl lines: the places a header would show.
    assert "whoami-v2" in logs and "curl" in logs and "<TOKEN>" in logs
    assert "HTTP Request:" in logs  # httpx at INFO/DEBUG
    assert "Logged in as **alice**" in corpus.text("app: log_in alice")
    assert "dave" in corpus.text("app: on_load")  # the server's HF_TOKEN was picked up, by name only
    assert "Logged in as **bob**" in corpus.text("app client: log_in bob")
    assert "verification" in corpus.text("app client: push").lower()
    assert "'read' role" in corpus.text("core: read-only push")
    assert "cannot push to namespace 'team'" in corpus.text("core: foreign org push")
    assert "Traceback" in corpus.text("core: unreachable push")
    cli = corpus.text("cli")
    assert "DEBUG" in cli and "error:" in cli
    assert any(w.startswith("space: bob/") and w.endswith("hubui/auth.py") for w, _ in corpus.items)
    assert any(w.endswith("parity.json") for w, _ in corpus.items)
    assert any(w.startswith("hub: alice/") and w.endswith("README.md") for w, _ in corpus.items)


def test_no_token_in_any_artefact(corpus: Corpus):
    leaks = find_leaks(corpus)
    # The message names where and whose, never the token itself.
    assert not leaks, "tokens leaked:\n" + "\n".join(sorted(set(leaks)))


def test_the_search_finds_a_planted_token(corpus: Corpus):
    """The detector can fail: a token planted raw, cut or base64-encoded is found and named without the token."""
    alice = corpus.secrets["alice"]
    planted = Corpus(
        {"alice": alice},
        [
            ("log", f"Authorization: Bearer {alice}"),
            ("html", f"<input value='{alice[:PART]}'>"),
            ("header", "Basic " + base64.b64encode(alice.encode()).decode()),
        ],
    )
    leaks = find_leaks(planted)
    assert {leak.split(":")[0] for leak in leaks} == {"log", "html", "header"}
    assert not any(alice[:PART] in leak for leak in leaks)
