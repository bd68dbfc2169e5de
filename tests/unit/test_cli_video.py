"""``switchyard video`` runs a video job in-process, shows its progress on stderr and writes the MP4."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from adapters.fake import build_fake_providers
from entrypoints.cli import main
from ports.video import VIDEO_PORT
from tests.support.app import TEST_SECRET

pytestmark = pytest.mark.skipif(
    VIDEO_PORT not in build_fake_providers().providers,
    reason="the fake vendor does not serve video yet (adapters/fake/vendor.py: VIDEO_PORT: FakeVideoProvider)",
)


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")
    monkeypatch.setenv("SWITCHYARD_APP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWITCHYARD_VIDEO_POLL_INTERVAL_S", "0.1")
    monkeypatch.chdir(tmp_path)


def test_video_writes_the_mp4_and_shows_progress(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The README's example: the MP4 of the asked length is written, its path on stdout; the job's progress and
    a summary on stderr."""
    target = tmp_path / "boat.mp4"
    argv = ["video", "--model", "fake-video", "a paper boat on a river", "--duration", "1", "-o", str(target)]
    assert main([*argv, "--meta", "fake_finish_s=0.3"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(target)
    with av.open(str(target), mode="r") as container:
        assert container.duration is not None
        assert abs(container.duration / 1_000_000 - 1.0) < 0.2
    assert "queued on fake/video" in err
    assert "running" in err
    assert "succeeded" in err
    assert "100%" in err


def test_a_failed_job_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """The job's typed reason, no file, exit status 1."""
    argv = ["video", "a paper boat", "--meta", "fake_finish_s=0.1", "--meta", "fake_operation_error=provider_error"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "failed: video_generation_failed" in err


def test_a_duration_the_model_lacks_is_refused_before_any_job(capsys: pytest.CaptureFixture[str]) -> None:
    """A 422-class error prints one line naming the field."""
    assert main(["video", "a paper boat", "--duration", "3"]) == 1
    assert "duration_s" in capsys.readouterr().err
