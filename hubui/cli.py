"""The ``hubui`` command line.

Each sub-command is a thin call into the core; errors become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence

from hubui.errors import HubUIError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_localhub(args: argparse.Namespace) -> int:
    from hubui.localhub import build_directory, default_root, serve

    directory = build_directory(args.user or [], args.org or [], args.config)
    root = args.root or default_root()
    if not directory.users:
        print("warning: no --user given; the local Hub is read-only for everyone", file=sys.stderr)

    def ready(url: str) -> None:
        # The first line of stdout is the base URL: scripts and tests read it.
        print(url, flush=True)
        print(f"serving {root}", file=sys.stderr, flush=True)

    serve(root, directory, host=args.host, port=args.port, log_level=args.log_level, on_ready=ready)
    return EXIT_OK


def _launch_app(host: str, port: int, hub_url: str | None) -> None:
    from hubui.ui import build_app

    build_app(hub_url=hub_url).launch(server_name=host, server_port=port, show_error=True)


def _cmd_app(args: argparse.Namespace) -> int:
    _launch_app(args.host, args.port, os.environ.get("HF_ENDPOINT"))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from hubui.localhub import LocalHub, build_directory, default_root

    token = "hubui-demo-" + secrets.token_urlsafe(18)
    root = args.root or default_root().parent / "demo-hub"
    hub = LocalHub(root, build_directory([f"demo:{token}:write"], ["demo-org:demo"])).start()
    # The app and every library it drives must talk to the embedded Hub, never the real one.
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    print(f"local Hub: {hub.url}  (data in {root})", flush=True)
    print(f"demo user: demo   demo token: {token}", flush=True)
    print(f"app:       http://{args.host}:{args.port}", flush=True)
    try:
        _launch_app(args.host, args.port, hub.url)
    finally:
        hub.stop()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hubui`` command."""
    parser = argparse.ArgumentParser(prog="hubui", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("localhub", help="run a local server that speaks the Hub's HTTP API")
    p.add_argument("--root", help="storage folder (default: ~/.cache/hubui/localhub)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    p.add_argument("--user", action="append", metavar="NAME:TOKEN[:read|write]", help="add a user (repeatable)")
    p.add_argument("--org", action="append", metavar="ORG:USER1,USER2", help="add an org (repeatable)")
    p.add_argument("--config", help="JSON/YAML file with 'users' and 'orgs'")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_cmd_localhub)

    p = sub.add_parser("app", help="start the Gradio app against HF_ENDPOINT (the real Hub by default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser("demo", help="start an embedded local Hub with a demo user, and the app on it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--root", help="storage folder of the embedded Hub (default: ~/.cache/hubui/demo-hub)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hubui`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except HubUIError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
