"""``switchyard chat`` and ``switchyard models`` run the chat services in-process, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import main
from tests.support.app import TEST_SECRET


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")


def test_chat_prints_the_answer_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """The echoed text goes to stdout, the serving model and tokens to stderr."""
    assert main(["chat", "--model", "fake/echo", "hello", "world"]) == 0
    out, err = capsys.readouterr()
    assert out == "hello world\n"
    assert "fake/echo" in err
    assert "2 in / 2 out tokens" in err


def test_chat_json_prints_every_event_ending_in_done(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one JSON event per line: start first, done last."""
    assert main(["chat", "--json", "--model", "fake/tools", "hi"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "start"
    assert events[0]["payload"]["model"] == "fake/tools"
    assert events[-1]["type"] == "done"
    assert "".join(e["payload"]["text"] for e in events if e["type"] == "text") == "No tools were offered."


def test_chat_with_an_unknown_model_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown model exits 1 with the not_found message naming the closest id."""
    assert main(["chat", "--model", "fake/ecco", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("switchyard: not_found:")
    assert "fake/echo" in err


def test_models_lists_the_enabled_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    """Only enabled vendors' models are printed; --capability filters."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "fake/echo" in out
    assert "openai/" not in out
    assert main(["models", "--capability", "reasoning"]) == 0
    assert capsys.readouterr().out.split() == ["fake/reasoning", "32,768", "reasoning,", "text"]


def test_chat_failure_after_content_ends_the_line_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A vendor failure mid-answer keeps the words already printed, ends the line, and exits 1 with the code."""
    argv = ["chat", "--meta", "fake_error=overloaded", "--meta", "fake_fail_after=1", "one", "two"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "one\n"
    assert err.startswith("switchyard: provider_error:")
