"""The ``hubui`` command line.

Each sub-command is a thin call into the core (:mod:`hubui.pipeline`, :mod:`hubui.catalog`); its flags
are declared in :mod:`hubui.cli_parser` and the text it prints comes from :mod:`hubui.cli_format`.
Results go to stdout (one JSON object with ``--json``); progress, warnings and errors go to stderr.
Exit codes: 0 success, 1 parity or verification failed (or the parity gate refused a push), 2 bad input
(message and hint, no traceback; also a push of random weights without --allow-random-weights), 3 the push
landed but its verification could not be completed (e.g. the network dropped), 130 Ctrl+C, 143 SIGTERM (both after
the command's clean-up ran: see :mod:`hubui.shutdown`).
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

from hubui.errors import (
    ExportError,
    HubUIError,
    InvalidInputError,
    NamespaceForbiddenError,
    ParityFailedError,
    RandomWeightsError,
)
from hubui.libraries import DEFAULT_SOURCE, NATIVE
from hubui.logsafe import install_log_redaction
from hubui.shutdown import EXIT_TERMINATED, Terminated, interrupt_on_sigterm

if TYPE_CHECKING:
    from hubui.card import CardFields
    from hubui.parity import ParityReport
    from hubui.pipeline import ConvertResult
    from hubui.publishing import PushRequest
    from hubui.spec import LoadedModel, ModelSpec

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_VERIFIED = 0, 1, 2, 3
_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# push flags that describe a model to convert; with --from none of them may be given
_MODEL_DESTS = (
    "library", "model", "pretrained", "checkpoint", "precision", "image_mean", "image_std", "image_interpolation",
    "crop_pct", "num_classes", "label_names", "images", "seed", "include_pytorch_bin", "overwrite", "out", "target",
    "batch_size",
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
    from hubui.ports import choose_port

    port = choose_port(args.host, args.port)  # a busy --port fails before the Hub starts
    # The app and every library it drives must talk to the embedded Hub, never the real one. huggingface_hub
    # reads these once, when it is imported (the local Hub's own modules import it), so they are set first.
    hub_port = choose_port("127.0.0.1", 0)
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{hub_port}"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    from hubui.localhub import LocalHub, build_directory, default_root

    token = "hubui-demo-" + secrets.token_urlsafe(18)
    root = args.root or default_root().parent / "demo-hub"
    hub = LocalHub(root, build_directory([f"demo:{token}:write"], ["demo-org:demo"]), port=hub_port).start()
    # Single-user demo: the app's sessions start logged in as the demo user (never a real token).
    os.environ["HF_TOKEN"] = token
    os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
    print(f"local Hub: {hub.url}  (data in {root})", flush=True)
    print(f"demo user: demo   demo token: {token}", flush=True)
    try:
        from hubui.demo_seed import seed_for_demo

        print(seed_for_demo(hub.url, token), flush=True)  # one honestly labelled random-weights model
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
            raise InvalidInputError(
                "--facts needs a model name", f"E.g. `hubui models {DEFAULT_SOURCE} resnet50 --facts`."
            )
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
        library=args.library or DEFAULT_SOURCE,
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
    """Convert as the model flags say, with a line per stage and the progress within it on stderr.

    Cheap checks come first, so that a typo costs no model load: the spec's values and the image
    paths, then the model, then the images' contents, then export and parity.
    """
    from hubui.cli_progress import StageLines, ticking
    from hubui.loading import load_model

    spec = _spec_from_args(args)
    images = tuple(args.images or ())
    for image in images:
        if not Path(image).expanduser().is_file():
            raise InvalidInputError(f"Image file not found: {image!r}", "Check the --images paths.")
    target = args.target or NATIVE
    from hubui.libraries import target_format

    # a model the target cannot express is refused before it is loaded
    target_format(spec.library, target).check_source(spec)
    from hubui.outdir import check_out_dir

    check_out_dir(out_dir, args.overwrite)  # a folder in the way (user files, the current directory) costs no load
    if spec.pretrained is None and spec.checkpoint is None:
        _err(f"no weights given: random weights, seed {spec.seed}")
    name = f"{spec.library}:{spec.architecture}" + (f".{spec.pretrained}" if spec.pretrained else "")
    # The work stays in this (main) thread, where Ctrl+C and SIGTERM unwind it; a thread only redraws.
    with ticking(StageLines(sys.stderr)) as lines:
        lines.update("load", f"loading {name}")
        loaded = load_model(spec, progress=lambda message: lines.say("load", message))

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
            batch_size=getattr(args, "batch_size", None),
            target=target,
            max_shard_size=_shard_size(getattr(args, "max_shard_size", None)),
            allow_unpushable_size=getattr(args, "allow_unpushable_size", False),
            memory_check=getattr(args, "memory_check", True),
        )
        for event in iter_convert(spec, options, loaded=loaded):
            lines.event(event)
            if event.result is not None:
                return event.result
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
    """The model the card says it was converted from (a pretrained tag's Hub repo); ``None`` for the format's
    ``library:architecture``. The card's own sentence on the weights comes from ``parity.json``'s origin, so a
    checkpoint (named there by file name and sha256, never by path) and random weights are not named twice."""
    spec = result.loaded.spec
    if spec.checkpoint is not None or (spec.pretrained is None and spec.hf_hub_id is None):
        return None
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
    if args.from_dir is None and args.pretrained is None and args.checkpoint is None and not args.allow_random_weights:
        # Refused before the conversion: the push gate would refuse the folder anyway.
        seed = args.seed if args.seed is not None else 0
        raise RandomWeightsError(
            f"No --pretrained or --checkpoint given: {args.model!r} would be pushed with random weights (seed {seed}), "
            "not a trained model; nothing was converted or pushed."
        )
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
            from hubui.provenance import describe_origin, read_weights_origin

            _err(f"weights: {describe_origin(read_weights_origin(folder))}")  # an older folder: "not recorded"
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
            allow_random_weights=args.allow_random_weights,
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
    from hubui.cli_format import publish_text
    from hubui.cli_progress import StageLines, ticking
    from hubui.pipeline import publish

    with ticking(StageLines(sys.stderr)) as lines:

        def on_report(report: ParityReport) -> None:
            done = report.batches_done / max(report.batches_total, 1)
            lines.update("verify", f"parity batch {report.batches_done}/{report.batches_total}", stage_fraction=done)

        result = publish(
            request,
            fields,
            token=args.token,
            original=original,
            source=source,
            verify=not args.no_verify,
            progress=lambda message: lines.say("push", message),
            on_report=on_report,
        )
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


# --- quick ------------------------------------------------------------------------------------------
def _cmd_quick(args: argparse.Namespace) -> int:
    from hubui.quick import QuickRequest, iter_quick

    result = None
    for event in iter_quick(QuickRequest(args.repo_id, revision=args.revision, token=args.token)):
        if event.result is None:
            _err(f"[{event.stage}] {event.message}")
        result = event.result or result
    if result is None:
        raise ExportError("Quick mode ended without a result", "Report this as a hubui bug.")
    if args.json:
        _emit_json(args, result.to_dict())
    else:
        _emit(args, result.to_text())
    if result.verification == "not completed":
        return EXIT_NOT_VERIFIED
    return EXIT_OK if result.ok else EXIT_FAILED


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hubui`` command (built by :func:`hubui.cli_parser.build_parser`)."""
    from hubui.cli_parser import build_parser as build

    commands = {
        "localhub": _cmd_localhub,
        "app": _cmd_app,
        "demo": _cmd_demo,
        "models": _cmd_models,
        "convert": _cmd_convert,
        "push": _cmd_push,
        "quick": _cmd_quick,
        "batch": _cmd_batch,
        "space deploy": _cmd_space_deploy,
    }
    return build(commands, description=__doc__.splitlines()[0] if __doc__ else None)


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


def _shard_size(text: str | None) -> str | int | None:
    """``--max-shard-size``: a plain number is bytes, anything else a size such as ``500MB``."""
    return int(text) if text is not None and text.isdigit() else text


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
