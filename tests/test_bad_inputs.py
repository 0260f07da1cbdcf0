"""Bad inputs (issue 8): each one gets a clear HubUIError that names the bad value and says what to do.

The same inputs go through the three faces of hubui: the core public API (``hubui.*``), the CLI
(``hubui.cli.main`` in-process and ``python -m hubui`` in a subprocess) and the app (the Gradio
handlers through the one error mapping, and the running app over HTTP with ``gradio_client``).
Where a case could upload, the local Hub is checked afterwards with the real huggingface_hub client
and on its storage: no repo, no ref and no object appeared.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, ModelCard

import hubui
from hubui import cli
from hubui.card import CardFields, load_card_file
from hubui.parity import build_parity_inputs, load_image
from hubui.ui import build_app, handlers
from hubui.ui.errors import INTERNAL_ERROR
from hubui.ui.forms import PRESET_TOLERANCE, RANDOM_WEIGHTS
from hubui.ui.state import Session

ARCH = "test_resnet"
UNKNOWN_TOKEN = "hf_" + "x" * 34  # well-formed, never issued by this Hub: what a revoked token looks like to it
DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
}


# --- files a user might hand to hubui -------------------------------------------------------------
class _WritesSentinel:
    """Unpickling this object runs ``open(sentinel, 'w')``: it would create the sentinel file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.sentinel)!r}, 'w').write('ran')",))


@dataclass(frozen=True)
class Files:
    """Bad files, made once per module in one folder."""

    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name

    @property
    def sentinel(self) -> Path:
        return self.root / "PICKLE_RAN_CODE"


def _make_files(root: Path) -> Files:
    files = Files(root)
    resnet = timm.create_model(ARCH).state_dict()
    safetensors.torch.save_file(resnet, str(root / "resnet.safetensors"))
    data = (root / "resnet.safetensors").read_bytes()
    (root / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (root / "huge-header.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    (root / "corrupt-header.safetensors").write_bytes(struct.pack("<Q", 16) + b"{not json at all")
    (root / "empty.pth").write_bytes(b"")
    safetensors.torch.save_file(timm.create_model("test_vit").state_dict(), str(root / "vit-weights.safetensors"))
    torch.save({"state_dict": {"conv1.0.weight": _WritesSentinel(files.sentinel)}}, root / "runs-code.pth")
    with open(root / "runs-code-raw.pt", "wb") as f:  # a bare pickle (no zip), the other format torch reads
        pickle.dump(_WritesSentinel(files.sentinel), f, protocol=4)
    torch.save({"epoch": 12, "best_top1": 71.5}, root / "no-tensors.pth")
    torch.save([1, 2, 3], root / "a-list.pth")
    (root / "weights.txt").write_text("not a checkpoint")
    (root / "not-an-image.png").write_text("hello, I am text")
    (root / "truncated.png").write_bytes((hubui.parity.REAL_IMAGES_DIR / "chelsea.png").read_bytes()[:400])
    (root / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    (root / "latin1.yaml").write_bytes("license: mit\ndescription: caf\xe9\n".encode("latin-1"))
    (root / "python-tag.yaml").write_text(
        f"license: !!python/object/apply:os.system ['touch {root / 'YAML_RAN_CODE'}']\n", encoding="utf-8"
    )
    (root / "bad-license.json").write_text(json.dumps({"license": "apache2"}), encoding="utf-8")
    assert not files.sentinel.exists()
    return files


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG file that declares a huge size (a decompression bomb)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    made = _make_files(tmp_path_factory.mktemp("bad-files"))
    _BAD_FILES.append(made)
    return made


@pytest.fixture(scope="module")
def converted(localhub, tmp_path_factory: pytest.TempPathFactory) -> hubui.ConvertResult:
    """One passing fp32 export of a tiny model: what the push cases try to push."""
    result = hubui.convert(
        hubui.ModelSpec("timm", ARCH, seed=5), hubui.ConvertOptions(tmp_path_factory.mktemp("x") / "m")
    )
    assert result.passed
    return result


@pytest.fixture
def api(localhub) -> HfApi:
    return HfApi(endpoint=localhub.url, token=localhub.users.alice)


# --- "nothing was uploaded" ---------------------------------------------------------------------------
def _hub_state(localhub) -> tuple[dict[str, str], int]:
    """Every ref of every repo on the local Hub, and how many objects it stores.

    Read from its storage folder (read-only): a bad repo id cannot even be asked about through the
    client, and an upload would leave an object behind even if no commit followed.
    """
    repos = localhub.root / "repos"
    refs = {str(p.relative_to(repos)): p.read_text() for p in repos.rglob("refs.json")} if repos.is_dir() else {}
    objects = localhub.root / "objects"
    return refs, sum(1 for p in objects.rglob("*") if p.is_file()) if objects.is_dir() else 0


@pytest.fixture
def nothing_uploaded(localhub) -> Iterator[None]:
    """Fails the test if it changed anything on the local Hub."""
    before = _hub_state(localhub)
    yield
    assert _hub_state(localhub) == before, "a rejected input changed the Hub"


def _assert_clear(exc: BaseException, error: type[hubui.HubUIError], named: str, hint: str) -> None:
    """The checks every case makes on a core error."""
    assert isinstance(exc, error), f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, hubui.HubUIError)
    assert named in exc.message, f"{named!r} not in {exc.message!r}"
    assert exc.hint and hint.lower() in exc.hint.lower(), f"{hint!r} not in hint {exc.hint!r}"
    assert "Traceback" not in str(exc)


# --- the core ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ctx:
    """What a case may use: the bad files, an export to push, a fresh repo name, the users' tokens."""

    files: Files
    folder: Path
    repo: str
    users: Any


def _publish(ctx: Ctx, repo_id: str, token: str, fields: CardFields | None = None, **request: Any) -> Any:
    return hubui.publish(
        hubui.PushRequest(ctx.folder, repo_id, **request, allow_random_weights=True), fields, token=token, verify=False
    )


def _ckpt(name: str) -> Callable[[Ctx], Any]:
    return lambda c: hubui.load_model(hubui.ModelSpec("timm", ARCH, checkpoint=str(c.files[name])))


# (id, call, error, named in the message, what the hint says to do)
CORE_CASES: list[tuple[str, Callable[[Ctx], Any], type[hubui.HubUIError], str, str]] = [
    # repo ids
    ("repo-id-space", lambda c: _publish(c, "alice/has space", c.users.alice),
     hubui.InvalidRepoIdError, "'alice/has space'", "namespace/name"),
    ("repo-id-dotdot", lambda c: _publish(c, "alice/a..b", c.users.alice),
     hubui.InvalidRepoIdError, "'alice/a..b'", "namespace/name"),
    ("repo-id-parent-dir", lambda c: _publish(c, "../etc", c.users.alice),
     hubui.InvalidRepoIdError, "'../etc'", "namespace/name"),
    ("repo-id-too-long", lambda c: _publish(c, "alice/" + "x" * 97, c.users.alice),
     hubui.InvalidRepoIdError, "x" * 97, "namespace/name"),
    ("repo-id-bad-chars", lambda c: _publish(c, "alice/bad$chars!", c.users.alice),
     hubui.InvalidRepoIdError, "bad$chars!", "letters, digits"),
    ("repo-id-non-ascii", lambda c: _publish(c, "alice/modèle", c.users.alice),
     hubui.InvalidRepoIdError, "modèle", "letters, digits"),
    ("repo-id-trailing-newline", lambda c: _publish(c, "alice/x\n", c.users.alice),
     hubui.InvalidRepoIdError, "'alice/x\\n'", "namespace/name"),
    ("repo-id-three-parts", lambda c: _publish(c, "alice/a/b", c.users.alice),
     hubui.InvalidRepoIdError, "'alice/a/b'", "namespace/name"),
    # models
    ("unknown-timm-architecture", lambda c: hubui.load_model(hubui.ModelSpec("timm", "resnet_nope")),
     hubui.ModelNotFoundError, "'resnet_nope'", "search the catalog"),
    ("unknown-timm-tag", lambda c: hubui.load_model(hubui.ModelSpec("timm", ARCH, pretrained="nope_in1k")),
     hubui.ModelNotFoundError, "'nope_in1k'", "r160_in1k"),
    ("unknown-open-clip-architecture", lambda c: hubui.load_model(hubui.ModelSpec("open_clip", "ViT-Nope-32")),
     hubui.ModelNotFoundError, "'ViT-Nope-32'", "hubui models open_clip"),
    ("unknown-open-clip-tag", lambda c: hubui.load_model(hubui.ModelSpec("open_clip", "ViT-B-32", pretrained="nope")),
     hubui.ModelNotFoundError, "'nope'", "openai"),
    ("checkpoint-of-another-architecture", _ckpt("vit-weights.safetensors"),
     hubui.CheckpointMismatchError, "vit-weights.safetensors", "num_classes"),
    ("safetensors-truncated", _ckpt("truncated.safetensors"),
     hubui.CheckpointError, "truncated.safetensors", "export it again"),
    ("safetensors-huge-header", _ckpt("huge-header.safetensors"),
     hubui.CheckpointError, "huge-header.safetensors", "export it again"),
    ("safetensors-corrupt-header", _ckpt("corrupt-header.safetensors"),
     hubui.CheckpointError, "corrupt-header.safetensors", "export it again"),
    ("checkpoint-empty-file", _ckpt("empty.pth"),
     hubui.CheckpointError, "empty.pth", "fetch the file again"),
    ("pickle-without-tensors", _ckpt("no-tensors.pth"),
     hubui.CheckpointError, "'epoch' (int)", "dict of tensors"),
    ("pickle-of-a-list", _ckpt("a-list.pth"),
     hubui.CheckpointError, "a-list.pth", "holds only tensors"),
    ("checkpoint-unsupported-type", _ckpt("weights.txt"),
     hubui.CheckpointError, "weights.txt", ".safetensors"),
    # card fields
    ("card-tag-yaml-delimiter", lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, CardFields(tags=["---"])),
     hubui.InvalidCardError, "'---'", "remove the dashes"),
    ("card-tag-colon-space", lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, CardFields(tags=["key: value"])),
     hubui.InvalidCardError, "'key: value'", "without a space"),
    ("card-multi-line-license",
     lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, CardFields(license="mit\nlicense_link: evil")),
     hubui.InvalidCardError, "'mit\\nlicense_link: evil'", "one line"),
    ("card-unknown-license", lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, CardFields(license="apache2")),
     hubui.InvalidCardError, "'apache2'", "apache-2.0"),
    ("card-text-not-unicode",
     lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, CardFields(description="caf\udce9 au lait")),
     hubui.InvalidCardError, "'description'", "UTF-8"),
    ("card-file-not-utf8", lambda c: load_card_file(c.files["latin1.yaml"]),
     hubui.InvalidCardError, "latin1.yaml", "UTF-8"),
    ("card-file-python-yaml-tag", lambda c: load_card_file(c.files["python-tag.yaml"]),
     hubui.InvalidCardError, "python-tag.yaml", "plain values"),
    # tokens and namespaces
    ("token-empty", lambda c: _publish(c, f"alice/{c.repo}", ""),
     hubui.InvalidTokenError, "empty", "real token"),
    ("token-whitespace", lambda c: _publish(c, f"alice/{c.repo}", " \t \n"),
     hubui.InvalidTokenError, "only whitespace", "real token"),
    ("token-revoked", lambda c: _publish(c, f"alice/{c.repo}", UNKNOWN_TOKEN),
     hubui.InvalidTokenError, "revoked", "log in again"),
    ("token-read-only", lambda c: _publish(c, f"reader/{c.repo}", c.users.reader),
     hubui.ReadOnlyTokenError, "'reader'", "'write' role"),
    ("org-user-is-not-in", lambda c: _publish(c, f"team/{c.repo}", c.users.bob),
     hubui.NamespaceForbiddenError, "'team'", "bob"),
    ("namespace-of-another-user", lambda c: _publish(c, f"bob/{c.repo}", c.users.alice),
     hubui.NamespaceForbiddenError, "'bob'", "alice, team"),
    # other
    ("branch-with-dotdot", lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, branch="main..evil"),
     hubui.InvalidRevisionError, "'main..evil'", "'..'"),
    ("branch-reserved-head", lambda c: _publish(c, f"alice/{c.repo}", c.users.alice, branch="HEAD"),
     hubui.InvalidRevisionError, "'HEAD'", "branch name"),
    ("image-that-is-text", lambda c: build_parity_inputs(DATA_CONFIG, [c.files["not-an-image.png"]]),
     hubui.InvalidInputError, "not-an-image.png", "PNG, JPEG"),
    ("image-truncated", lambda c: build_parity_inputs(DATA_CONFIG, [c.files["truncated.png"]]),
     hubui.InvalidInputError, "truncated.png", "PNG, JPEG"),
    ("image-decompression-bomb", lambda c: load_image(c.files["bomb.png"]),
     hubui.InvalidInputError, "bomb.png", "pixels per side"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "error", "named", "hint"), CORE_CASES, ids=[c[0] for c in CORE_CASES])
def test_core_rejects_bad_input(
    case, call, error, named, hint, files, converted, repo_name, localhub, api, nothing_uploaded
) -> None:
    ctx = Ctx(files, converted.export.folder, repo_name, localhub.users)
    with pytest.raises(hubui.HubUIError) as info:
        call(ctx)
    _assert_clear(info.value, error, named, hint)
    for token in (localhub.users.alice, localhub.users.bob, localhub.users.reader, UNKNOWN_TOKEN):
        assert token not in str(info.value)
    for namespace in ("alice", "bob", "reader", "team"):
        assert not api.repo_exists(f"{namespace}/{repo_name}")
    assert not files.sentinel.exists() and not files["YAML_RAN_CODE"].exists()


@pytest.mark.parametrize("name", ["runs-code.pth", "runs-code-raw.pt"])
def test_pickle_that_runs_code_never_runs(files, name) -> None:
    with pytest.raises(hubui.CheckpointError) as info:
        hubui.load_model(hubui.ModelSpec("timm", ARCH, checkpoint=str(files[name])))
    _assert_clear(info.value, hubui.CheckpointError, name, "extract its tensors")
    assert "exec" in info.value.message and "weights_only=True" in info.value.message
    # torch's own advice ("re-run with weights_only=False") must never reach the user
    assert "weights_only` set to `False" not in str(info.value) and "weights_only=False" not in str(info.value)
    assert not files.sentinel.exists()


def test_the_pickle_payload_is_real(tmp_path) -> None:
    """Without this, the sentinel checks could pass because the payload does nothing."""
    sentinel = tmp_path / "RAN"
    path = tmp_path / "evil.pth"
    torch.save(_WritesSentinel(sentinel), path)
    torch.load(path, weights_only=False)  # what hubui never does
    assert sentinel.read_text() == "ran"


def test_branch_with_dotdot_leaves_an_existing_repo_unchanged(converted, localhub, api, repo_name) -> None:
    repo = f"alice/{repo_name}"
    hubui.publish(
        hubui.PushRequest(converted.export.folder, repo, allow_random_weights=True),
        token=localhub.users.alice,
        verify=False,
    )
    commits, refs = api.list_repo_commits(repo), api.list_repo_refs(repo)
    request = hubui.PushRequest(converted.export.folder, repo, branch="a..b", allow_random_weights=True)
    with pytest.raises(hubui.InvalidRevisionError, match=r"'a\.\.b'"):
        hubui.publish(request, token=localhub.users.alice, verify=False)
    assert api.list_repo_commits(repo) == commits and api.list_repo_refs(repo) == refs


def test_yaml_delimiters_in_the_description_cannot_inject_metadata(converted) -> None:
    """Free text is allowed to hold '---' lines, so it is neutralised instead of refused."""
    evil = "Intro\n---\nlicense: evil\ntags: [injected]\n---\nmore"
    card = hubui.make_card(converted.export.folder, "alice/m", CardFields(license="mit", description=evil))
    parsed = ModelCard(str(card))
    assert parsed.data.license == "mit" and "injected" not in (parsed.data.tags or [])
    assert "license: evil" in parsed.text  # the text is kept, as text


# --- the CLI ----------------------------------------------------------------------------------------
def _fill(arg: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders (file names hold '.' and '-', so no str.format)."""
    for key, value in values.items():
        arg = arg.replace(f"{{{key}}}", value)
    return arg


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# (id, argv with {placeholders}, HF_TOKEN user or None, named in the "error:" line, in the "hint:" line)
CLI_CASES = [
    ("repo-id-space", ["push", "--from", "{folder}", "--repo-id", "alice/has space"], "alice",
     "'alice/has space'", "namespace/name"),
    ("repo-id-dotdot", ["push", "--from", "{folder}", "--repo-id", "alice/a..b"], "alice", "'alice/a..b'", "namespace"),
    ("branch-with-dotdot", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}", "--revision", "x..y"], "alice",
     "'x..y'", "'..'"),
    ("token-empty", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}", "--token", ""], None,
     "empty", "real token"),
    ("token-whitespace-env", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}"], "   ",
     "HF_TOKEN", "unset the variable"),
    ("token-revoked", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}"], UNKNOWN_TOKEN,
     "revoked", "log in again"),
    ("token-read-only", ["push", "--from", "{folder}", "--repo-id", "reader/{repo}"], "reader",
     "'reader'", "'write' role"),
    ("org-user-is-not-in", ["push", "--from", "{folder}", "--repo-id", "team/{repo}"], "bob", "'team'", "bob"),
    ("card-file-not-utf8", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}", "--card", "{latin1.yaml}"],
     "alice", "latin1.yaml", "UTF-8"),
    ("card-unknown-license", ["push", "--from", "{folder}", "--repo-id", "alice/{repo}", "--card",
     "{bad-license.json}"], "alice", "'apache2'", "apache-2.0"),
    ("unknown-architecture", ["convert", "--model", "resnet_nope", "--out", "{out}"], None,
     "'resnet_nope'", "search the catalog"),
    ("unknown-tag", ["convert", "--model", ARCH, "--pretrained", "nope_in1k", "--out", "{out}"], None,
     "'nope_in1k'", "r160_in1k"),
    ("pickle-that-runs-code", ["convert", "--model", ARCH, "--checkpoint", "{runs-code.pth}", "--out", "{out}"], None,
     "runs-code.pth", "extract its tensors"),
    ("safetensors-huge-header", ["convert", "--model", ARCH, "--checkpoint", "{huge-header.safetensors}", "--out",
     "{out}"], None, "huge-header.safetensors", "export it again"),
    ("checkpoint-of-another-architecture", ["convert", "--model", ARCH, "--checkpoint", "{vit-weights.safetensors}",
     "--out", "{out}"], None, "vit-weights.safetensors", "num_classes"),
    ("image-that-is-text", ["convert", "--model", ARCH, "--images", "{not-an-image.png}", "--out", "{out}"], None,
     "not-an-image.png", "PNG, JPEG"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv", "user", "named", "hint"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_rejects_bad_input(
    case, argv, user, named, hint, files, converted, repo_name, localhub, api, tmp_path, monkeypatch, capsys,
    nothing_uploaded,
) -> None:  # fmt: skip
    tokens = {"alice": localhub.users.alice, "bob": localhub.users.bob, "reader": localhub.users.reader}
    values = {"folder": str(converted.export.folder), "repo": repo_name, "out": str(tmp_path / "out")}
    values.update({p.name: str(p) for p in files.root.iterdir()})
    args = [_fill(a, values) for a in argv]
    if user is not None:
        monkeypatch.setenv("HF_TOKEN", tokens.get(user, user))
    code, out, err = _run_cli(args, capsys)
    assert code == cli.EXIT_BAD_INPUT, (out, err)
    error_line = next(line for line in err.splitlines() if line.startswith("error: "))
    hint_line = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert named in error_line and hint.lower() in hint_line.lower(), err
    assert "Traceback" not in out + err
    for token in (*tokens.values(), UNKNOWN_TOKEN):
        assert token not in out + err
    assert not (tmp_path / "out").exists()  # nothing written either
    for namespace in ("alice", "reader", "team"):
        assert not api.repo_exists(f"{namespace}/{repo_name}")
    assert not files.sentinel.exists()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["push", "--from", "{folder}", "--repo-id", "alice/../../etc"], "'alice/../../etc'"),
        (["convert", "--model", ARCH, "--checkpoint", "{runs-code-raw.pt}", "--out", "{out}"], "runs-code-raw.pt"),
    ],
    ids=["repo-id-traversal", "pickle-that-runs-code"],
)
def test_cli_subprocess_exits_cleanly(argv, named, files, converted, localhub, tmp_path, nothing_uploaded) -> None:
    """The real command: exit 2, one error and one hint line, no traceback, no token."""
    values = {"folder": str(converted.export.folder), "out": str(tmp_path / "out")}
    values.update({p.name: str(p) for p in files.root.iterdir()})
    env = {**os.environ, "HF_TOKEN": localhub.users.alice}
    proc = subprocess.run(
        [sys.executable, "-m", "hubui", *(_fill(a, values) for a in argv)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and localhub.users.alice not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(("error: ", "hint: "))]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"] and named in lines[0]
    assert not files.sentinel.exists() and not (tmp_path / "out").exists()


# --- the app: handlers through the one error mapping ------------------------------------------------
CARD = ("mit", "en", "vision", "", "", "image-classification", "A test.", "", "", None)


def _ui_error(call: Callable[[], Any]) -> str:
    """Run a handler (streaming or not) and return the text of the gr.Error it raises."""
    with pytest.raises(gr.Error) as info:
        result = call()
        if isinstance(result, Iterator):
            for _ in result:
                pass
    text = str(info.value.message)
    assert "Traceback" not in text and INTERNAL_ERROR not in text
    return text


def _session(token: str | None, result: hubui.ConvertResult | None, tmp_path: Path) -> Session:
    session = Session(scratch_root=tmp_path / "scratch")
    if token is not None:
        handlers.log_in(token, session)
    session.result = result
    return session


def _ui_push(session: Session, namespace: str, name: str, branch: str = "", card: tuple[Any, ...] = CARD) -> Any:
    # The export holds random weights: confirmed here, so that each case meets the check it is about.
    return handlers.push(
        session, namespace, name, False, branch, False, "msg", "keep", False, *card, None, allow_random_weights=True
    )


_BAD_FILES: list[Files] = []  # set by the files fixture: the UI cases name files, gradio hands over paths


def _ui_convert(session: Session, arch: str, checkpoint: str | None = None, images: list[str] | None = None) -> Any:
    """Call the Convert handler as gradio does, with server-side paths of the uploaded files."""
    folder = _BAD_FILES[-1]
    path = str(folder[checkpoint]) if checkpoint else None
    uploads = [str(folder[name]) for name in images] if images else None
    return handlers.run_convert(
        session, "timm", arch, RANDOM_WEIGHTS, path, "fp32", PRESET_TOLERANCE, uploads, "", False
    )


UI_CASES = [
    ("token-empty", lambda s, c: handlers.log_in("", s), None, "empty", "Paste a token"),
    ("token-whitespace", lambda s, c: handlers.log_in("  \t ", s), None, "only whitespace", "Paste a token"),
    ("token-revoked", lambda s, c: handlers.log_in(UNKNOWN_TOKEN, s), None, "revoked", "log in again"),
    ("repo-id-space", lambda s, c: _ui_push(s, "alice", "has space"), "alice", "'alice/has space'", "namespace/name"),
    ("repo-id-dotdot", lambda s, c: _ui_push(s, "alice", "a..b"), "alice", "'alice/a..b'", "namespace/name"),
    ("branch-with-dotdot", lambda s, c: _ui_push(s, "alice", c, branch="a..b"), "alice", "'a..b'", "'..'"),
    ("token-read-only", lambda s, c: _ui_push(s, "reader", c), "reader", "'reader'", "'write' role"),
    ("org-user-is-not-in", lambda s, c: _ui_push(s, "team", c), "bob", "'team'", "bob"),
    ("card-tag-colon-space", lambda s, c: _ui_push(s, "alice", c, card=("mit", "", "key: value", *CARD[3:])),
     "alice", "'key: value'", "without a space"),
    ("card-unknown-license", lambda s, c: _ui_push(s, "alice", c, card=("apache2", *CARD[1:])),
     "alice", "'apache2'", "apache-2.0"),
    ("card-multi-line-license", lambda s, c: _ui_push(s, "alice", c, card=("mit\n---\nx: y", *CARD[1:])),
     "alice", "mit\\n---\\nx: y", "one line"),
    ("unknown-architecture", lambda s, c: _ui_convert(s, "resnet_nope"), None, "'resnet_nope'", "search the catalog"),
    ("pickle-that-runs-code", lambda s, c: _ui_convert(s, ARCH, checkpoint="runs-code.pth"), None,
     "runs-code.pth", "extract its tensors"),
    ("safetensors-truncated", lambda s, c: _ui_convert(s, ARCH, checkpoint="truncated.safetensors"), None,
     "truncated.safetensors", "export it again"),
    ("pickle-without-tensors", lambda s, c: _ui_convert(s, ARCH, checkpoint="no-tensors.pth"), None,
     "'epoch' (int)", "dict of tensors"),
    ("image-that-is-text", lambda s, c: _ui_convert(s, ARCH, images=["not-an-image.png"]), None,
     "not-an-image.png", "PNG, JPEG"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "user", "named", "hint"), UI_CASES, ids=[c[0] for c in UI_CASES])
def test_ui_handlers_reject_bad_input(
    case, call, user, named, hint, files, converted, localhub, api, repo_name, tmp_path, nothing_uploaded
) -> None:
    tokens = {"alice": localhub.users.alice, "bob": localhub.users.bob, "reader": localhub.users.reader}
    session = _session(tokens[user] if user else None, converted if user else None, tmp_path)
    text = _ui_error(lambda: call(session, repo_name))
    assert named in text, text
    assert hint.lower() in text.lower(), text
    for token in (*tokens.values(), UNKNOWN_TOKEN):
        assert token not in text
    for namespace in ("alice", "reader", "team"):
        assert not api.repo_exists(f"{namespace}/{repo_name}")
    assert not files.sentinel.exists()
    if case == "image-that-is-text":
        assert not list((tmp_path / "scratch").rglob("config.json"))  # refused before any folder was written


# --- the app over HTTP ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(localhub) -> Iterator[str]:
    """The real app, served on a free port, against the session's local Hub (single-user mode, no token)."""
    app = build_app(hub_url=localhub.url, oauth=False)
    app.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield app.local_url
    finally:
        app.close()


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False)


def _app_error(call: Callable[[], Any]) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call()
    text = str(info.value)
    assert "Traceback" not in text and 'File "' not in text
    return text


@pytest.mark.parametrize(
    ("token", "named"),
    [("", "empty"), ("   ", "only whitespace"), (UNKNOWN_TOKEN, "revoked")],
    ids=["token-empty", "token-whitespace", "token-revoked"],
)
def test_app_over_http_refuses_bad_tokens(app_url, token, named) -> None:
    text = _app_error(lambda: _client(app_url).predict(token, api_name="/log_in"))
    assert named in text and ("Paste a token" in text or "log in again" in text)
    assert UNKNOWN_TOKEN not in text


@pytest.mark.parametrize(
    ("upload", "named", "hint"),
    [
        ("runs-code.pth", "runs-code.pth", "extract its tensors"),
        ("huge-header.safetensors", "huge-header.safetensors", "export it again"),
        ("not-an-image.png", "not-an-image.png", "PNG, JPEG"),
    ],
    ids=["pickle-that-runs-code", "safetensors-huge-header", "image-that-is-text"],
)
def test_app_over_http_refuses_bad_uploads(app_url, files, upload, named, hint, nothing_uploaded) -> None:
    from gradio_client import handle_file

    client = _client(app_url)
    choices, _ = client.predict("timm", ARCH, api_name="/search")  # the session's architecture list
    assert [ARCH, ARCH] in choices["choices"]
    is_image = upload.endswith(".png")
    checkpoint = None if is_image else handle_file(str(files[upload]))
    images = [handle_file(str(files[upload]))] if is_image else []
    text = _app_error(
        lambda: client.predict(
            "timm", ARCH, RANDOM_WEIGHTS, checkpoint, "fp32", PRESET_TOLERANCE, images, "", False,
            api_name="/run_convert",
        )
    )  # fmt: skip
    assert named in text and hint in text, text
    assert not files.sentinel.exists()
