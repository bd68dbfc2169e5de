"""HTTP boundary (OpenAI door): reading a request body into a wire class, leniently as OpenAI's server does.

The body passes the same limits as the native routes (``limits.max_body_bytes``, ``limits.max_json_depth``, JSON
content type), then msgspec converts it into the wire class: fields the class does not declare are ignored, a
declared field of the wrong type (or a missing required one) is a ``MalformedRequestError`` (400) whose ``param``
names it as the request spells it (``messages[0].role``).
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import msgspec
from quart import current_app, request

from domain.errors import MalformedRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from entrypoints.http.json_input import decode_json
from entrypoints.http.serialization import max_json_depth

__all__ = ["convert", "invalid", "read_wire"]

T = TypeVar("T")
_AT: Final = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING: Final = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def invalid(param: str, message: str) -> MalformedRequestError:
    """A 400 naming ``param``: the door cannot take this value (a wrong type, or a value Switchyard does not serve)."""
    return MalformedRequestError(f"Invalid '{param}': {message}", context={"param": param})


def _refusal(exc: msgspec.ValidationError) -> MalformedRequestError:
    match = _AT.match(str(exc))
    reason, path = (match.group("reason"), match.group("path") or "") if match else (str(exc), "")
    missing = _MISSING.match(reason)
    if missing:
        path = f"{path}.{missing.group('name')}"
        reason = "this required parameter is missing"
    param = path.lstrip(".") or "body"
    return invalid(param, reason)


def convert(data: Any, cls: type[T]) -> T:
    """``data`` (decoded JSON) as ``cls``; a 400 naming the parameter when a declared field has the wrong type."""
    if not isinstance(data, dict):
        raise invalid("body", f"expected a JSON object, got {type(data).__name__}")
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise _refusal(exc) from None


async def read_wire(cls: type[T]) -> T:
    """The current request's JSON body as ``cls``, under the app's size and nesting limits."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"expected Content-Type application/json, got {mimetype or 'none'}", context={"content_type": mimetype}
        )
    limit = int(current_app.config.get("MAX_CONTENT_LENGTH") or 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(limit)
    request.body_timeout = 30
    raw = await request.get_data(cache=True, as_text=False)
    if len(raw) > limit:
        raise PayloadTooLargeError(limit)
    return convert(decode_json(raw, max_depth=max_json_depth()), cls)
