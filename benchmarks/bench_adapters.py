"""Benchmark: client CPU per vendor call through the OpenAI and Anthropic text adapters vs. the bare SDK call.

One run starts a canned loopback upstream in its own process (``python -m benchmarks.bench_adapters --serve PORT``:
a bare keep-alive HTTP/1.1 server that answers ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/messages`` with
the vendor emulator's own renderings, unpaced), then measures in this process, ``concurrency`` calls at a time,
the process CPU (``time.process_time``) per call of:

- the bare SDK call (``chat.completions.create`` / ``responses.create`` / ``messages.create``, whole or streamed and
  read to the end) on the client configuration the adapters use (aiohttp transport, retries off): the baseline;
- the same answer through the adapter (``complete`` / ``stream``), normalized to domain events.

Legs alternate (A/B/A/B ...) and each figure is the median of the rounds, so a neighbour's load on a shared machine
lands on both sides. The streamed answer is 40 tokens (the emulator's ``bench-stream`` scenario without its pacing);
the whole answer is ``Hello, world!`` with usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, cast

import httpx

from adapters.anthropic.client import anthropic_client
from adapters.anthropic.text import AnthropicTextProvider
from adapters.openai.client import openai_client
from adapters.openai.text import OpenAITextProvider
from benchmarks.harness import Result
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from tests.emulator.render_anthropic import message_object, messages_stream
from tests.emulator.render_openai import chat_completion, chat_stream, response_object, responses_stream
from tests.emulator.scenario import SCENARIOS
from tests.support.server import free_port

SUITE = "adapters"
ROOT = Path(__file__).resolve().parents[1]
WHOLE, STREAMED = "text", "bench-stream"
_MESSAGES = [{"role": "user", "content": "Say hello."}]


# --- the canned upstream -------------------------------------------------------------------------------------------


def _http(status: int, content_type: str, body: bytes, *, chunked: bool = False) -> bytes:
    length = "transfer-encoding: chunked" if chunked else f"content-length: {len(body)}"
    head = f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\n{length}\r\nconnection: keep-alive\r\n\r\n"
    return head.encode() + body


@cache
def _answer(path: str, model: str, stream: bool) -> bytes:
    scenario = SCENARIOS[model]
    if stream:
        if path == "/v1/chat/completions":
            frames = chat_stream(scenario, model, include_usage=True).frames
        elif path == "/v1/responses":
            frames = responses_stream(scenario, model).frames
        else:
            frames = messages_stream(scenario, model).frames
        body = b"".join(f"{len(f):x}\r\n".encode() + f + b"\r\n" for f in frames) + b"0\r\n\r\n"
        return _http(200, "text/event-stream", body, chunked=True)
    if path == "/v1/chat/completions":
        whole = chat_completion(scenario, model)
    elif path == "/v1/responses":
        whole = response_object(scenario, model)
    else:
        whole = message_object(scenario, model)
    return _http(200, "application/json", json.dumps(whole, separators=(",", ":")).encode())


class _Upstream(asyncio.Protocol):
    """One keep-alive connection: Content-Length request bodies, canned answers in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        transport = self._transport
        assert transport is not None
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = json.loads(bytes(self._buffer[end + 4 : end + 4 + length]) or b"{}")
            del self._buffer[: end + 4 + length]
            path = head[0].split(" ")[1].partition("?")[0]
            if path == "/health":
                transport.write(_http(200, "application/json", b"{}"))
                continue
            transport.write(_answer(path, str(body.get("model")), bool(body.get("stream"))))


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


@contextmanager
def _upstream() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_adapters", "--serve", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the canned upstream did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the legs ------------------------------------------------------------------------------------------------------


Call = Callable[[], Awaitable[None]]


async def _cpu_per_call(call: Call, total: int, concurrency: int) -> float:
    """Process CPU per call (ms) for ``total`` calls, ``concurrency`` at a time."""
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) * 1000 / total


def _spec(vendor_model: str, provider: str, api: str = "chat") -> ModelSpec:
    return ModelSpec(id=vendor_model, provider=provider, capabilities=frozenset({"text"}), api=api)


def _request(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "Say hello.")], max_tokens=256)


def legs(url: str) -> tuple[dict[str, tuple[Call, Call]], Callable[[], Awaitable[None]]]:
    """Pairs (bare SDK call, adapter call) by name, and a coroutine function closing every client."""
    oa = openai_client(api_key="sk-bench", base_url=f"{url}/v1", timeout_s=30.0, connect_timeout_s=5.0)
    an = anthropic_client(api_key="sk-ant-bench", base_url=url, timeout_s=30.0, connect_timeout_s=5.0)
    openai = OpenAITextProvider(
        openai_client(api_key="sk-bench", base_url=f"{url}/v1", timeout_s=30.0, connect_timeout_s=5.0)
    )
    anthropic = AnthropicTextProvider(
        anthropic_client(api_key="sk-ant-bench", base_url=url, timeout_s=30.0, connect_timeout_s=5.0)
    )
    messages: Any = _MESSAGES

    async def drain(stream: Any) -> None:
        async for _ in stream:
            pass

    async def sdk_chat_whole() -> None:
        await oa.chat.completions.create(model=WHOLE, messages=messages, max_completion_tokens=256)

    async def sdk_chat_stream() -> None:
        stream = await oa.chat.completions.create(
            model=STREAMED,
            messages=messages,
            max_completion_tokens=256,
            stream=True,
            stream_options={"include_usage": True},
        )
        await drain(stream)

    async def sdk_responses_whole() -> None:
        await oa.responses.create(model=WHOLE, input=messages, max_output_tokens=256, store=False)

    async def sdk_responses_stream() -> None:
        await drain(
            await oa.responses.create(model=STREAMED, input=messages, max_output_tokens=256, store=False, stream=True)
        )

    async def sdk_messages_whole() -> None:
        await an.messages.create(model=WHOLE, messages=messages, max_tokens=256)

    async def sdk_messages_stream() -> None:
        await drain(await an.messages.create(model=STREAMED, messages=messages, max_tokens=256, stream=True))

    chat_whole, chat_streamed = _spec(WHOLE, "openai"), _spec(STREAMED, "openai")
    resp_whole, resp_streamed = _spec(WHOLE, "openai", "responses"), _spec(STREAMED, "openai", "responses")
    msg_whole, msg_streamed = _spec(WHOLE, "anthropic"), _spec(STREAMED, "anthropic")

    async def adapter_chat_whole() -> None:
        await openai.complete(_request(WHOLE), chat_whole)

    async def adapter_chat_stream() -> None:
        await drain(openai.stream(_request(STREAMED), chat_streamed))

    async def adapter_responses_whole() -> None:
        await openai.complete(_request(WHOLE), resp_whole)

    async def adapter_responses_stream() -> None:
        await drain(openai.stream(_request(STREAMED), resp_streamed))

    async def adapter_messages_whole() -> None:
        await anthropic.complete(_request(WHOLE), msg_whole)

    async def adapter_messages_stream() -> None:
        await drain(anthropic.stream(_request(STREAMED), msg_streamed))

    async def close() -> None:
        for closing in (oa.close(), an.close(), openai.aclose(), anthropic.aclose()):
            await closing

    pairs: dict[str, tuple[Call, Call]] = {
        "openai chat, whole": (sdk_chat_whole, adapter_chat_whole),
        "openai chat, streamed": (sdk_chat_stream, adapter_chat_stream),
        "openai responses, whole": (sdk_responses_whole, adapter_responses_whole),
        "openai responses, streamed": (sdk_responses_stream, adapter_responses_stream),
        "anthropic messages, whole": (sdk_messages_whole, adapter_messages_whole),
        "anthropic messages, streamed": (sdk_messages_stream, adapter_messages_stream),
    }
    return pairs, close


async def _measure(url: str, total: int, concurrency: int, rounds: int, only: str | None) -> list[Result]:
    pairs, close = legs(url)
    results: list[Result] = []
    try:
        for name, (sdk, adapter) in pairs.items():
            if only and only not in name:
                continue
            await _cpu_per_call(sdk, 50, concurrency)  # warm-up: connections, caches
            await _cpu_per_call(adapter, 50, concurrency)
            bare: list[float] = []
            ours: list[float] = []
            for _ in range(rounds):
                bare.append(await _cpu_per_call(sdk, total, concurrency))
                ours.append(await _cpu_per_call(adapter, total, concurrency))
            results.append(
                Result(
                    SUITE,
                    f"{name}: CPU per call through the adapter",
                    statistics.median(ours) * 1000,
                    "us",
                    baseline=statistics.median(bare) * 1000,
                    baseline_name="bare SDK call",
                    note=f"{concurrency} concurrent, median of {rounds} x {total}",
                )
            )
    finally:
        await close()
    return results


def run(quick: bool = False, only: str | None = None, full: bool = False) -> list[Result]:
    """``make bench`` takes the default (about a minute and a half on 2 cores); ``full`` (``--full`` on this module's
    command line) takes the ten minutes that steady the figures on a shared machine."""
    total, concurrency, rounds = (1000, 20, 7) if full else (100, 20, 2) if quick else (400, 20, 3)
    with _upstream() as url:
        return asyncio.run(_measure(url, total, concurrency, rounds, only))


def main(argv: list[str] | None = None) -> None:
    """``--serve PORT``: the canned upstream in the foreground; otherwise print this suite's figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_adapters")
    parser.add_argument("--serve", type=int, metavar="PORT")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true", help="7 rounds of 1000 calls per leg (about 10 minutes)")
    parser.add_argument("--only", help="legs whose name contains this")
    args = parser.parse_args(argv)
    if args.serve:
        try:
            import uvloop

            uvloop.run(_serve(args.serve))
        except ImportError:  # pragma: no cover - uvloop is a dependency on every platform but Windows
            asyncio.run(_serve(args.serve))
        return
    for result in run(args.quick, args.only, args.full):
        print(f"{result.name:70} {result.value:8.0f} us  bare {result.baseline or 0:8.0f} us  x{result.ratio or 0:.2f}")


if __name__ == "__main__":
    main()
