"""hubui.auth against the session's real local Hub over HTTP (never a mocked HfApi)."""

from __future__ import annotations

import logging
import socket
import traceback
from pathlib import Path

import pytest
from huggingface_hub import constants

from hubui.auth import Identity, endpoint, require_write, resolve_token, whoami
from hubui.errors import (
    HubUIError,
    HubUnreachableError,
    InvalidTokenError,
    NamespaceForbiddenError,
    NotLoggedInError,
    ReadOnlyTokenError,
)


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env token and an empty login cache, so each test decides where the token comes from."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    token_path = tmp_path / "hf_home" / "token"
    # huggingface_hub reads these constants at import; its helpers look them up at call time.
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_path))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(token_path.parent / "stored_tokens"))
    return token_path


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: bind a port, then close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _assert_no_secret(exc: BaseException, secret: str) -> None:
    """The secret is in no message, str, repr, hint, or anywhere in the chained traceback."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, HubUIError):
        texts += [exc.message, exc.hint]
    for text in texts:
        assert secret not in text


# --- whoami -------------------------------------------------------------------------------------------
def test_whoami_alice_has_write_and_orgs(localhub) -> None:
    me = whoami(localhub.users.alice, endpoint=localhub.url)
    assert isinstance(me, Identity)
    assert me.name == "alice"
    assert me.can_write and me.role == "write"
    assert {"team", "timm", "laion"} <= set(me.orgs)
    assert me.endpoint == localhub.url
    assert me.token_name == "alice-write"
    assert me.namespaces[0] == "alice"


def test_whoami_bob_and_reader(localhub) -> None:
    bob = whoami(localhub.users.bob, endpoint=localhub.url)
    assert (bob.name, bob.orgs, bob.can_write) == ("bob", (), True)
    reader = whoami(localhub.users.reader, endpoint=localhub.url)
    assert reader.name == "reader" and reader.role == "read" and not reader.can_write


def test_identity_holds_no_token(localhub) -> None:
    me = whoami(localhub.users.alice, endpoint=localhub.url)
    assert localhub.users.alice not in repr(me)
    assert localhub.users.alice not in str(vars(me))


def test_whoami_uses_hf_endpoint_by_default(localhub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", localhub.url + "/")
    assert endpoint() == localhub.url
    assert whoami(localhub.users.bob).endpoint == localhub.url


def test_invalid_token_is_rejected(localhub) -> None:
    with pytest.raises(InvalidTokenError, match="HTTP 401"):
        whoami("hf_" + "x" * 30, endpoint=localhub.url)


def test_unreachable_hub_names_the_endpoint(localhub, closed_port_url: str) -> None:
    with pytest.raises(HubUnreachableError) as info:
        whoami(localhub.users.alice, endpoint=closed_port_url)
    assert closed_port_url in info.value.message


def test_a_hub_that_never_answers_times_out_naming_it(localhub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts the connection and then says nothing (a stuck proxy, a wrong HF_ENDPOINT)."""
    import threading
    import time

    from hubui import auth

    monkeypatch.setattr(auth, "WHOAMI_TIMEOUT_S", 1.0)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        caught: list[BaseException] = []

        def call() -> None:
            try:
                whoami(localhub.users.alice, endpoint=url)
            except BaseException as exc:  # handed to the test thread
                caught.append(exc)

        started = time.monotonic()
        # A thread, so that a whoami without a timeout fails this test instead of hanging the suite.
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(30)
        assert not caller.is_alive(), "whoami was still waiting after 30 s"
    assert time.monotonic() - started < 10
    assert len(caught) == 1 and isinstance(caught[0], HubUnreachableError), caught
    assert url in caught[0].message and "did not answer whoami within 1 s" in caught[0].message
    assert "HF_ENDPOINT" in caught[0].hint
    _assert_no_secret(caught[0], localhub.users.alice)


def test_endpoint_must_be_http(localhub) -> None:
    with pytest.raises(HubUnreachableError, match="not an http"):
        whoami(localhub.users.alice, endpoint="ftp://example.invalid")


# --- require_write --------------------------------------------------------------------------------------
def test_read_only_token_cannot_write(localhub) -> None:
    reader = whoami(localhub.users.reader, endpoint=localhub.url)
    with pytest.raises(ReadOnlyTokenError, match="'read' role"):
        require_write(reader)


def test_namespace_of_someone_else_is_forbidden(localhub) -> None:
    alice = whoami(localhub.users.alice, endpoint=localhub.url)
    with pytest.raises(NamespaceForbiddenError) as info:
        require_write(alice, "bob")
    assert "'bob'" in info.value.message
    assert "alice" in info.value.hint and "team" in info.value.hint


def test_own_namespace_and_org_are_allowed(localhub) -> None:
    alice = whoami(localhub.users.alice, endpoint=localhub.url)
    assert require_write(alice) == "alice"
    assert require_write(alice, "team") == "team"
    bob = whoami(localhub.users.bob, endpoint=localhub.url)
    with pytest.raises(NamespaceForbiddenError):
        require_write(bob, "team")


def test_fine_grained_scopes_limit_namespaces() -> None:
    ident = Identity("alice", ("team",), True, "fineGrained", "ci", "http://hub", write_namespaces=("team",))
    assert require_write(ident, "team") == "team"
    with pytest.raises(ReadOnlyTokenError, match="no write access to namespace 'alice'"):
        require_write(ident)


# --- token resolution ---------------------------------------------------------------------------------
def test_no_token_anywhere() -> None:
    with pytest.raises(NotLoggedInError):
        resolve_token()


def test_env_token(localhub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", f"  {localhub.users.bob}\n")
    assert resolve_token() == localhub.users.bob
    assert whoami(endpoint=localhub.url).name == "bob"


def test_explicit_token_beats_env(localhub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", localhub.users.bob)
    assert resolve_token(localhub.users.alice) == localhub.users.alice
    assert whoami(localhub.users.alice, endpoint=localhub.url).name == "alice"


def test_login_cache(localhub, no_ambient_token: Path) -> None:
    no_ambient_token.parent.mkdir(parents=True)
    no_ambient_token.write_text(localhub.users.reader + "\n")
    assert resolve_token() == localhub.users.reader
    assert whoami(endpoint=localhub.url).name == "reader"


def test_env_beats_login_cache(localhub, monkeypatch: pytest.MonkeyPatch, no_ambient_token: Path) -> None:
    no_ambient_token.parent.mkdir(parents=True)
    no_ambient_token.write_text(localhub.users.reader)
    monkeypatch.setenv("HF_TOKEN", localhub.users.alice)
    assert whoami(endpoint=localhub.url).name == "alice"


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_empty_tokens_are_errors(value: str, monkeypatch: pytest.MonkeyPatch, no_ambient_token: Path) -> None:
    with pytest.raises(InvalidTokenError, match="the token is empty"):
        resolve_token(value)
    monkeypatch.setenv("HF_TOKEN", value)
    with pytest.raises(InvalidTokenError, match=r"HF_TOKEN.*the token is empty"):
        resolve_token()
    monkeypatch.delenv("HF_TOKEN")
    no_ambient_token.parent.mkdir(parents=True, exist_ok=True)
    no_ambient_token.write_text(value)
    with pytest.raises(InvalidTokenError, match="the token is empty"):
        resolve_token()


def test_malformed_token_is_rejected_without_echo() -> None:
    secret = "hf_abc def"
    with pytest.raises(InvalidTokenError) as info:
        resolve_token(secret)
    _assert_no_secret(info.value, secret)


# --- secrets stay secret -------------------------------------------------------------------------------
def test_token_never_in_messages_or_logs(
    localhub, closed_port_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    bad = "hf_" + "q" * 34
    reader = whoami(localhub.users.reader, endpoint=localhub.url)
    alice = whoami(localhub.users.alice, endpoint=localhub.url)
    failures: list[tuple[BaseException, str]] = []

    def expect(exc_type: type[BaseException], secret: str, fn, *args, **kwargs) -> None:
        with pytest.raises(exc_type) as info:
            fn(*args, **kwargs)
        failures.append((info.value, secret))

    expect(InvalidTokenError, bad, whoami, bad, endpoint=localhub.url)
    expect(HubUnreachableError, localhub.users.alice, whoami, localhub.users.alice, endpoint=closed_port_url)
    expect(ReadOnlyTokenError, localhub.users.reader, require_write, reader)
    expect(NamespaceForbiddenError, localhub.users.alice, require_write, alice, "bob")
    monkeypatch.setenv("HF_TOKEN", bad)
    expect(InvalidTokenError, bad, whoami, endpoint=localhub.url)
    assert len(failures) == 5
    for exc, secret in failures:
        _assert_no_secret(exc, secret)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "expected debug logs from the whoami calls"
    for secret in (bad, localhub.users.alice, localhub.users.reader):
        assert secret not in logged
