"""Entrypoint: ``switchyard keys create | list | revoke``, the API key service in-process (same as the admin routes).

``keys create`` prints what it made and then the key alone on the last line (``KEY=$(switchyard keys create ... |
tail -n 1)``): the only time the key is ever shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from domain.api_keys import ApiKey
from domain.quotas import LIMIT_NAMES, Limits

__all__ = ["add_keys_command"]

Runner = Callable[[Callable[[Any], Awaitable[int]]], Coroutine[Any, Any, int]]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _limits(limits: Limits) -> str:
    """The key's own limits set, as ``name=value`` pairs (``-``: none of its own)."""
    pairs = [f"{name}={getattr(limits, name):g}" for name in LIMIT_NAMES if getattr(limits, name) is not None]
    return " ".join(pairs) or "-"


def _as_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "customer_id": key.customer_id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "models": None if key.models is None else sorted(key.models),
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
        "limits": {name: getattr(key.limits, name) for name in LIMIT_NAMES},
    }


def _create(args: argparse.Namespace, run: Runner) -> int:
    async def create(container: Any) -> int:
        service = await container.api_keys()
        limits = Limits(args.rpm, args.tpm, args.concurrent, args.daily_usd, args.monthly_usd)
        issued = await service.create(
            args.customer,
            args.name,
            scopes=args.scope or (),
            expires_in_s=args.expires,
            models=args.model,
            limits=limits,
        )
        key = issued.key
        print(f"created {key.id} ({key.prefix}...) for {key.customer_id}, name {key.name!r}")
        print(f"  scopes: {' '.join(sorted(key.scopes)) or '-'}  models: {' '.join(sorted(key.models or ())) or 'all'}")
        print(f"  expires: {_when(key.expires_at)}  limits: {_limits(key.limits)}")
        print("the key (shown only now; store it):")
        print(issued.secret, flush=True)
        return 0

    return asyncio.run(run(create))


def _list(args: argparse.Namespace, run: Runner) -> int:
    async def show(container: Any) -> int:
        service = await container.api_keys()
        for key in await service.list(args.customer):
            if args.json:
                print(json.dumps(_as_json(key)))
                continue
            state = "revoked" if key.revoked else "active"
            print(
                f"{key.id:36}  {key.prefix:11}  {key.customer_id:20}  {key.name:20}  {state:7}  "
                f"expires {_when(key.expires_at):25}  last used {_when(key.last_used_at)}"
            )
        return 0

    return asyncio.run(run(show))


def _revoke(args: argparse.Namespace, run: Runner) -> int:
    async def revoke(container: Any) -> int:
        service = await container.api_keys()
        key = await service.revoke(args.key)
        print(f"revoked {key.id} ({key.prefix}...) of {key.customer_id} at {_when(key.revoked_at)}")
        return 0

    return asyncio.run(run(revoke))


def add_keys_command(commands: Any, *, ttl: Callable[[str], float], run: Runner) -> None:
    """Register ``keys`` on the CLI's sub-command parsers; ``ttl`` parses ``30d``, ``run`` runs a use of the
    container and shuts it down."""
    keys = commands.add_parser("keys", help="issue, list and revoke API keys (sy-...)")
    actions = keys.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", help="issue a key; prints it alone on the last line, once")
    create.add_argument("--customer", required=True, help="the customer the key acts for")
    create.add_argument("--name", required=True, help="what the key is for (e.g. ci)")
    create.add_argument("--scope", action="append", help="a scope the key grants (repeatable)")
    create.add_argument("--model", action="append", help="a model the key may use, or provider/* (repeatable)")
    create.add_argument("--expires", type=ttl, default=None, help="lifetime, e.g. 30d, 12h (default: never)")
    # The key's own limits, enforced with (never instead of) its customer's; unset: only the customer's apply.
    create.add_argument("--rpm", type=int, default=None, help="the key's own requests per minute")
    create.add_argument("--tpm", type=int, default=None, help="the key's own tokens per minute")
    create.add_argument("--concurrent", type=int, default=None, help="the key's own calls in flight at once")
    create.add_argument("--daily-usd", type=float, default=None, help="the key's own daily budget in USD")
    create.add_argument("--monthly-usd", type=float, default=None, help="the key's own monthly budget in USD")
    create.set_defaults(func=lambda args: _create(args, run))

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--customer", default=None, help="only this customer's keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=lambda args: _list(args, run))

    revoke = actions.add_parser("revoke", help="revoke a key by its id or prefix (refused everywhere at once)")
    revoke.add_argument("key", help="the key id (key_...) or its prefix (sy-...)")
    revoke.set_defaults(func=lambda args: _revoke(args, run))
