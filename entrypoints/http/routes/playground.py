"""Blueprint: ``GET /playground``, a page shipped with the server to try the API in a browser (no build step).

The page (``entrypoints/http/static/playground/``: plain HTML, CSS and JavaScript) signs in with a pasted token, picks
a model from ``/api/v1/models``, chats with streaming (and stops, and resumes after a reload from the stream id and
last seq it keeps in ``sessionStorage``), shows the raw events, charts ``/api/v1/usage?group_by=day`` and generates
images. It calls the API like any client; it has no privileges of its own.

``GET /playground/dev-token`` hands the page a development token, only where ``switchyard serve`` prints one anyway:
in ``local``, with ``auth.dev_token`` on and a secret to sign with, to a client on the loopback interface. Anywhere
else it is a 404, as if it did not exist. It lies outside ``/api/``, so CORS never lets another origin read it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Final

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, request

from domain.errors import NotFoundError
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response
from entrypoints.http.static_files import FileShelf
from ports.auth import TokenMinter
from settings import Settings

__all__ = ["DEV_TOKEN_TTL_S", "PLAYGROUND_FILES", "DevToken", "blueprint"]

blueprint = Blueprint("playground", __name__)

PLAYGROUND_FILES: Final = ("index.html", "playground.js", "playground.css")
DEV_TOKEN_TTL_S: Final = 12 * 3600
_SHELF: Final = FileShelf(Path(__file__).resolve().parents[1] / "static" / "playground", PLAYGROUND_FILES, max_age_s=0)


@frozen
class DevToken:
    """A development token for the local playground, and how long it lasts (seconds)."""

    token: str
    expires_in: int


@blueprint.get("/playground")
@documented("The playground: a page to try the API in a browser (chat, streams, usage, images)", tags=["ops"])
async def playground() -> Response:
    return _SHELF.response("index.html")


@blueprint.get("/playground/<name>")
@documented("The playground's own files", tags=["ops"], errors=(404,))
async def playground_file(name: str) -> Response:
    return _SHELF.response(name)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@blueprint.get("/playground/dev-token")
@inject
@documented(
    "A development token for the playground (local environment, loopback clients only; 404 anywhere else)",
    response=DevToken,
    tags=["ops"],
    errors=(404,),
)
async def dev_token(
    settings: Settings = Provide["settings"], minter: TokenMinter = Provide["token_minter"]
) -> Response:
    auth = settings.auth
    if settings.app.env != "local" or not auth.dev_token or not auth.jwt_secret or not _loopback(request.remote_addr):
        raise NotFoundError("no development token here")
    token = minter.mint("dev", email="dev@localhost", ttl_s=DEV_TOKEN_TTL_S)
    return json_response(api_ok(DevToken(token, DEV_TOKEN_TTL_S)), headers={"Cache-Control": "no-store"})
