"""HTTP boundary: the one cattrs converter for JSON in and out, strict on input, and reading bodies and WebSocket
messages under the size and nesting-depth limits (``limits.*``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, get_args, get_origin

import cattrs
from attrs import has
from cattrs.cols import list_structure_factory
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from quart import Response, current_app, request

from domain.chat import ContentPart
from domain.errors import (
    FieldError,
    MalformedRequestError,
    PayloadTooLargeError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)
from entrypoints.http.json_input import decode_json
from settings import Settings

__all__ = [
    "CONVERTER",
    "WIRE_NAME",
    "json_response",
    "max_json_depth",
    "read_body",
    "read_message",
    "structure",
    "structure_query",
    "unstructure",
    "wire_names",
]

T = TypeVar("T")

# attrs field metadata: the field's name in JSON and query strings when Python cannot spell it (``from`` is a
# keyword, so ``from_: ... = field(metadata={WIRE_NAME: "from"})``). The converter and the OpenAPI document both
# read it, so they cannot disagree.
WIRE_NAME: Final = "wire_name"


def wire_names(cls: Any) -> dict[str, str]:
    """Attribute name -> wire name for the fields of attrs class ``cls`` that declare ``WIRE_NAME`` (else empty)."""
    fields = getattr(cls, "__attrs_attrs__", ()) if isinstance(cls, type) else ()
    return {a.name: a.metadata[WIRE_NAME] for a in fields if WIRE_NAME in a.metadata}


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
    converter.register_structure_hook_factory(
        lambda t: bool(wire_names(t)),
        lambda t: make_dict_structure_fn(t, converter, **_renamed(t)),
    )
    converter.register_unstructure_hook_factory(
        lambda t: bool(wire_names(t)),
        lambda t: make_dict_unstructure_fn(t, converter, **_renamed(t)),
    )
    # cattrs makes a list of any iterable: "stop": "END" would become ["E", "N", "D"]. A JSON array is required.
    arrays: Any = _arrays_only  # cattrs' factory type wants its own hook signature
    converter.register_structure_hook_factory(_is_sequence, arrays)
    converter.register_unstructure_hook(frozenset, lambda v: sorted(v))
    converter.register_unstructure_hook(bytes, lambda v: f"<{len(v)} bytes>")
    # ``Message.content`` is text or a list of parts: cattrs needs to be told how to tell them apart.
    converter.register_structure_hook_func(
        lambda t: t == (str | list[ContentPart]), lambda v, _: _structure_content(converter, v)
    )
    return converter


def _is_sequence(type_: Any) -> bool:
    """``list[X]`` and ``tuple[X, ...]``: the request fields that hold a JSON array."""
    origin, args = get_origin(type_), get_args(type_)
    return origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis)


def _arrays_only(type_: Any, converter: cattrs.Converter) -> Callable[[object, Any], Any]:
    """The sequence hook, refusing anything but a JSON array (a string is iterable, but no list of strings)."""
    element: Any = list[get_args(type_)[0]] if get_args(type_) else list  # type: ignore[misc]
    items = list_structure_factory(element, converter)
    as_tuple = get_origin(type_) is tuple

    def structure_sequence(value: object, _type: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected an array, got {type(value).__name__}")
        structured: list[Any] = items(value, list)
        return tuple(structured) if as_tuple else structured

    return structure_sequence


def _renamed(cls: Any) -> dict[str, Any]:
    return {name: override(rename=wire) for name, wire in wire_names(cls).items()}


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


def max_json_depth() -> int:
    """The configured nesting-depth limit for JSON from clients (``limits.max_json_depth``) of the current app."""
    # The settings provider called as it is: ``@inject`` of a ``settings.provided...`` chain cost ~6 µs a request.
    settings: Settings = current_app.extensions["container"].settings()
    return settings.limits.max_json_depth


async def read_body(cls: type[T], *, max_bytes: int, max_depth: int | None = None) -> T:
    """Read, size-check, parse (depth-checked: ``max_depth``, else the setting) and structure the JSON body."""
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
    data = decode_json(raw, max_depth=max_json_depth() if max_depth is None else max_depth)
    return structure(data, cls)


def read_message(raw: str | bytes, *, max_bytes: int, max_depth: int | None = None) -> dict[str, Any]:
    """One WebSocket JSON message, under the same limits as a body: a JSON object or a ``ServiceError``."""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(max_bytes)
    message = decode_json(raw, max_depth=max_json_depth() if max_depth is None else max_depth, what="message")
    if not isinstance(message, dict):
        raise MalformedRequestError("message must be a JSON object")
    return message


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response for an attrs object (typically an ``ApiResponse``)."""
    body = json.dumps(unstructure(obj), separators=(",", ":"), default=str)
    return Response(body, status=status, headers=dict(headers or {}), content_type="application/json")
