"""The README's configuration table stays in step with the settings classes."""

from __future__ import annotations

from pathlib import Path

from settings.loader import describe

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    """Each setting's key appears in the README table (add a row when you add a setting)."""
    text = README.read_text()
    missing = [key for key, _variable, _default in describe() if f"`{key}`" not in text]
    assert missing == [], f"README configuration table lacks: {missing}"


def test_the_two_commands_come_first() -> None:
    """`make run` and `make test` are the first thing a reader meets."""
    text = README.read_text()
    assert text.index("make run") < text.index("## Configuration")
    assert text.index("make test") < text.index("## Configuration")
