"""Use case helper: cut text that arrives in pieces into speakable segments (pure: the caller passes the clock).

Voiced chat speaks an answer while it is still being written, one segment per text-to-speech call. A segment ends:

- at a sentence end: ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets kept with it) followed by white space,
  or a line break. "3.14" and "example.com" are not cut: the point is not followed by a space;
- when the text waiting to be spoken grows past ``max_chars``: at the last clause mark (``,`` ``;`` ``:`` a dash)
  within the limit, else the last space, else hard at the limit (one enormous word);
- when text has waited ``max_wait_s`` since its first character arrived (``deadline``/``tick``): at the last word
  boundary, so a long sentence, or a model pausing mid-sentence, starts speaking early. A word still being written
  is kept for the next segment.

Their audio is joined into one stream (``LeadingTagSkipper``): an MP3 clip's leading ID3v2 tag is metadata that, in
the middle of a stream, decoders take for a broken frame (losing the frame after it), so later segments drop theirs.

Segments are stripped of surrounding white space and each holds a letter or digit (a sentence end is only a cut when
something speakable precedes it; a remainder of bare punctuation is not spoken); together they hold every letter and
digit of the text, in order. Abbreviations ("Dr. Smith") are cut like sentence ends: a segment too many, never a word
lost.
"""

from __future__ import annotations

import re
from typing import Final

from attrs import frozen

__all__ = ["LeadingTagSkipper", "SegmentRules", "Segmenter"]

# Sentence ends: . ! ? and the ellipsis (U+2026), with closing quotes (U+201D, U+2019), guillemet and brackets.
_SENTENCE_END: Final = re.compile("[.!?\u2026]+[\"'\u201d\u2019\u00bb)\\]]*(?=\\s)|\n")
_CLAUSE_MARK: Final = re.compile("[,;:\u2014\u2013](?=\\s)")  # and the em and en dashes
_SPACE: Final = re.compile(r"\s")
_SPEAKABLE: Final = re.compile(r"[^\W_]")  # a letter or digit
_WORD_END: Final = re.compile(r"[^\w\s]$")  # text ending in punctuation ends a word (a pause after "Well,")


@frozen
class SegmentRules:
    """How segments are cut: at most ``max_chars`` characters; text waits at most ``max_wait_s`` to be spoken."""

    max_chars: int = 240
    max_wait_s: float = 0.4

    def __attrs_post_init__(self) -> None:
        if self.max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        if self.max_wait_s <= 0:
            raise ValueError("max_wait_s must be positive")


class Segmenter:
    """Takes text pieces as they arrive (``feed``) and hands back the segments they complete."""

    def __init__(self, rules: SegmentRules | None = None) -> None:
        self.rules = rules or SegmentRules()
        self._buffer = ""
        self._since: float | None = None  # when the oldest unspoken character arrived (None: nothing waits)

    @property
    def pending(self) -> str:
        """The text not yet cut into a segment."""
        return self._buffer

    def deadline(self) -> float | None:
        """When ``tick`` will cut what waits (``None``: nothing waits, or only a word still being written)."""
        return None if self._since is None else self._since + self.rules.max_wait_s

    def feed(self, text: str, now: float) -> list[str]:
        """Add ``text`` (arrived at ``now``); the segments it completes, in order."""
        if not text:
            return []
        if self._since is None and (self._buffer + text).strip():
            self._since = now
        self._buffer += text
        return self._cut(now)

    def tick(self, now: float) -> list[str]:
        """The segment due at ``now`` (what waited ``max_wait_s``, up to its last word boundary), if any."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        end = _last_word_end(self._buffer)
        if end == 0:
            self._since = None  # one word still being written: the next piece restarts the clock
            return []
        return self._take(end, now)

    def flush(self) -> list[str]:
        """Everything that is left (the text is complete)."""
        text, self._buffer, self._since = self._buffer.strip(), "", None
        return [text] if _speakable(text) else []

    def _cut(self, now: float) -> list[str]:
        segments: list[str] = []
        while True:
            match = next((m for m in _SENTENCE_END.finditer(self._buffer) if _speakable(self._buffer[: m.end()])), None)
            if match is not None and len(self._buffer[: match.end()].strip()) <= self.rules.max_chars:
                segments += self._take(match.end(), now)
                continue
            if len(self._buffer.strip()) > self.rules.max_chars:
                segments += self._take(self._split_point(), now)
                continue
            return segments

    def _split_point(self) -> int:
        """Where to cut a buffer longer than allowed: the last clause mark, else space, within the limit."""
        lead = len(self._buffer) - len(self._buffer.lstrip())
        window = self._buffer[: lead + self.rules.max_chars]
        for pattern in (_CLAUSE_MARK, _SPACE):
            ends = [m.end() for m in pattern.finditer(window) if window[: m.end()].strip()]
            if ends:
                return ends[-1]
        return len(window)

    def _take(self, end: int, now: float) -> list[str]:
        segment, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        self._since = now if self._buffer.strip() else None
        return [segment] if _speakable(segment) else []


def _speakable(text: str) -> bool:
    return _SPEAKABLE.search(text) is not None


def _last_word_end(text: str) -> int:
    """The end of the last complete word of ``text`` (0: none): its last white space, or its end when it ends in
    punctuation."""
    stripped = text.rstrip()
    if stripped and (len(stripped) < len(text) or _WORD_END.search(stripped)):
        return len(text)
    spaces = [m.start() for m in _SPACE.finditer(text) if text[: m.start()].strip()]
    return spaces[-1] if spaces else 0


class LeadingTagSkipper:
    """Drops an ID3v2 tag at the start of an MP3 byte stream that arrives in chunks (the tag may span chunks)."""

    _HEADER: Final = 10

    def __init__(self) -> None:
        self._head = b""
        self._skip: int | None = None  # bytes of tag still to drop (None: the header is not complete yet)

    def feed(self, chunk: bytes) -> bytes:
        """What of ``chunk`` is audio (possibly nothing)."""
        if self._skip is None:
            self._head += chunk
            if len(self._head) < self._HEADER:
                return b""
            chunk, self._head = self._head, b""
            self._skip = _id3_length(chunk)
        if self._skip:
            dropped = min(self._skip, len(chunk))
            self._skip -= dropped
            chunk = chunk[dropped:]
        return chunk

    def flush(self) -> bytes:
        """What is held back at the end of the clip (a clip shorter than a tag header)."""
        head, self._head = self._head, b""
        return head


def _id3_length(head: bytes) -> int:
    """The length of the ID3v2 tag ``head`` starts with (header, body and footer), or 0 when it starts with none."""
    if head[:3] != b"ID3" or any(byte & 0x80 for byte in head[6:10]):
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]  # "syncsafe": 7 bits per byte
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer
