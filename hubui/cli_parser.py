"""The ``hubui`` command's argument parser: every sub-command, its flags and their help.

:func:`build_parser` gets the function that runs each sub-command from :mod:`hubui.cli`, so this module
imports no command code. The library choices come from the registry (:mod:`hubui.libraries`) when the parser
is built, never when this module is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

import hubui
from hubui.errors import InvalidInputError
from hubui.libraries import DEFAULT_SOURCE, get_source, source_names, target_names

Command = Callable[[argparse.Namespace], int]
"""Runs one sub-command and returns its exit code."""

_PORT_HELP = (
    "the app's TCP port; 0 lets the system pick a free one (default: the first free port from 7860, or from "
    "GRADIO_SERVER_PORT); a busy port is an error"
)


def build_parser(commands: Mapping[str, Command], description: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``hubui`` command.

    Args:
        commands: The function of each sub-command, by name (``"space deploy"`` for ``hubui space deploy``);
            the parsed arguments carry it as ``func``.
        description: The ``--help`` description.

    Returns:
        The parser.

    Raises:
        KeyError: ``commands`` lacks a sub-command.
    """
    libraries = source_names()
    parser = argparse.ArgumentParser(prog="hubui", description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "localhub",
        help="run a local server that speaks the Hub's HTTP API",
        description="Run a local server that speaks the Hub's HTTP API. Give it users with a users file "
        "(--config FILE) or the same JSON/YAML text in $HUBUI_LOCALHUB_USERS: tokens given with --user are "
        "visible to every local user in the process list (ps, /proc/PID/cmdline). One server per --root: "
        "a second one on the same root exits with code 2.",
    )
    p.add_argument("--root", help="storage folder (default: ~/.cache/hubui/localhub); one server per root")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    p.add_argument(
        "--user",
        action="append",
        metavar="NAME:TOKEN[:read|write]",
        help="add a user (repeatable). WARNING: every local user can read this token in the process list; "
        "prefer --config FILE or $HUBUI_LOCALHUB_USERS",
    )
    p.add_argument("--org", action="append", metavar="ORG:USER1,USER2", help="add an org (repeatable)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="users file: JSON/YAML with 'users' ([{name, token, role}]) and 'orgs' ([{name, members}]); "
        "keep it chmod 600",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--faults",
        action="store_true",
        help="for tests: serve /_hubui/faults, where a test sets errors (5xx, 429), dropped connections and slow "
        "transfers for the requests that follow (see hubui.localhub.faults); off by default, never expose it",
    )
    p.set_defaults(func=commands["localhub"])

    p = sub.add_parser("app", help="start the Gradio app against HF_ENDPOINT (the real Hub by default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help=_PORT_HELP)
    p.set_defaults(func=commands["app"])

    p = sub.add_parser("demo", help="start an embedded local Hub with a demo user, and the app on it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help=_PORT_HELP)
    p.add_argument("--root", help="storage folder of the embedded Hub (default: ~/.cache/hubui/demo-hub)")
    p.set_defaults(func=commands["demo"])

    p = sub.add_parser("models", help="search a model zoo, or show one model's facts")
    p.add_argument("library", choices=libraries, help="the library: " + " or ".join(libraries))
    p.add_argument("pattern", nargs="?", default="", help="wildcards ('resnet*') or a substring; a name with --facts")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="search pretrained weights ("
        + ", ".join(f"'arch{get_source(name).separator}tag' for {name}" for name in libraries)
        + ")",
    )
    p.add_argument("--limit", type=_positive_int, metavar="N", help="print at most N names")
    p.add_argument("--facts", action="store_true", help="show the facts of the model named by PATTERN")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=commands["models"])

    p = sub.add_parser("convert", help="write a Hub folder for a model and prove logits parity")
    _add_model_flags(p, libraries, out_required=True)
    p.add_argument("--json", action="store_true", help="print the parity report as one JSON object on stdout")
    p.set_defaults(func=commands["convert"])

    p = sub.add_parser("push", help="push a converted folder (or convert and push) to the Hub, then verify it")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="a folder `hubui convert` wrote")
    _add_model_flags(p, libraries, out_required=False)
    p.add_argument("--repo-id", required=True, help="namespace/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.add_argument("--revision", metavar="BRANCH", help="target branch, created from main if missing")
    p.add_argument("--commit-message", help="commit summary")
    p.add_argument("--commit-description", help="commit body")
    p.add_argument("--card", metavar="FILE", help="model card fields, .json or .yaml")
    p.add_argument(
        "--readme", choices=["keep", "replace", "merge"], default="keep", help="what to do with an existing README"
    )
    p.add_argument(
        "--hf-tokenizer-self",
        action="store_true",
        help="open_clip with a Hugging Face tokenizer: the pushed config loads the tokenizer from this repo",
    )
    p.add_argument("--allow-failed-parity", action="store_true", help="push even if parity failed (the card says so)")
    p.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="push random weights (no --pretrained or --checkpoint): not a trained model (the card says so); "
        "refused without this flag",
    )
    p.add_argument("--token", help="Hub token; prefer the HF_TOKEN environment variable (never printed)")
    p.add_argument("--dry-run", action="store_true", help="show what would be committed; upload nothing")
    p.add_argument("--no-verify", action="store_true", help="skip the re-download check after the push")
    p.add_argument(
        "--tag",
        metavar="TAG",
        help="tag the pushed commit (e.g. v1) once the verification passed; an existing tag is refused before "
        "anything is uploaded",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(func=commands["push"])

    p = sub.add_parser(
        "quick",
        help="propose the verified safetensors / model card fix to a Hub repo as a pull request",
        description="Read a Hub model repo (timm, or open_clip's hf-hub: repos) on HF_ENDPOINT; when it lacks "
        "safetensors weights, a model card or the card's library_name / pipeline_tag, load it with the library's "
        "own loader, convert it, prove parity and open a pull request with the fix, then verify the PR's commit. "
        "A repo with nothing to fix gets no PR.",
    )
    p.add_argument("repo_id", metavar="REPO_ID", help="owner/name or hf-hub:owner/name (optionally @branch)")
    p.add_argument("--revision", metavar="BRANCH", help="the branch to read and to open the PR against (main)")
    p.add_argument("--token", help="Hub token; prefer the HF_TOKEN environment variable (never printed)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(func=commands["quick"])

    p = sub.add_parser("batch", help="convert, push and verify every model of a manifest (locally or on Ray)")
    p.add_argument("manifest", help="YAML or JSON file with 'defaults' and 'models'")
    p.add_argument("--workers", type=_positive_int, metavar="N", help="entries at once (default: memory and cores)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each entry as a Ray task (pip install 'hubui[ray]'); ADDRESS of an existing cluster, "
        "else RAY_ADDRESS or a local one",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan per entry (skip / convert + push)")
    p.add_argument(
        "--commit-budget",
        default="100/h",
        metavar="N/PERIOD",
        help="commits all workers may make per period: 100/h (default; the Hub allows about 128), 30/min, 2/10s",
    )
    p.add_argument("--journal", metavar="FILE", help="record of verified entries (default: beside the manifest)")
    p.add_argument("--report", action="append", metavar="FILE", help="write the report: .md Markdown, else JSON")
    p.add_argument("--token", help="Hub token; prefer the HF_TOKEN environment variable (never printed)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    p.set_defaults(func=commands["batch"])

    space = sub.add_parser("space", help="deploy hubui itself as a Hugging Face Space")
    space_sub = space.add_subparsers(dest="space_command", required=True)
    p = space_sub.add_parser("deploy", help="upload space/ and the hubui package as a Gradio Space")
    p.add_argument("--repo-id", required=True, help="namespace/name of the Space")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--space-dir", help="the folder with the Space's README.md, app.py, requirements.txt")
    p.add_argument("--token", help="Hub token; prefer the HF_TOKEN environment variable (never printed)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(func=commands["space deploy"])
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return value


def _shard_size(text: str) -> str:
    from hubui.errors import InvalidInputError
    from hubui.preflight import parse_shard_size

    try:
        parse_shard_size(int(text) if text.isdigit() else text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} ({exc.hint})") from exc
    return text


def _target(text: str) -> str:
    from hubui.libraries import check_target

    try:
        return check_target(text)
    except InvalidInputError as exc:  # argparse prints it as "argument --target: ..." with exit code 2
        raise argparse.ArgumentTypeError(f"{exc.message}. {exc.hint}") from exc


def _add_model_flags(p: argparse.ArgumentParser, libraries: tuple[str, ...], out_required: bool) -> None:
    """The flags that say which model to convert and how (shared by convert and push)."""
    from hubui.spec import PRECISIONS

    g = p.add_argument_group("model" if out_required else "model (instead of --from)")
    g.add_argument(
        "--library",
        choices=libraries,
        help=" or ".join(f"{name} (default)" if name == DEFAULT_SOURCE else name for name in libraries),
    )
    g.add_argument("--model", required=out_required, metavar="ARCH", help="architecture, e.g. resnet50")
    g.add_argument("--pretrained", metavar="TAG", help="pretrained tag, e.g. a1_in1k")
    g.add_argument("--checkpoint", metavar="PATH", help="a local checkpoint (.safetensors, .pth, ...)")
    g.add_argument("--precision", choices=PRECISIONS, help="dtype of the saved weights (default: fp32)")
    g.add_argument("--image-mean", type=float, nargs="+", metavar="M", help="normalisation mean, 3 values")
    g.add_argument("--image-std", type=float, nargs="+", metavar="S", help="normalisation std, 3 values")
    g.add_argument(
        "--image-interpolation", metavar="I", help="resize interpolation: bicubic, bilinear (open_clip also: random)"
    )
    g.add_argument(
        "--image-resize-mode", choices=["shortest", "longest", "squash"], help="open_clip only: how images are resized"
    )
    g.add_argument("--crop-pct", type=float, metavar="X", help="center-crop fraction, 0 < X <= 1")
    g.add_argument("--num-classes", type=int, metavar="N", help="classifier size (a new head for pretrained)")
    g.add_argument("--label-names", metavar="FILE", help="class names: one per line, or a JSON list")
    g.add_argument("--images", nargs="+", metavar="PATH", help="extra parity images of your own")
    g.add_argument("--include-pytorch-bin", action="store_true", help="also write pytorch_model.bin")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    g.add_argument("--seed", type=int, metavar="N", help="seed of random weights when no weights are given")
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help="parity inputs per forward pass (default: chosen from the model's size, 1 to 4)",
    )
    g.add_argument(
        "--max-shard-size",
        type=_shard_size,
        metavar="SIZE",
        help="transformers target: write weights over SIZE as shards with an index (default: 5GB, e.g. 500MB)",
    )
    g.add_argument(
        "--allow-unpushable-size",
        action="store_true",
        help="write a weights file over the Hub's 50 GB limit anyway (the folder cannot be pushed)",
    )
    g.add_argument(
        "--no-memory-check",
        dest="memory_check",
        action="store_false",
        help="do not refuse when MemAvailable looks short of what the rebuild needs",
    )
    installed = hubui.available_targets()
    g.add_argument(
        "--target",
        type=_target,
        metavar="{" + ",".join(installed) + "}",
        help="native: the library's own format (default); transformers: a timm ResNet or ViT as a transformers "
        "model" + ("" if set(target_names()) <= set(installed) else " (needs: pip install 'hubui[transformers]')"),
    )
    g.add_argument(
        "--out",
        required=out_required,
        metavar="DIR",
        help="the folder to write" + ("" if out_required else " (default: a temporary folder)"),
    )


__all__ = ["Command", "build_parser"]
