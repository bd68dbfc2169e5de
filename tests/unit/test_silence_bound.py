"""SilenceBound: a vendor wait past the bound is provider_timeout; anything else (a cancel, a slow consumer) is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.errors import ProviderTimeoutError
from services.silence import SilenceBound


async def _items(*gaps_s: float) -> AsyncIterator[int]:
    """Yields 0, 1, ... after waiting each gap; then never ends (a vendor holding the connection open)."""
    for index, gap in enumerate(gaps_s):
        await asyncio.sleep(gap)
        yield index
    await asyncio.get_running_loop().create_future()


async def test_a_wait_past_the_bound_is_a_provider_timeout_and_leaves_no_cancel_behind() -> None:
    """Silence past the bound raises ProviderTimeoutError naming the bound; the task is not left cancelling."""
    bound = SilenceBound("scripted", 0.05)
    stream = _items(0)
    assert await bound.next(stream) == 0
    with pytest.raises(ProviderTimeoutError) as caught:
        await bound.next(stream)
    assert caught.value.context["timeout_s"] == 0.05
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # no stray cancellation is delivered later
    bound.close()


async def test_time_spent_outside_the_wait_is_not_silence() -> None:
    """A consumer slower than the bound between two events does not make the vendor silent."""
    bound = SilenceBound("scripted", 0.05)
    stream = _items(0, 0)
    assert await bound.next(stream) == 0
    await asyncio.sleep(0.2)  # the bound's timer fires while nobody waits for the vendor
    assert await bound.next(stream) == 1
    bound.close()


async def test_the_deadline_moves_with_each_event() -> None:
    """Events arriving within the bound keep the attempt alive however long it lasts in total."""
    bound = SilenceBound("scripted", 0.5)
    stream = _items(*([0.02] * 40))
    assert [await bound.next(stream) for _ in range(40)] == list(range(40))
    bound.close()


async def test_an_outside_cancel_during_a_wait_stays_a_cancel() -> None:
    """Cancelling the task that waits (a closed stream, a shutdown) raises CancelledError, not a timeout."""
    bound_box: list[SilenceBound] = []

    async def wait() -> int:
        bound = SilenceBound("scripted", 30.0)
        bound_box.append(bound)
        return await bound.next(_items())

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    bound_box[0].close()


async def test_no_bound_waits_as_long_as_it_takes() -> None:
    """A bound of 0 means none: the wait is the stream's own."""
    bound = SilenceBound("scripted", 0)
    assert await bound.next(_items(0.05)) == 0
