"""Driven adapter: Redis implementation of BreakerStore, so every instance sharing a Redis sees one breaker per model.

Each model's record is one JSON string at ``<prefix><model id>``, read and written only by the two scripts of
``breakers.lua`` (the Lua twin of ``domain.health.admit`` and ``record``): a step is atomic across instances, so
concurrent outcomes are all counted and a half-open breaker lets through no more probes than the policy allows,
whichever instance asks. Times are the callers' wall clocks (instances' clocks agree to well under the seconds a
breaker works in). A record idles out after a day, or twice its window and cool-down when those are longer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import ServiceUnavailableError
from domain.health import (
    LATENCY_SAMPLES,
    WINDOW_BUCKETS,
    Admission,
    BreakerPolicy,
    BreakerRecord,
    BreakerState,
    Bucket,
    Transition,
    Verdict,
)

__all__ = ["RedisBreakerStore", "decode_record"]

T = TypeVar("T")
_LUA: Final = (Path(__file__).parent / "breakers.lua").read_text()
_DAY_MS: Final = 86_400_000


def _script(name: str) -> str:
    """One named section (``-- @name``) of breakers.lua."""
    for section in _LUA.split("-- @")[1:]:
        head, _, body = section.partition("\n")
        if head.strip() == name:
            return body
    raise KeyError(name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _list(value: Any) -> list[Any]:
    # Lua's cjson writes an empty table as {}: an empty list here.
    return value if isinstance(value, list) else []


def decode_record(raw: bytes | str) -> BreakerRecord:
    """A record as the scripts store it."""
    data = json.loads(raw)
    return BreakerRecord(
        state=BreakerState(data["s"]),
        consecutive_failures=int(data["c"]),
        open_until_ms=int(data["ou"]),
        probes=int(data["p"]),
        probe_until_ms=int(data["pu"]),
        changed_at_ms=int(data["at"]),
        buckets=tuple(Bucket(int(i), int(n), int(f)) for i, n, f in _list(data["b"])),
        latencies_ms=tuple(float(v) for v in _list(data["l"])),
    )


class RedisBreakerStore:
    """BreakerStore on Redis; ``prefix`` namespaces the keys (tests use a unique one each)."""

    def __init__(self, client: Redis, *, prefix: str = "switchyard:breaker:") -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(_script("admit"))
        self._record = client.register_script(_script("record"))

    def _key(self, model: str) -> str:
        return self._prefix + model

    @staticmethod
    def _ttl_ms(policy: BreakerPolicy) -> int:
        return max(_DAY_MS, 2 * (policy.window_ms + policy.open_ms))

    async def _call(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            result = await call()
        except RedisError as exc:
            raise ServiceUnavailableError(
                f"redis did not answer ({op})", context={"backend": "redis", "operation": op}
            ) from exc
        # As in RedisStreamLog: on Python 3.11 redis-py's wait_for can swallow a cancellation that lands as the
        # command completes, and a cancelled request would then go on to call its vendor.
        if task is not None and task.cancelling() > cancelling:
            raise asyncio.CancelledError
        return result

    async def admit(self, model: str, provider: str, policy: BreakerPolicy, now_ms: int) -> Admission:
        args = [now_ms, policy.open_ms, policy.half_open_probes, self._ttl_ms(policy)]
        reply = await self._call("breaker_admit", lambda: self._admit(keys=[self._key(model)], args=args))
        admitted, state, probe, retry_after_ms, before, reason = reply
        after = BreakerState(_text(state))
        transition = Transition(BreakerState(_text(before)), after, _text(reason)) if _text(before) else None
        return Admission(
            model,
            provider,
            bool(admitted),
            after,
            probe=bool(probe),
            retry_after_ms=int(retry_after_ms),
            transition=transition,
        )

    async def record(
        self,
        model: str,
        policy: BreakerPolicy,
        now_ms: int,
        verdict: Verdict,
        *,
        probe: bool,
        latency_ms: float,
    ) -> tuple[BreakerRecord, Transition | None]:
        args = [
            now_ms,
            verdict.value,
            int(probe),
            repr(float(latency_ms)),  # repr: the shortest text that reads back as the same double
            policy.bucket_ms,
            WINDOW_BUCKETS,
            LATENCY_SAMPLES,
            policy.failure_threshold,
            repr(float(policy.error_rate_threshold)),
            policy.min_volume,
            policy.open_ms,
            self._ttl_ms(policy),
        ]
        reply = await self._call("breaker_record", lambda: self._record(keys=[self._key(model)], args=args))
        raw, before, after, reason = (_text(part) for part in reply)
        current = decode_record(raw) if raw else BreakerRecord()
        transition = Transition(BreakerState(before), BreakerState(after), reason) if before else None
        return current, transition

    async def records(self, models: Sequence[str]) -> dict[str, BreakerRecord]:
        if not models:
            return {}
        keys = [self._key(model) for model in models]
        values = await self._call("breaker_records", lambda: self._client.mget(keys))
        return {model: decode_record(raw) for model, raw in zip(models, values, strict=True) if raw is not None}
