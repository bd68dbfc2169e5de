"""Unit tests of the per-request cost cuts: SDK argument splitting from cached signatures, and the served app's
start-up heap freeze (``freeze_heap_after_start``)."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from adapters.kit.stream import split_known
from container import Container
from entrypoints.http.app import create_app, freeze_heap_after_start

_SPLITTERS = [split_known]


def _sdk_methods() -> list[Callable[..., Any]]:
    openai = AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    anthropic = AsyncAnthropic(api_key="sk-test", base_url="http://127.0.0.1:9")
    return [openai.chat.completions.create, openai.responses.create, anthropic.messages.create]


@pytest.mark.parametrize("split", _SPLITTERS)
def test_split_known_matches_the_live_signature_of_each_sdk_method(split: Callable[..., dict[str, Any]]) -> None:
    """Every name the SDK method declares stays a keyword; the rest (and only the rest) goes to ``extra_body``,
    exactly as ``inspect.signature`` of the bound method says, on the first call and on repeated calls."""
    for method in _sdk_methods():
        declared = set(inspect.signature(method).parameters) - {"extra_body"}
        params = {name: object() for name in declared} | {"vendor_extension": 1}
        for _ in range(2):
            kwargs = split(method, params)
            assert kwargs.pop("extra_body") == {"vendor_extension": 1}
            assert kwargs == {name: params[name] for name in declared}


@pytest.mark.parametrize("split", _SPLITTERS)
def test_split_known_accepts_a_plain_function(split: Callable[..., dict[str, Any]]) -> None:
    """A plain function (not a bound method) keeps all of its own parameters, the first one included."""

    def create(model: str, stream: bool = False) -> None:
        return None

    assert split(create, {"model": "m", "stream": True, "top_k": 3}) == {
        "model": "m",
        "stream": True,
        "extra_body": {"top_k": 3},
    }


@pytest.mark.parametrize("split", _SPLITTERS)
def test_split_known_omits_extra_body_when_everything_is_known(split: Callable[..., dict[str, Any]]) -> None:
    """Known names only: no ``extra_body`` key at all."""
    method = _sdk_methods()[0]
    assert split(method, {"model": "m", "stream": True}) == {"model": "m", "stream": True}


async def test_freeze_heap_after_start_freezes_once_the_resources_are_up(container: Container) -> None:
    """A served app moves the start-up heap into the permanent generation after its resources started; an app
    built without the call (every test app) freezes nothing."""
    gc.unfreeze()
    plain = create_app(container)
    async with plain.test_app():
        assert gc.get_freeze_count() == 0
    container.unwire()
    served = create_app(container)
    freeze_heap_after_start(served)
    try:
        async with served.test_app():
            assert gc.get_freeze_count() > 0
            assert container.usage_ledger.initialized  # type: ignore[attr-defined]
    finally:
        gc.unfreeze()
        container.unwire()
