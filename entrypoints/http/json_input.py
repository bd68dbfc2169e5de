"""HTTP boundary: JSON text from clients (request bodies, WebSocket messages) decoded under a nesting-depth limit.

The standard decoder recurses once per nested ``[``/``{`` and raises ``RecursionError`` near the interpreter's
recursion limit (~1000 levels), and everything downstream (cattrs, vendor SDKs, ``json.dumps``) recurses too. So a
client's document may nest at most ``limits.max_json_depth`` containers (the top-level value is level 1); deeper is
a ``RequestValidationError`` whose ``loc`` is the JSON path of a container past the limit.

Cost: a document cannot nest deeper than it has opening brackets, and counting those is two C-speed ``count``
calls, so a typical chat body is decoded with no further work. A document with more brackets than the limit has its
decoded values walked one nesting level at a time with C-level iterator pipelines (``map``/``compress``): Python
code runs once per level, never once per value or per byte; a path past the limit is traced back up the same levels
by position. A document too deep for the decoder itself is cut just past the limit (one regex step per string or
bracket before the cut), closed, and the cut decoded to name the path.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from itertools import accumulate, chain, compress, count, islice, repeat
from operator import is_
from typing import Any, Final, NamedTuple

from domain.errors import FieldError, MalformedRequestError, RequestValidationError

__all__ = ["decode_json", "too_deep_path"]

_SHOWN_SEGMENTS: Final = 8  # a path past the limit is ~64 segments long: the first few say which field it was
_SHOWN_KEY_CHARS: Final = 40
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A JSON string (escapes included) or a bracket: enough to follow the nesting of text the decoder cannot take.
_STRUCTURE: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENERS: Final = {"[": "]", "{": "}"}
_CLOSERS: Final = frozenset("]}")


class _Level(NamedTuple):
    """The containers at one depth, and which of the values one level up (in order) they are."""

    dicts: list[dict[str, Any]]
    lists: list[list[Any]]
    is_dict: list[bool]
    is_list: list[bool]


def decode_json(raw: str | bytes, *, max_depth: int, what: str = "body") -> Any:
    """Decode ``raw``; ``MalformedRequestError`` if it is not JSON, ``RequestValidationError`` if nested too deep."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep_error(_path_in_cut(raw, max_depth), max_depth) from None
    if _opening_brackets(raw) > max_depth:
        path = too_deep_path(data, max_depth)
        if path is not None:
            raise _too_deep_error(path, max_depth)
    return data


def too_deep_path(data: Any, max_depth: int) -> list[str | int] | None:
    """The keys/indices leading to a container nested deeper than ``max_depth`` levels, or None if there is none."""
    levels = [_root(data)]
    while levels[-1].dicts or levels[-1].lists:
        if len(levels) > max_depth:
            return _path_up(levels)
        levels.append(_below(levels[-1]))
    return None


def _opening_brackets(raw: str | bytes) -> int:
    # An upper bound on the depth (brackets inside strings count too). UTF-8, and UTF-16/32, which the decoder also
    # accepts, carry each bracket as its own byte, so counting bytes never undercounts.
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def _root(data: Any) -> _Level:
    if type(data) is dict:
        return _Level([data], [], [True], [False])
    if type(data) is list:
        return _Level([], [data], [False], [True])
    return _Level([], [], [], [])


def _below(level: _Level) -> _Level:
    values = list(chain(chain.from_iterable(map(dict.values, level.dicts)), chain.from_iterable(level.lists)))
    kinds = list(map(type, values))
    present = set(kinds)  # the deepest levels hold only scalars: then nothing more is built
    is_dict = list(map(is_, kinds, repeat(dict))) if dict in present else []
    is_list = list(map(is_, kinds, repeat(list))) if list in present else []
    return _Level(list(compress(values, is_dict)), list(compress(values, is_list)), is_dict, is_list)


def _path_up(levels: list[_Level]) -> list[str | int]:
    """From the first container of the last level up to the root: which value of which container each one is."""
    last = levels[-1]
    position = last.is_dict.index(True) if last.dicts else last.is_list.index(True)
    keys: list[str | int] = []
    for level in reversed(levels[:-1]):
        ends = list(accumulate(chain(map(len, level.dicts), map(len, level.lists))))
        holder = bisect_right(ends, position)  # the values one level down are these containers' values, in order
        offset = position - (ends[holder - 1] if holder else 0)
        if holder < len(level.dicts):
            keys.append(next(islice(level.dicts[holder], offset, None)))
            position = _nth_true(level.is_dict, holder)
        else:
            keys.append(offset)
            position = _nth_true(level.is_list, holder - len(level.dicts))
    keys.reverse()
    return keys


def _nth_true(flags: list[bool], n: int) -> int:
    return next(islice(compress(count(), flags), n, None))


def _path_in_cut(raw: str | bytes, max_depth: int) -> list[str | int] | None:
    """Where a document too deep for the decoder passes ``max_depth``: cut it there, close it, decode the cut.

    The decoder read everything up to far past the cut before giving up, so the text before the cut is valid JSON
    and the scan stops there: it costs one step per string or bracket before the cut, never more."""
    text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass")
    closers: list[str] = []
    for match in _STRUCTURE.finditer(text):
        piece = match.group()
        if piece in _OPENERS:
            closers.append(_OPENERS[piece])
            if len(closers) > max_depth:
                cut = text[: match.end()] + "".join(reversed(closers))
                try:
                    return too_deep_path(json.loads(cut), max_depth)
                except (ValueError, RecursionError):
                    return None  # not JSON after all: report the depth without a path
        elif piece in _CLOSERS and closers:
            closers.pop()
    return None  # deeper than the decoder goes, yet not past the limit: a limit set above what it can decode


def _segment(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    shown = key if len(key) <= _SHOWN_KEY_CHARS else key[:_SHOWN_KEY_CHARS] + "…"
    return f".{shown}" if _IDENTIFIER.fullmatch(key) else f"[{json.dumps(shown, ensure_ascii=False)}]"


def _too_deep_error(path: list[str | int] | None, max_depth: int) -> RequestValidationError:
    message = f"JSON nested deeper than the limit of {max_depth} levels (limits.max_json_depth)"
    if path is None:
        return RequestValidationError([FieldError("$", message)])
    loc = "$" + "".join(_segment(key) for key in path[:_SHOWN_SEGMENTS])
    if len(path) > _SHOWN_SEGMENTS:
        loc += "…"
    return RequestValidationError([FieldError(loc, message)])
