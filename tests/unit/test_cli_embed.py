"""``switchyard embed`` embeds texts in-process and prints the vectors as JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from entrypoints.cli import main
from tests.support.app import TEST_SECRET


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")


def test_embed_prints_one_vector_per_text_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """Each text gets its unit vector, in order, with the serving model, the usage and the meta."""
    assert main(["embed", "--model", "fake/embed", "--dimensions", "16", "hello world", "goodbye"]) == 0
    printed = json.loads(capsys.readouterr().out)
    data = printed["data"]
    assert data["model"] == "fake/embed"
    assert data["dimensions"] == 16
    assert len(data["embeddings"]) == 2
    assert all(math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0) for vector in data["embeddings"])
    assert data["usage"]["input_tokens"] == 3
    assert printed["meta"]["model"] == "fake/embed"
    assert main(["embed", "--dimensions", "16", "goodbye"]) == 0  # fake/embed is the default model
    assert json.loads(capsys.readouterr().out)["data"]["embeddings"] == data["embeddings"][1:]


def test_embed_with_a_bad_dimension_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A rule broken exits 1 with one line naming the field."""
    assert main(["embed", "--dimensions", "0", "hi"]) == 1
    assert capsys.readouterr().err.startswith("switchyard: validation_error: dimensions:")
