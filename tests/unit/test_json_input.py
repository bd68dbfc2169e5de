"""Unit tests of the nesting-depth limit on client JSON (``entrypoints.http.json_input``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import MalformedRequestError, RequestValidationError
from entrypoints.http.json_input import decode_json, too_deep_path

LIMIT = 64


def nested_keys(key: str, depth: int) -> str:
    """``{"key": {"key": ... 1 ...}}`` with ``depth`` objects."""
    return f'{{"{key}":' * depth + "1" + "}" * depth


def rejection(raw: str | bytes, max_depth: int = LIMIT) -> dict[str, str]:
    with pytest.raises(RequestValidationError) as caught:
        decode_json(raw, max_depth=max_depth)
    [error] = caught.value.errors
    return error.as_dict()


def true_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(true_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(true_depth, value), default=0)
    return 0


def test_depth_at_the_limit_is_accepted_and_one_more_is_refused() -> None:
    """64 nested arrays decode; 65 are a RequestValidationError naming the limit."""
    assert too_deep_path(decode_json("[" * LIMIT + "]" * LIMIT, max_depth=LIMIT), LIMIT) is None
    error = rejection("[" * (LIMIT + 1) + "]" * (LIMIT + 1))
    assert error["loc"].startswith("$[0][0]")
    assert "limit of 64 levels" in error["msg"]


@pytest.mark.parametrize("depth", [200, 5_000, 100_000])
def test_any_depth_names_the_field_and_never_raises_recursion_error(depth: int) -> None:
    """Below, at and far past the decoder's own recursion limit, the error is the same 422 with a truncated path."""
    body = '{"model": "m", "tools": [{"name": "t", "parameters": ' + nested_keys("properties", depth) + "}]}"
    for raw in (body, body.encode()):
        loc = rejection(raw)["loc"]
        assert loc == "$.tools[0].parameters.properties.properties.properties.properties.properties…"


def test_the_path_names_keys_that_are_not_identifiers_and_shortens_long_ones() -> None:
    """Odd keys are quoted, long keys cut, and the path of the branch that is too deep is the one reported."""
    deep = "[" * 70 + "]" * 70
    raw = '{"shallow": [[1]], "a b": {"' + "k" * 60 + '": [0, ' + deep + "]}}"
    assert rejection(raw)["loc"] == '$["a b"].' + "k" * 40 + "…[1][0][0][0][0][0]…"


def test_brackets_inside_strings_do_not_count() -> None:
    """A string full of brackets (and escaped quotes) is one value, not nesting."""
    text = '\\"[{' * 500
    assert decode_json(f'{{"content": "{text}", "x": [[{{}}]]}}', max_depth=4)["x"] == [[{}]]


def test_a_too_deep_document_in_utf16_is_refused_like_utf8() -> None:
    """The decoder accepts UTF-16 bodies; they get the same limit and the same path."""
    raw = ('{"metadata": ' + nested_keys("a", 3_000) + "}").encode("utf-16")
    assert rejection(raw)["loc"] == "$.metadata.a.a.a.a.a.a.a…"


def test_malformed_json_is_still_a_malformed_request() -> None:
    """Text that is not JSON stays a 400-class error, deep or not, with what was being read in the message."""
    with pytest.raises(MalformedRequestError, match="message is not valid JSON"):
        decode_json('{"a": nope, "b": ' + "[" * 3_000, max_depth=LIMIT, what="message")


json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, max_depth=st.integers(min_value=1, max_value=8))
def test_refused_exactly_when_deeper_than_the_limit(value: Any, max_depth: int) -> None:
    """Any document is refused iff its true nesting exceeds the limit, and the path leads to a container past it."""
    raw = json.dumps(value)
    if true_depth(value) <= max_depth:
        assert decode_json(raw, max_depth=max_depth) == value
        return
    with pytest.raises(RequestValidationError):
        decode_json(raw, max_depth=max_depth)
    path = too_deep_path(value, max_depth)
    assert path is not None
    assert len(path) == max_depth
    node = value
    for key in path:
        node = node[key]
    assert isinstance(node, dict | list)
