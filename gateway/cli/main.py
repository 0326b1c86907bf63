"""The ``lakegate`` command: serve, demo, submit, get, cancel, runs, check-config, emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway import __version__, logs
from gateway.cli.commands import add_client_commands
from gateway.cli.startup import EXIT_STARTUP, Where, config_line, describe
from gateway.cli.webhooks import add_webhook_commands
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings, sdk_env

Handler = Callable[[argparse.Namespace], int]


def _check_config(args: argparse.Namespace) -> int:
    from gateway.cli.preflight import Files, run_checks

    settings = _load_or_report(args.config)
    if settings is None:
        return 2
    files = Files(gateway=args.config, tenants=settings.tenants_file or args.config)
    findings = run_checks(settings, files, os.environ)
    for finding in findings:
        print(finding.line(), file=sys.stderr)
    errors = [f for f in findings if f.level == "error" or args.strict]
    if errors:
        kind = "problem(s)" if not args.strict else "problem(s) or warning(s) (--strict)"
        print(f"{args.config}: {len(errors)} {kind}", file=sys.stderr)
        return 2
    namespaces = len(settings.tenants.namespaces)
    warned = f"; {len(findings)} warning(s)" if findings else ""
    print(
        f"{args.config}: ok ({len(settings.workspaces)} workspace(s), {namespaces} "
        f"namespace(s)){warned}"
    )
    return 0


def _load_or_report(path: str) -> Settings | None:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"configuration is invalid ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    where = Where(config=args.config)
    try:
        settings = load_settings(args.config)
        # The Databricks SDK's environment (the gateway's own identity), checked before
        # anything starts: one line, exit 2, never a traceback.
        environment = sdk_env.check(settings, os.environ)
        if environment:
            raise ConfigError(environment)
    except ConfigError as exc:
        if args.debug:
            raise
        print(config_line(exc, where), file=sys.stderr)
        return EXIT_STARTUP
    from gateway.cli.serve import run

    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    metrics = settings.server.metrics_listener
    where = Where(
        args.config,
        host,
        port,
        ledger=settings.store.sqlite_path if settings.store.backend == "sqlite" else "",
        other_ports=((metrics[1], "server.metrics_port"),) if metrics else (),
    )
    try:
        return run(
            settings,
            host=args.host,
            port=args.port,
            source=lambda: load_settings(args.config),
            debug=args.debug,
        )
    except Exception as exc:
        # A gateway-wide problem is one line naming cause and fix; --debug keeps the traceback.
        line = None if args.debug else describe(exc, where)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EXIT_STARTUP


def _demo(args: argparse.Namespace) -> int:
    logs.configure(level=args.log_level, fmt="console")
    from pathlib import Path

    from gateway.demo import run_demo

    where = Where(
        "(demo)",
        "127.0.0.1",
        args.port,
        ledger="" if args.store == "postgres" else str(Path(args.data_dir) / "demo.db"),
        port_flag="--port",
        other_ports=((args.emulator_port, "--emulator-port"),) if args.emulator_port else (),
    )
    if args.store == "postgres" and not args.dsn:
        print("lakegate: demo --store postgres needs --dsn postgresql://...", file=sys.stderr)
        return EXIT_STARTUP
    store = {"backend": "postgres", "dsn": args.dsn} if args.store == "postgres" else None
    try:
        return _run_until_interrupted(
            run_demo(
                port=args.port,
                emulator_port=args.emulator_port,
                data_dir=Path(args.data_dir),
                store=store,
            )
        )
    except Exception as exc:
        line = describe(exc, where)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EXIT_STARTUP


def _emulator(args: argparse.Namespace) -> int:
    logs.configure(level=args.log_level)
    if args.service == "databricks":
        from gateway.emulator.databricks import load_config, serve

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        return _run_until_interrupted(serve(config, host=args.host, port=args.port))
    if args.service == "kubernetes":
        from gateway.emulator import kubernetes as kube_emulator

        try:
            kube_config = kube_emulator.load_config(args.config)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        return _run_until_interrupted(
            kube_emulator.serve(kube_config, host=args.host, port=args.port)
        )
    print(f"unknown emulator '{args.service}'", file=sys.stderr)
    return 2


def _run_until_interrupted(coro: Coroutine[Any, Any, None]) -> int:
    # Ctrl-C is how people stop the demo and the emulator; it is not an error.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakegate",
        description="Multi-tenant gateway between job schedulers and the Databricks Jobs API.",
    )
    parser.add_argument("--version", action="version", version=f"lakegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_client_commands(sub)
    add_webhook_commands(sub)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="config/gateway.yaml")
    serve.add_argument("--host", default=None, help="overrides server.host")
    serve.add_argument("--port", type=int, default=None, help="overrides server.port")
    serve.add_argument(
        "--debug", action="store_true", help="debug logs, and a traceback on a start-up error"
    )
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser("demo", help="run the gateway with an emulated workspace")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--emulator-port", type=int, default=0, help="default: any free port")
    demo.add_argument("--data-dir", default=".lakegate", help="where the demo ledger lives")
    demo.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    demo.add_argument(
        "--dsn",
        default=os.environ.get("LAKEGATE_DEMO_DSN"),
        help="the PostgreSQL ledger for --store postgres (default: $LAKEGATE_DEMO_DSN)",
    )
    demo.add_argument("--log-level", default="warning")
    demo.set_defaults(handler=_demo)

    check = sub.add_parser("check-config", help="validate gateway.yaml and its tenants file")
    check.add_argument("--config", default="config/gateway.yaml")
    check.add_argument("--strict", action="store_true", help="warnings fail the check too")
    check.set_defaults(handler=_check_config)

    emulator = sub.add_parser("emulator", help="run an emulated upstream for tests and demos")
    emulator.add_argument("service", choices=["databricks", "kubernetes"])
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8081)
    emulator.add_argument("--config", default=None, help="emulator YAML (default: built in)")
    emulator.add_argument("--log-level", default="info")
    emulator.set_defaults(handler=_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
