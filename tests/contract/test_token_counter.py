"""The TokenCounter port: the tiktoken adapter and the test fake agree on its contract; tiktoken never downloads."""

from __future__ import annotations

import pytest
import tiktoken.load
import tiktoken.registry

from adapters.tiktoken import TiktokenTokenCounter
from adapters.tiktoken.counter import ENCODING
from ports.tokens import TokenCounter
from tests.fakes.tokens import WordTokenCounter

COUNTERS = {"tiktoken": TiktokenTokenCounter, "fake": WordTokenCounter}


@pytest.fixture(params=sorted(COUNTERS))
def counter(request: pytest.FixtureRequest) -> TokenCounter:
    counter: TokenCounter = COUNTERS[request.param]()
    return counter


def test_empty_text_is_no_tokens(counter: TokenCounter) -> None:
    """Nothing to count is zero tokens."""
    assert counter.count("") == 0


def test_text_counts_at_least_its_words_and_grows_with_it(counter: TokenCounter) -> None:
    """Each word is at least one token, and more text is never fewer tokens."""
    short, long = "the quick brown fox", "the quick brown fox jumps over the lazy dog"
    assert counter.count(short) >= 4
    assert counter.count(long) > counter.count(short)


def test_special_token_markers_are_plain_text(counter: TokenCounter) -> None:
    """A user's text containing tokenizer control markers is counted, never refused."""
    assert counter.count("stop here <|endoftext|> please") > 0


def test_cl100k_counts_match_the_published_encoding() -> None:
    """The adapter is cl100k_base: 'hello world' is 2 tokens, 'tiktoken is great!' is 6."""
    counter = TiktokenTokenCounter()
    assert (counter.count("hello world"), counter.count("tiktoken is great!")) == (2, 6)


def test_the_encoding_loads_from_the_bundled_file_not_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the encoding from scratch, with tiktoken's cache off, never reads a URL."""
    real_read = tiktoken.load.read_file

    def local_only(blobpath: str) -> bytes:
        assert "://" not in blobpath, f"tiktoken tried to download {blobpath}"
        return real_read(blobpath)

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: the file itself must be read
    monkeypatch.setattr(tiktoken.load, "read_file", local_only)
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, ENCODING, raising=False)
    assert TiktokenTokenCounter().count("hello world") == 2
