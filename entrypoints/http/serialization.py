"""HTTP boundary: the one cattrs converter for JSON in and out, strict on input, and body reading with limits."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import cattrs
from attrs import has
from cattrs.errors import BaseValidationError
from quart import Response, request

from domain.chat import ContentPart
from domain.errors import (
    FieldError,
    MalformedRequestError,
    PayloadTooLargeError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)

__all__ = ["CONVERTER", "json_response", "read_body", "structure", "structure_query", "unstructure"]

T = TypeVar("T")


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return float(value)


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True, omit_if_default=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_unstructure_hook(frozenset, lambda v: sorted(v))
    converter.register_unstructure_hook(bytes, lambda v: f"<{len(v)} bytes>")
    # ``Message.content`` is text or a list of parts: cattrs needs to be told how to tell them apart.
    converter.register_structure_hook_func(
        lambda t: t == (str | list[ContentPart]), lambda v, _: _structure_content(converter, v)
    )
    return converter


def _structure_content(converter: cattrs.Converter, value: object) -> str | list[ContentPart]:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[ContentPart] = converter.structure(value, list[ContentPart])
        return parts
    raise TypeError("expected a string or a list of content parts")


CONVERTER: Final = _make_converter()


def _field_errors(exc: BaseException) -> list[FieldError]:
    errors: list[FieldError] = []
    for text in cattrs.transform_error(exc):
        reason, _, path = text.rpartition(" @ ")
        errors.append(FieldError(path or "$", reason or text))
    return errors


def structure(data: Any, cls: type[T]) -> T:
    """Structure ``data`` into ``cls``; every problem becomes one ``FieldError`` of a ``RequestValidationError``."""
    if has(cls) and not isinstance(data, Mapping):
        raise RequestValidationError([FieldError("$", f"expected a JSON object, got {type(data).__name__}")])
    try:
        return CONVERTER.structure(data, cls)
    except BaseValidationError as exc:
        raise RequestValidationError(_field_errors(exc)) from None
    except (TypeError, ValueError) as exc:
        raise RequestValidationError([FieldError("$", str(exc))]) from None


def structure_query(cls: type[T]) -> T:
    """Structure the query string into ``cls`` (single values only)."""
    return structure(dict(request.args.items()), cls)


def unstructure(obj: Any) -> Any:
    """Plain JSON-ready data for ``obj``."""
    return CONVERTER.unstructure(obj)


async def read_body(cls: type[T], *, max_bytes: int) -> T:
    """Read, size-check, parse and structure the JSON body of the current request."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"expected Content-Type application/json, got {mimetype or 'none'}", context={"content_type": mimetype}
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLargeError(max_bytes)
    request.body_timeout = 30
    raw = await request.get_data(cache=True, as_text=False)
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(max_bytes)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRequestError(f"body is not valid JSON: {exc}") from None
    return structure(data, cls)


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response for an attrs object (typically an ``ApiResponse``)."""
    body = json.dumps(unstructure(obj), separators=(",", ":"), default=str)
    return Response(body, status=status, headers=dict(headers or {}), content_type="application/json")
