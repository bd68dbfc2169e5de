"""The segmenter of voiced chat: cuts at sentence ends, on length and on waiting time, never loses or splits a word
it need not; and the ID3 skipper that lets MP3 segments join into one stream."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.speech_segments import LeadingTagSkipper, Segmenter, SegmentRules

SLOW = SegmentRules(max_chars=240, max_wait_s=3600)


def cut(pieces: list[str], rules: SegmentRules = SLOW) -> list[str]:
    segmenter = Segmenter(rules)
    segments = [segment for piece in pieces for segment in segmenter.feed(piece, 0.0)]
    return segments + segmenter.flush()


def test_sentences_end_at_a_point_followed_by_space_or_a_line_break() -> None:
    """ "3.14" and "example.com" stay whole; ". " "! " "? " "…" and a newline end a segment; closing quotes stay."""
    text = 'Pi is 3.14 on example.com. Really?! He said "go." Then\nnew line… done'
    assert cut([text]) == ["Pi is 3.14 on example.com.", "Really?!", 'He said "go."', "Then", "new line…", "done"]


def test_a_segment_is_cut_as_soon_as_the_space_after_its_sentence_arrives() -> None:
    """Streaming word by word: the segment comes with the piece that proves the sentence ended, not at the end."""
    segmenter = Segmenter(SLOW)
    assert segmenter.feed("Hello", 0.0) == []
    assert segmenter.feed(" there.", 0.0) == []  # "there." may yet be "there.com"
    assert segmenter.feed(" How", 0.0) == ["Hello there."]
    assert segmenter.pending == " How"


def test_a_long_sentence_is_cut_at_a_clause_mark_else_a_space_within_the_limit() -> None:
    """Over ``max_chars`` the cut is the last comma (or semicolon, colon, dash) that fits, else the last space."""
    rules = SegmentRules(max_chars=20, max_wait_s=3600)
    assert cut(["one two, three four five six seven"], rules) == ["one two,", "three four five six", "seven"]
    assert cut(["aaaa bbbb cccc dddd eeee ffff"], rules) == ["aaaa bbbb cccc dddd", "eeee ffff"]


def test_one_enormous_word_is_cut_hard_at_the_limit() -> None:
    """Nothing to cut at: the limit is the limit (a vendor must never get more than ``max_chars``)."""
    assert cut(["x" * 25], SegmentRules(max_chars=10, max_wait_s=3600)) == ["x" * 10, "x" * 10, "x" * 5]


def test_text_that_waited_is_cut_at_its_last_word_boundary() -> None:
    """After ``max_wait_s`` the complete words go; a word still being written waits for the next piece."""
    segmenter = Segmenter(SegmentRules(max_chars=240, max_wait_s=0.5))
    assert segmenter.feed("Once upon a ti", 10.0) == []
    assert segmenter.deadline() == 10.5
    assert segmenter.tick(10.4) == []
    assert segmenter.tick(10.5) == ["Once upon a"]
    assert segmenter.pending == " ti"
    assert segmenter.deadline() == 11.0  # what is left waits anew from the cut
    assert segmenter.feed("me", 10.6) == []
    assert segmenter.tick(11.0) == []  # "time" may still grow: no boundary yet
    assert segmenter.deadline() is None  # the next piece restarts the clock
    assert segmenter.feed(" there", 11.1) == []
    assert segmenter.tick(11.6) == ["time"]


def test_a_pause_after_punctuation_speaks_what_came() -> None:
    """Text ending in punctuation ends a word: "Well," is spoken when the model pauses after it."""
    segmenter = Segmenter(SegmentRules(max_chars=240, max_wait_s=0.5))
    segmenter.feed("Well,", 0.0)
    assert segmenter.tick(1.0) == ["Well,"]
    assert segmenter.deadline() is None


def test_bare_punctuation_is_not_a_segment() -> None:
    """A segment always holds a letter or digit: leading dots join the next sentence; a trailing ":)" is dropped."""
    assert cut(["... Hello. ", "\n\n:)"]) == ["... Hello."]
    assert cut(["   \n "]) == []


WORDS = st.text(alphabet="abcxyz019.,!?;:- \n…'\"", min_size=0, max_size=12)


@given(pieces=st.lists(WORDS, max_size=25), max_chars=st.integers(1, 30))
def test_segments_keep_every_letter_in_order_within_the_limit(pieces: list[str], max_chars: int) -> None:
    """Property: together the segments hold every letter and digit of the text, in order; each fits ``max_chars``,
    is stripped, and holds something speakable."""
    segments = cut(pieces, SegmentRules(max_chars=max_chars, max_wait_s=3600))
    speakable = re.compile(r"[^\W_]")
    assert "".join(speakable.findall("".join(segments))) == "".join(speakable.findall("".join(pieces)))
    for segment in segments:
        assert 0 < len(segment) <= max_chars
        assert segment == segment.strip()
        assert speakable.search(segment)


@given(pieces=st.lists(WORDS, max_size=25), ticks=st.lists(st.booleans(), max_size=25))
def test_ticks_never_lose_or_reorder_text(pieces: list[str], ticks: list[bool]) -> None:
    """Property: cutting on time as well as on sentences still keeps every letter, in order."""
    segmenter = Segmenter(SegmentRules(max_chars=16, max_wait_s=1.0))
    segments: list[str] = []
    now = 0.0
    for index, piece in enumerate(pieces):
        segments += segmenter.feed(piece, now)
        if index < len(ticks) and ticks[index]:
            now += 2.0
            segments += segmenter.tick(now)
    segments += segmenter.flush()
    speakable = re.compile(r"[^\W_]")
    assert "".join(speakable.findall("".join(segments))) == "".join(speakable.findall("".join(pieces)))


def test_the_rules_refuse_nonsense() -> None:
    """A limit below one character or a wait of zero is a configuration error."""
    with pytest.raises(ValueError, match="max_chars"):
        SegmentRules(max_chars=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        SegmentRules(max_wait_s=0)


ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"TAG!!"  # a 5-byte tag body (syncsafe size 5)


@pytest.mark.parametrize("sizes", [[100], [1, 2, 3, 94], [10, 5, 85], [15, 85], [3, 3, 3, 3, 3, 85]])
def test_a_leading_id3_tag_is_dropped_however_it_is_chunked(sizes: list[int]) -> None:
    """The tag (header and body) goes, even spread over several chunks; every audio byte stays."""
    clip = ID3 + bytes(range(85))
    skipper = LeadingTagSkipper()
    out, start = b"", 0
    for size in sizes:
        out += skipper.feed(clip[start : start + size])
        start += size
    assert out + skipper.flush() == bytes(range(85))


def test_a_clip_without_a_tag_passes_untouched_and_a_tiny_one_is_flushed() -> None:
    """No ID3 header: nothing is dropped; a clip shorter than a header comes out at ``flush``."""
    skipper = LeadingTagSkipper()
    assert skipper.feed(b"\xff\xf3 audio frames") == b"\xff\xf3 audio frames"
    tiny = LeadingTagSkipper()
    assert tiny.feed(b"\xff\xf3") == b""
    assert tiny.flush() == b"\xff\xf3"
