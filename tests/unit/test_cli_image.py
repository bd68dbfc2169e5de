"""``switchyard image`` runs the image service in-process and writes the images to files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

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
    monkeypatch.setenv("SWITCHYARD_APP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_image_writes_the_png_and_prints_its_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``-o out.png`` writes a decodable PNG of the asked size; the path goes to stdout, model and cost to stderr."""
    target = tmp_path / "out.png"
    assert main(["image", "--model", "fake/image", "a lighthouse", "--size", "512x512", "-o", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(target)
    with Image.open(target) as picture:
        assert (picture.format, picture.size) == ("PNG", (512, 512))
    assert "fake/image" in err
    assert "1 image(s)" in err
    assert "$0.010000" in err


def test_several_images_get_numbered_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With ``-n 2`` the files are NAME-1 and NAME-2, in the asked format; other prompts give other pixels."""
    assert main(["image", "a", "lighthouse", "-n", "2", "--format", "jpeg", "-o", str(tmp_path / "shot.jpg")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "shot-1.jpg"), str(tmp_path / "shot-2.jpg")]
    with Image.open(tmp_path / "shot-1.jpg") as first, Image.open(tmp_path / "shot-2.jpg") as second:
        assert first.format == second.format == "JPEG"
        assert first.tobytes() != second.tobytes()


def test_default_file_name_follows_the_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Without ``-o`` the image is ``image.<ext>`` in the working directory."""
    assert main(["image", "a lighthouse", "--format", "webp"]) == 0
    assert capsys.readouterr().out.strip() == "image.webp"
    with Image.open(tmp_path / "image.webp") as picture:
        assert picture.format == "WEBP"


def test_a_bad_size_fails_with_one_line_naming_the_allowed_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    """A size the model does not draw exits 1 with the validation error on one line, and no file is written."""
    assert main(["image", "a lighthouse", "--size", "333x333"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("switchyard: validation_error: size:")
    assert "1024x1024" in err


def test_a_text_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A model without the image capability exits 1 with ``capability_error``."""
    assert main(["image", "--model", "fake/echo", "a lighthouse"]) == 1
    assert capsys.readouterr().err.startswith("switchyard: capability_error:")
