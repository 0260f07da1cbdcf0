"""The ``hubui`` command line.

Each sub-command is a thin call into the core (:mod:`hubui.pipeline`, :mod:`hubui.catalog`); the
text it prints comes from :mod:`hubui.cli_format`. Results go to stdout (one JSON object with
``--json``); progress, warnings and errors go to stderr. Exit codes: 0 success, 1 parity or
verification failed (or the parity gate refused a push), 2 bad input (message and hint, no traceback),
3 the push landed but its verification could not be completed (e.g. the network dropped), 130 Ctrl+C,
143 SIGTERM (both after the command's clean-up ran: see :mod:`hubui.shutdown`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hubui.errors import ExportError, HubUIError, InvalidInputError, NamespaceForbiddenError, ParityFailedError
from hubui.logsafe import install_log_redaction
from hubui.shutdown import EXIT_TERMINATED, Terminated, interrupt_on_sigterm

if TYPE_CHECKING:
    from hubui.card import CardFields
    from hubui.pipeline import ConvertResult
    from hubui.publishing import PushRequest
    from hubui.spec import LoadedModel, ModelSpec

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_VERIFIED = 0, 1, 2, 3
_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# push flags that describe a model to convert; with --from none of them may be given
_MODEL_DESTS = (
    "library", "model", "pretrained", "checkpoint", "precision", "image_mean", "image_std", "image_interpolation",
    "crop_pct", "num_classes", "label_names", "images", "seed", "include_pytorch_bin", "overwrite", "out", "target",
)  # fmt: skip


def _cmd_localhub(args: argparse.Namespace) -> int:
    from hubui.localhub import build_directory, default_root, serve
    from hubui.localhub.users import USERS_ENV, readable_by_others

    # Popped: nothing this process starts inherits the tokens.
    directory = build_directory(args.user or [], args.org or [], args.config, os.environ.pop(USERS_ENV, None))
    root = args.root or default_root()
    if args.user:
        _err(
            "warning: tokens given with --user are visible to every local user (ps, /proc/PID/cmdline); "
            f"put the users in a file (--config FILE, chmod 600) or in ${USERS_ENV} instead"
        )
    if args.config and readable_by_others(args.config):
        _err(f"warning: {args.config} holds tokens and other local users can read it; chmod 600 {args.config}")
    if not directory.users:
        print("warning: no users given; the local Hub is read-only for everyone", file=sys.stderr)

    def ready(url: str) -> None:
        # The first line of stdout is the base URL: scripts and tests read it.
        print(url, flush=True)
        print(f"serving {root}", file=sys.stderr, flush=True)

    if args.faults:
        print("warning: --faults: anyone who can reach this Hub can make it fail (tests only)", file=sys.stderr)
    serve(root, directory, host=args.host, port=args.port, log_level=args.log_level, on_ready=ready, faults=args.faults)
    return EXIT_OK


def _launch_app(host: str, port: int | None, hub_url: str | None) -> None:
    """Serve the app until SIGTERM or Ctrl+C (see :mod:`hubui.ui.launch`); its URL is printed once it answers."""
    from hubui.ui import build_app
    from hubui.ui.launch import serve

    serve(build_app(hub_url=hub_url), host, port, on_ready=lambda url: print(f"app:       {url}", flush=True))


def _cmd_app(args: argparse.Namespace) -> int:
    _launch_app(args.host, args.port, os.environ.get("HF_ENDPOINT"))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from hubui.localhub import LocalHub, build_directory, default_root
    from hubui.ports import choose_port

    port = choose_port(args.host, args.port)  # a busy --port fails before the Hub starts
    token = "hubui-demo-" + secrets.token_urlsafe(18)
    root = args.root or default_root().parent / "demo-hub"
    hub = LocalHub(root, build_directory([f"demo:{token}:write"], ["demo-org:demo"])).start()
    # The app and every library it drives must talk to the embedded Hub, never the real one.
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    # Single-user demo: the app's sessions start logged in as the demo user (never a real token).
    os.environ["HF_TOKEN"] = token
    os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
    print(f"local Hub: {hub.url}  (data in {root})", flush=True)
    print(f"demo user: demo   demo token: {token}", flush=True)
    try:
        _launch_app(args.host, port, hub.url)
    finally:
        hub.stop()
    return EXIT_OK


# --- output helpers ---------------------------------------------------------------------------------
def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, text: str) -> None:
    """Write the command's result to the real stdout (``--json`` moves everything else to stderr)."""
    stream: TextIO = getattr(args, "stdout", None) or sys.stdout
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def _emit_json(args: argparse.Namespace, data: Any) -> None:
    _emit(args, json.dumps(data, indent=2, allow_nan=False))


# --- models -----------------------------------------------------------------------------------------
def _cmd_space_deploy(args: argparse.Namespace) -> int:
    from hubui.space import deploy_space

    result = deploy_space(args.repo_id, private=args.private, token=args.token, space_dir=args.space_dir)
    if args.json:
        print(json.dumps(result.to_dict()), file=args.stdout)
    else:
        print(result.url, file=args.stdout)
        _err(f"deployed {len(result.files)} files: {result.commit_url}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from hubui.catalog import model_facts, search_models

    if args.facts:
        if not args.pattern:
            raise InvalidInputError("--facts needs a model name", "E.g. `hubui models timm resnet50 --facts`.")
        facts = model_facts(args.library, args.pattern).to_dict()
        if args.json:
            _emit_json(args, facts)
        else:
            from hubui.cli_format import facts_text

            _emit(args, facts_text(facts))
        return EXIT_OK
    entries = search_models(args.library, args.pattern or "", pretrained=args.pretrained, limit=args.limit)
    names = [e.name for e in entries]
    if args.json:
        _emit_json(args, names)
    elif names:
        _emit(args, "\n".join(names))
    if not names:
        _err(
            f"no {args.library} model matches {args.pattern or ''!r}" + ("" if args.pretrained else " (architectures)")
        )
    return EXIT_OK


# --- convert ----------------------------------------------------------------------------------------
def _spec_from_args(args: argparse.Namespace) -> ModelSpec:
    from hubui.cli_format import read_label_names
    from hubui.spec import ModelSpec

    return ModelSpec(
        library=args.library or "timm",
        architecture=args.model,
        pretrained=args.pretrained,
        checkpoint=args.checkpoint,
        num_classes=args.num_classes,
        label_names=read_label_names(args.label_names) if args.label_names else None,
        mean=tuple(args.image_mean) if args.image_mean is not None else None,
        std=tuple(args.image_std) if args.image_std is not None else None,
        interpolation=args.image_interpolation,
        resize_mode=args.image_resize_mode,
        crop_pct=args.crop_pct,
        seed=args.seed if args.seed is not None else 0,
    )


def _run_convert(args: argparse.Namespace, out_dir: Path) -> ConvertResult:
    """Convert as the model flags say, with stage lines and a parity bar on stderr.

    Cheap checks come first, so that a typo costs no model load: the spec's values and the image
    paths, then the model, then the images' contents, then export and parity.
    """
    from hubui.cli_format import BatchBar
    from hubui.loading import load_model

    spec = _spec_from_args(args)
    images = tuple(args.images or ())
    for image in images:
        if not Path(image).expanduser().is_file():
            raise InvalidInputError(f"Image file not found: {image!r}", "Check the --images paths.")
    target = args.target or "native"
    if target == "transformers":
        from hubui.to_transformers import check_convertible_name

        check_convertible_name(spec)  # a model transformers cannot express is refused before it is loaded
    from hubui.outdir import check_out_dir

    check_out_dir(out_dir, args.overwrite)  # a folder in the way (user files, the current directory) costs no load
    if spec.pretrained is None and spec.checkpoint is None:
        _err(f"no weights given: random weights, seed {spec.seed}")
    name = f"{spec.library}:{spec.architecture}" + (f".{spec.pretrained}" if spec.pretrained else "")
    _err(f"[load] loading {name}")
    loaded = load_model(spec, progress=lambda message: _err(f"[load] {message}"))

    from hubui.parity import load_image
    from hubui.pipeline import ConvertOptions, iter_convert

    for image in images:  # an unreadable image fails before anything is written
        load_image(image)
    options = ConvertOptions(
        out_dir=out_dir,
        precision=args.precision or "fp32",
        images=images,
        include_pytorch_bin=args.include_pytorch_bin,
        overwrite=args.overwrite,
        target=target,
    )
    bar = BatchBar("parity")
    try:
        for event in iter_convert(spec, options, loaded=loaded):
            if event.stage == "parity" and event.report is not None:
                bar.update(event.report)
                continue
            bar.close()
            _err(f"[{event.stage}] {event.message}")
            if event.result is not None:
                return event.result
    finally:
        bar.close()
    raise ExportError("The conversion ended without a result", "Report this as a hubui bug.")


def _print_convert(args: argparse.Namespace, result: ConvertResult, to_stderr: bool = False) -> None:
    from hubui.cli_format import parity_text

    text = parity_text(result.report.to_dict(), result.export.files, str(result.export.folder))
    if to_stderr:
        _err(text)
    else:
        _emit(args, text)


def _cmd_convert(args: argparse.Namespace) -> int:
    result = _run_convert(args, Path(args.out))
    if args.json:
        from hubui.cli_format import convert_dict

        _emit_json(args, convert_dict(result))
    else:
        _print_convert(args, result)
    return EXIT_OK if result.passed else EXIT_FAILED


# --- push -------------------------------------------------------------------------------------------
def _given_model_flags(args: argparse.Namespace) -> list[str]:
    given = [d for d in _MODEL_DESTS if getattr(args, d, None) is not None and getattr(args, d) is not False]
    return ["--" + d.replace("_", "-") for d in given]


def _card_source(result: ConvertResult) -> str | None:
    """Where the weights came from, for the card; a local checkpoint is named by file only."""
    spec = result.loaded.spec
    if spec.checkpoint is not None:
        return f"checkpoint {Path(spec.checkpoint).name}"
    return result.loaded.source or None


def _cmd_push(args: argparse.Namespace) -> int:
    from hubui import auth
    from hubui.card import load_card_file
    from hubui.publishing import PushRequest, validate_branch, validate_repo_id

    given = _given_model_flags(args)
    if args.from_dir is not None and given:
        raise InvalidInputError(
            f"--from {args.from_dir!r} cannot be combined with {', '.join(given)}",
            "Push an existing folder with --from, or convert and push with --model and its flags.",
        )
    if args.from_dir is None and args.model is None:
        raise InvalidInputError("Nothing to push: give --from DIR or --model ARCH", "See `hubui push --help`.")
    # Everything cheap first: a typo must not cost a conversion.
    namespace, _ = validate_repo_id(args.repo_id)
    validate_branch(args.revision)
    fields: CardFields | None = load_card_file(args.card) if args.card else None
    # Who is pushing, before a conversion or the model libraries load (the push checks it again).
    identity = auth.whoami(args.token)
    try:
        auth.require_write(identity, namespace)
    except NamespaceForbiddenError:
        if not args.create_pr:
            raise  # a PR onto someone else's existing repo is allowed: the push checks that the repo exists
    with contextlib.ExitStack() as stack:
        original = source = None
        if args.from_dir is not None:
            folder = Path(args.from_dir).expanduser()
        else:
            if args.out is None:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hubui-push-"))) / "export"
            else:
                folder = Path(args.out)
            converted = _run_convert(args, folder)
            _print_convert(args, converted, to_stderr=True)
            folder, original, source = converted.export.folder, converted.loaded, _card_source(converted)
            if not converted.passed and not args.allow_failed_parity:
                raise ParityFailedError(
                    f"Parity {converted.report.verdict} for the {converted.report.precision} export of "
                    f"{args.model!r}; nothing was pushed.",
                    "Fix the conversion, or push with --allow-failed-parity (the card then says so).",
                )
        request_kwargs: dict[str, Any] = {}
        if args.commit_message is not None:
            request_kwargs["commit_message"] = args.commit_message
        request = PushRequest(
            folder=folder,
            repo_id=args.repo_id,
            private=args.private,
            branch=args.revision,
            create_pr=args.create_pr,
            commit_description=args.commit_description or "",
            readme_mode=args.readme,
            allow_failed_parity=args.allow_failed_parity,
            hf_tokenizer_self=args.hf_tokenizer_self,
            tag=args.tag,
            **request_kwargs,
        )
        return (
            _dry_run(args, request, fields, source)
            if args.dry_run
            else _publish(args, request, fields, original, source)
        )


def _dry_run(args: argparse.Namespace, request: PushRequest, fields: CardFields | None, source: str | None) -> int:
    from hubui.cli_format import plan_text
    from hubui.pipeline import dry_run

    plan = dry_run(request, fields, token=args.token, source=source).to_dict()
    if args.json:
        _emit_json(args, plan)
    else:
        _emit(args, plan_text(plan))
    return EXIT_OK


def _publish(
    args: argparse.Namespace,
    request: PushRequest,
    fields: CardFields | None,
    original: LoadedModel | None,
    source: str | None,
) -> int:
    from hubui.cli_format import BatchBar, publish_text
    from hubui.pipeline import publish

    bar = BatchBar("verify")

    def progress(message: str) -> None:
        bar.close()
        _err(f"[push] {message}")

    try:
        result = publish(
            request,
            fields,
            token=args.token,
            original=original,
            source=source,
            verify=not args.no_verify,
            progress=progress,
            on_report=bar.update,
        )
    finally:
        bar.close()
    data = result.to_dict()
    if args.json:
        _emit_json(args, data)
    else:
        _emit(args, publish_text(data, verify=not args.no_verify))
    status = result.verification.status if result.verification is not None else None
    if status == "not completed":
        # Its own exit code: a script must not read "landed, unchecked" as verified, nor as a wrong model.
        _err("warning: the push landed but its verification was NOT completed; check the model yourself.")
        return EXIT_NOT_VERIFIED
    return EXIT_FAILED if status == "failed" else EXIT_OK


# --- batch ------------------------------------------------------------------------------------------
def _cmd_batch(args: argparse.Namespace) -> int:
    from hubui.batching import batch

    result = batch(
        args.manifest,
        workers=args.workers,
        ray=args.ray,
        dry_run=args.dry_run,
        commit_budget=args.commit_budget,
        journal=args.journal,
        token=args.token,
        report=args.report,
    )
    if args.json:
        _emit_json(args, result.to_dict())
    else:
        _emit(args, result.to_text())
    return result.exit_code


_PORT_HELP = (
    "the app's TCP port; 0 lets the system pick a free one (default: the first free port from 7860, or from "
    "GRADIO_SERVER_PORT); a busy port is an error"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hubui`` command."""
    parser = argparse.ArgumentParser(prog="hubui", description=__doc__.splitlines()[0] if __doc__ else None)
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
    p.set_defaults(func=_cmd_localhub)

    p = sub.add_parser("app", help="start the Gradio app against HF_ENDPOINT (the real Hub by default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help=_PORT_HELP)
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser("demo", help="start an embedded local Hub with a demo user, and the app on it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help=_PORT_HELP)
    p.add_argument("--root", help="storage folder of the embedded Hub (default: ~/.cache/hubui/demo-hub)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("models", help="search a model zoo, or show one model's facts")
    p.add_argument("library", choices=["timm", "open_clip"], help="the library: timm or open_clip")
    p.add_argument("pattern", nargs="?", default="", help="wildcards ('resnet*') or a substring; a name with --facts")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="search pretrained weights ('arch.tag' for timm, 'arch:tag' for open_clip)",
    )
    p.add_argument("--limit", type=_positive_int, metavar="N", help="print at most N names")
    p.add_argument("--facts", action="store_true", help="show the facts of the model named by PATTERN")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("convert", help="write a Hub folder for a model and prove logits parity")
    _add_model_flags(p, out_required=True)
    p.add_argument("--json", action="store_true", help="print the parity report as one JSON object on stdout")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("push", help="push a converted folder (or convert and push) to the Hub, then verify it")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="a folder `hubui convert` wrote")
    _add_model_flags(p, out_required=False)
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
    p.set_defaults(func=_cmd_push)

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
    p.set_defaults(func=_cmd_batch)

    space = sub.add_parser("space", help="deploy hubui itself as a Hugging Face Space")
    space_sub = space.add_subparsers(dest="space_command", required=True)
    p = space_sub.add_parser("deploy", help="upload space/ and the hubui package as a Gradio Space")
    p.add_argument("--repo-id", required=True, help="namespace/name of the Space")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--space-dir", help="the folder with the Space's README.md, app.py, requirements.txt")
    p.add_argument("--token", help="Hub token; prefer the HF_TOKEN environment variable (never printed)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(func=_cmd_space_deploy)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return value


def _target(text: str) -> str:
    from hubui.to_transformers import check_target

    try:
        return check_target(text)
    except InvalidInputError as exc:  # argparse prints it as "argument --target: ..." with exit code 2
        raise argparse.ArgumentTypeError(f"{exc.message}. {exc.hint}") from exc


def _add_model_flags(p: argparse.ArgumentParser, out_required: bool) -> None:
    """The flags that say which model to convert and how (shared by convert and push)."""
    from hubui.spec import PRECISIONS

    g = p.add_argument_group("model" if out_required else "model (instead of --from)")
    g.add_argument("--library", choices=["timm", "open_clip"], help="timm (default) or open_clip")
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
    from hubui.to_transformers import available_targets

    g.add_argument(
        "--target",
        type=_target,
        metavar="{" + ",".join(available_targets()) + "}",
        help="native: the library's own format (default); transformers: a timm ResNet or ViT as a transformers "
        "model" + ("" if "transformers" in available_targets() else " (needs: pip install 'hubui[transformers]')"),
    )
    g.add_argument(
        "--out",
        required=out_required,
        metavar="DIR",
        help="the folder to write" + ("" if out_required else " (default: a temporary folder)"),
    )


def _secrets(args: argparse.Namespace) -> list[str]:
    values = [getattr(args, "token", None), *(os.environ.get(v) for v in _TOKEN_VARS)]
    return [v.strip() for v in values if v and v.strip()]


def _scrub(text: str, secrets_: Sequence[str]) -> str:
    for value in secrets_:
        text = text.replace(value, "<token>")
    return text


@contextlib.contextmanager
def _stdout_for(args: argparse.Namespace) -> Iterator[None]:
    """With ``--json``, keep the real stdout for the result and send stray prints to stderr."""
    args.stdout = sys.stdout
    if not getattr(args, "json", False):
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hubui`` command and return its exit code.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when parity or the verification failed (or the parity gate refused a push),
        2 for bad input or any other hubui error (message and hint on stderr), 130 when interrupted
        (Ctrl+C), 143 when stopped by SIGTERM.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    # huggingface_hub prints its warnings through its own handler; don't print them a second time.
    logging.getLogger("huggingface_hub").propagate = False
    install_log_redaction()  # signed LFS links never reach the terminal, even with -v
    try:
        with interrupt_on_sigterm(), _stdout_for(args):
            return int(args.func(args))
    except HubUIError as exc:
        hidden = _secrets(args)
        _err(f"error: {_scrub(exc.message, hidden)}")
        if exc.hint:
            _err(f"hint: {_scrub(exc.hint, hidden)}")
        return EXIT_FAILED if isinstance(exc, ParityFailedError) else EXIT_BAD_INPUT
    except Terminated:
        _err(f"hubui {args.command}: stopped by SIGTERM")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        return 130
