"""The peer benchmark's fast fake upstream speaks OpenAI Chat Completions as the official SDK reads it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from openai import AsyncOpenAI

from benchmarks.peers.upstream import STREAM_MODEL, serve


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task = asyncio.create_task(serve("127.0.0.1", port))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        break
    yield f"http://127.0.0.1:{port}/v1"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_whole_answer_carries_text_and_usage(upstream_url: str) -> None:
    """A non-streaming call gets the emulator's ``text`` scenario with its usage, over a reused connection."""
    client = AsyncOpenAI(api_key="sk-x", base_url=upstream_url, max_retries=0)
    for _ in range(3):
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello, world!"
        assert reply.model == "gpt-4o-mini"
        assert reply.usage is not None
        assert reply.usage.total_tokens == 19
    await client.close()


async def test_paced_stream_sends_forty_tokens_and_usage_when_asked(upstream_url: str) -> None:
    """``bench-stream`` streams 40 tokens, then the usage chunk that ``include_usage`` asks for."""
    client = AsyncOpenAI(api_key="sk-x", base_url=upstream_url, max_retries=0)
    stream = await client.chat.completions.create(
        model=STREAM_MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens = []
    usage = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            tokens.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert tokens == [f"tok{i} " for i in range(40)]
    assert usage is not None
    assert usage.prompt_tokens == 12
    await client.close()


async def test_missing_key_is_refused_like_openai(upstream_url: str) -> None:
    """No bearer token: 401 with OpenAI's error body."""
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{upstream_url}/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_api_key"
