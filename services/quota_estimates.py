"""Use case helpers: what a request is expected to consume, for the quota gate's reservation, per modality.

An estimate should not be below what the call will cost, or concurrent calls could overspend a budget by more than
their reservations. Input is counted with the ``TokenCounter`` where one is wired (tiktoken: exact for OpenAI-family
models, close for the others), else taken as one token per three UTF-8 bytes (English runs about four per token, so
this errs high). Output is the request's ``max_tokens``, else the gate's ``default_output_tokens``: a request that
sets no bound and writes more than that is the one way a call can pass its reservation, so tight budgets want
``max_tokens``. Images, characters and audio seconds are known from the request itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.chat import ChatRequest
from domain.metering import Units
from ports.tokens import TokenCounter
from services.chat_billing import count_request

__all__ = ["chat_units", "rough_tokens", "text_units"]


def rough_tokens(text: str) -> int:
    """An upper-leaning token count without a tokenizer: one per three UTF-8 bytes, at least one."""
    return max(1, -(-len(text.encode("utf-8", "replace")) // 3))


def chat_units(request: ChatRequest, counter: TokenCounter | None, default_output_tokens: int) -> Units:
    """A chat call: the request's tokens in, ``max_tokens`` (or the default) out."""
    if counter is not None:
        inputs = count_request(counter, request)
    else:
        texts = [request.system or ""]
        for message in request.messages:
            content = message.content
            texts.extend([content] if isinstance(content, str) else [part.text or "" for part in content])
        inputs = sum(rough_tokens(text) for text in texts) + 3 * (len(request.messages) + 1)
    return Units(input_tokens=inputs, output_tokens=request.max_tokens or default_output_tokens)


def text_units(texts: Sequence[str], counter: TokenCounter | None = None) -> Units:
    """Input-only calls (embeddings): the tokens of every text."""
    count = counter.count if counter is not None else rough_tokens
    return Units(input_tokens=sum(count(text) for text in texts))
