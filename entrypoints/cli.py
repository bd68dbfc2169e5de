"""Entrypoint: the ``switchyard`` command line (serve, migrate, chat, models, config, token, version).

It embeds the same container and services as the HTTP app; configuration errors end the process with one line,
not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

from domain.errors import ConfigurationError, ServiceError
from settings import Settings, load_settings
from settings.loader import masked_dict

__all__ = ["main"]

_DEV_SECRET_VAR = "SWITCHYARD_AUTH_JWT_SECRET"  # noqa: S105 - a variable name, not a secret


def _parse_ttl(text: str) -> float:
    """``30m``, ``1h``, ``7d`` or plain seconds; argparse reports anything else (or a non-positive TTL) in one line."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid lifetime {text!r}; use e.g. 30m, 1h, 7d or seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"lifetime must be positive, got {text!r}")
    return seconds


def _needs_dev_secret(settings: Settings) -> bool:
    """auth: only ``local`` with no key of any kind gets a random per-start secret and a printed development token."""
    auth = settings.auth
    no_key = not auth.jwt_secret and not auth.jwks_url and not auth.public_keys  # an empty variable is no key
    return settings.app.env == "local" and auth.dev_token and no_key


def _cmd_serve(args: argparse.Namespace) -> int:
    from container import build_container
    from entrypoints.serve import hypercorn_config, serve_in_process, serve_workers

    if args.host:
        os.environ["SWITCHYARD_HTTP_HOST"] = args.host
    if args.port is not None:
        os.environ["SWITCHYARD_HTTP_PORT"] = str(args.port)
    if args.workers is not None:
        os.environ["SWITCHYARD_HTTP_WORKERS"] = str(args.workers)
    settings = load_settings()
    dev_token = None
    if _needs_dev_secret(settings):
        # A random secret per start, shared with worker processes through the environment (as Jupyter does).
        os.environ[_DEV_SECRET_VAR] = secrets.token_urlsafe(32)
        settings = load_settings()
        assert settings.auth.jwt_secret is not None
        minter = build_container(settings).token_minter()
        dev_token = minter.mint("dev", email="dev@localhost", ttl_s=7 * 86400)
    build_container(settings).token_verifier()  # auth: fail fast on a short secret, unreadable keys, alg 'none'

    config = hypercorn_config(settings)  # graceful shutdown and the listen backlog: see entrypoints/serve.py
    url = f"http://{settings.http.host}:{settings.http.port}"
    print(f"Switchyard {_version()} ({settings.app.env}) listening on {url}  (docs: {url}/docs)", flush=True)
    if dev_token:
        print(f"Development token (valid 7 days): {dev_token}", flush=True)
        print(f'  try: curl -H "Authorization: Bearer {dev_token}" {url}/api/v1/models', flush=True)

    if settings.http.workers > 1:
        _prepare_multiprocess_metrics(settings)  # observability: before any worker imports prometheus_client
        return serve_workers(config, settings.http.workers)

    from entrypoints.http.app import create_app, freeze_heap_after_start

    app = create_app(build_container(settings))
    freeze_heap_after_start(app)  # performance: no full-GC walks of the start-up heap while serving
    serve_in_process(app, config)
    return 0


# --- observability: one /metrics page across Hypercorn workers -------------------------------------------------------
_MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """Point prometheus-client's multiprocess mode at an emptied folder (``PROMETHEUS_MULTIPROC_DIR`` if set, else
    ``<app.data_dir>/prometheus-multiproc``); spawned workers inherit the variable and aggregate through it."""
    if not settings.http.metrics_enabled:
        return
    folder = Path(os.environ.get(_MULTIPROC_VAR) or settings.app.data_dir / "prometheus-multiproc")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # values of a previous run would be summed into this one
        stale.unlink()
    os.environ[_MULTIPROC_VAR] = str(folder.resolve())


# --- persistence: switchyard migrate --------------------------------------------------------------------------------
def _cmd_migrate(args: argparse.Namespace) -> int:
    from container import build_container
    from ports.schema import SchemaMigrator

    container = build_container(load_settings())

    async def migrate() -> str | None:
        try:
            # The engine is an async resource, so the provider returns an awaitable here.
            migrator = await cast("Awaitable[SchemaMigrator]", container.migrator())
            if args.downgrade is not None:
                await migrator.downgrade(args.downgrade)
            else:
                await migrator.upgrade(args.revision)
            current: str | None = await migrator.current()
            return current
        finally:
            result = container.shutdown_resources()
            if result is not None:
                await result

    print(f"database schema at revision {asyncio.run(migrate()) or 'base (empty)'}")
    return 0


# --- chat: switchyard chat / switchyard models, the same services in-process (no HTTP) ------------------------------
async def _with_container(use: Callable[[Any], Awaitable[int]]) -> int:
    from container import build_container

    container = build_container(load_settings())
    try:
        return await use(container)
    finally:
        result = container.shutdown_resources()
        if result is not None:
            await result


def _cmd_models(args: argparse.Namespace) -> int:
    async def show(container: Any) -> int:
        registry = await container.provider_registry()
        for spec in registry.models(args.capability):
            window = f"{spec.context_window:,}" if spec.context_window else "-"
            print(f"{spec.qualified_id:45} {window:>10}  {', '.join(sorted(spec.capabilities))}")
        return 0

    return asyncio.run(_with_container(show))


def _chat_request(args: argparse.Namespace) -> Any:
    from domain.chat import ChatRequest, Message

    metadata = dict(item.split("=", 1) for item in args.meta or () if "=" in item)
    return ChatRequest(
        model=args.model,
        messages=[Message("user", " ".join(args.prompt))],
        system=args.system,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        fallbacks=list(args.fallback or ()),
        metadata=metadata,
    )


def _cmd_chat(args: argparse.Namespace) -> int:
    from domain.types import CustomerId
    from services.chat import ChatCaller
    from services.chat_events import Completed, done_payload, stream_event

    async def talk(container: Any) -> int:
        service = await container.chat_service()
        plan = service.plan(_chat_request(args))
        caller = ChatCaller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}")
        printed = False
        try:
            async for item in service.run(plan, caller):
                event = stream_event(item)
                if args.json:
                    type_, payload = ("done", done_payload(item)) if isinstance(item, Completed) else event or ("", {})
                    if type_:
                        print(json.dumps({"type": type_, "payload": payload}), flush=True)
                elif event is not None and event[0] == "text":
                    print(event[1]["text"], end="", flush=True)
                    printed = True
                elif event is not None and event[0] == "tool_call" and event[1]["phase"] == "start":
                    print(f"[tool call {event[1]['name']}]", end=" ", flush=True)
                    printed = True
                elif isinstance(item, Completed):
                    response = item.response
                    print(flush=True)
                    cost = f"${response.cost_usd:.6f}" if response.cost_usd is not None else "no price"
                    print(
                        f"[{response.model} · {response.finish_reason} · {response.usage.input_tokens} in / "
                        f"{response.usage.output_tokens} out tokens · {cost} · {response.latency_ms:.0f} ms]",
                        file=sys.stderr,
                    )
        except ServiceError:
            if printed:
                print(flush=True)  # end the partial line before the error line on stderr
            raise
        return 0

    return asyncio.run(_with_container(talk))


def _cmd_config(args: argparse.Namespace) -> int:
    if args.list:
        from settings.loader import describe

        for key, variable, default in describe():
            print(f"{key:40} {variable:45} {default}")
        return 0
    print(json.dumps(masked_dict(load_settings()), indent=2, default=str))
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from container import build_container

    settings = load_settings()
    if settings.app.env == "production":
        raise ConfigurationError("SWITCHYARD_ENV", "switchyard token refuses to mint tokens in production")
    minter = build_container(settings).token_minter()
    print(minter.mint(args.sub, email=args.email, scopes=args.scope or (), ttl_s=args.ttl))
    return 0


def _version() -> str:
    from container import package_version

    return package_version()


def _cmd_version(_args: argparse.Namespace) -> int:
    print(_version())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands register their handler as ``func``)."""
    parser = argparse.ArgumentParser(prog="switchyard", description="Switchyard AI backend core")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP/WebSocket server (Hypercorn)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None)
    serve.set_defaults(func=_cmd_serve)

    config = commands.add_parser("config", help="validate and print the effective settings (secrets masked)")
    config.add_argument("--list", action="store_true", help="list every setting, its variable and default")
    config.set_defaults(func=_cmd_config)

    token = commands.add_parser("token", help="mint a development JWT from the configured secret")
    token.add_argument("--sub", required=True)
    token.add_argument("--email", default=None)
    token.add_argument("--scope", action="append")
    token.add_argument("--ttl", default="1h", type=_parse_ttl, help="lifetime, e.g. 30m, 1h, 7d")
    token.set_defaults(func=_cmd_token)

    migrate = commands.add_parser("migrate", help="upgrade (or downgrade) the database schema")
    migrate.add_argument("--revision", default="head", help="upgrade target (default: head)")
    migrate.add_argument("--downgrade", metavar="REVISION", default=None, help="downgrade to REVISION (e.g. base)")
    migrate.set_defaults(func=_cmd_migrate)

    chat = commands.add_parser("chat", help="chat with a model in-process, printing the stream as it arrives")
    chat.add_argument("prompt", nargs="+", help="the user message")
    chat.add_argument("--model", default="fake/echo", help="provider/model, bare id or alias (default: fake/echo)")
    chat.add_argument("--system", default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--fallback", action="append", help="a model to try if the first fails (repeatable)")
    chat.add_argument("--meta", action="append", help="request metadata KEY=VALUE (repeatable)")
    chat.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    chat.add_argument("--json", action="store_true", help="print every event as a JSON line")
    chat.set_defaults(func=_cmd_chat)

    models = commands.add_parser("models", help="list the models this configuration can serve")
    models.add_argument("--capability", default=None, help="only models with this capability")
    models.set_defaults(func=_cmd_models)

    ver = commands.add_parser("version", help="print the version")
    ver.set_defaults(func=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; configuration and service errors print one line and exit 2 / 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as exc:
        print(f"switchyard: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"switchyard: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
