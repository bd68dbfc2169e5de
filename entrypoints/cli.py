"""Entrypoint: the ``switchyard`` command line (serve, config, token, version).

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
from collections.abc import Callable, Sequence
from typing import Any

from domain.errors import ConfigurationError, ServiceError
from settings import Settings, load_settings
from settings.loader import masked_dict

__all__ = ["main"]

_DEV_SECRET_VAR = "SWITCHYARD_AUTH_JWT_SECRET"  # noqa: S105 - a variable name, not a secret


def _parse_ttl(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _needs_dev_secret(settings: Settings) -> bool:
    auth = settings.auth
    return auth.dev_token and auth.jwt_secret is None and auth.jwks_url is None and not auth.public_keys


def _cmd_serve(args: argparse.Namespace) -> int:
    from hypercorn.config import Config

    from container import build_container

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

    config = Config()
    config.bind = [f"{settings.http.host}:{settings.http.port}"]
    config.workers = settings.http.workers
    config.graceful_timeout = settings.http.graceful_timeout_s
    config.keep_alive_timeout = settings.http.keep_alive_s
    config.accesslog = None
    config.errorlog = None  # hypercorn's messages reach the root logger, which structlog formats
    url = f"http://{settings.http.host}:{settings.http.port}"
    print(f"Switchyard {_version()} ({settings.app.env}) listening on {url}  (docs: {url}/docs)", flush=True)
    if dev_token:
        print(f"Development token (valid 7 days): {dev_token}", flush=True)
        print(f'  try: curl -H "Authorization: Bearer {dev_token}" {url}/api/v1/models', flush=True)

    if settings.http.workers > 1:
        from hypercorn.run import run

        config.application_path = "entrypoints.asgi:app"
        return run(config)

    from hypercorn.asyncio import serve

    from entrypoints.http.app import create_app

    app = create_app(build_container(settings))
    runner: Callable[[Any], Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        pass
    runner(serve(app, config, mode="asgi"))
    return 0


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
    print(minter.mint(args.sub, email=args.email, scopes=args.scope or (), ttl_s=_parse_ttl(args.ttl)))
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
    token.add_argument("--ttl", default="1h", help="lifetime, e.g. 30m, 1h, 7d")
    token.set_defaults(func=_cmd_token)

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
