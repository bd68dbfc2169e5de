"""The native request converter takes only JSON arrays where a model holds a list or a tuple: cattrs alone would make
a list of any iterable, so ``"stop": "END"`` would silently become the stop sequences ``["E", "N", "D"]``."""

from __future__ import annotations

import pytest

from domain.chat import ChatRequest
from domain.errors import RequestValidationError
from entrypoints.http.serialization import structure

BASE = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("field", "value"), [("stop", "END"), ("fallbacks", "fake/fixed"), ("messages", "hi")])
def test_a_string_where_an_array_belongs_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        structure({**BASE, field: value}, ChatRequest)
    assert [error.loc for error in caught.value.errors] == [f"$.{field}"]


def test_arrays_are_still_taken() -> None:
    request = structure({**BASE, "stop": ["END", "STOP"], "fallbacks": ["fake/fixed"]}, ChatRequest)
    assert list(request.stop) == ["END", "STOP"]
    assert list(request.fallbacks) == ["fake/fixed"]
