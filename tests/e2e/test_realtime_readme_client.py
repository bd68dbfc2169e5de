"""The README's realtime client is true: the python block of its "### Realtime voice" section, run as it stands (a
subprocess of the project's python in an empty directory, with ``TOKEN`` and ``SWITCHYARD_WS`` set as the README
says), talks to a real server's fake realtime model, prints the final transcripts and ``done``, and saves the
answer's audio in ``answer.wav``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import mint
from tests.support.server import RunningServer, running_server

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Realtime voice"


def readme_client() -> str:
    """The python code block of the README's realtime section (exactly one)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION) + len(SECTION)
    following = re.search(r"^#{1,3} ", text[start:], flags=re.MULTILINE)
    section = text[start : start + following.start()] if following else text[start:]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"the realtime section should hold one python block, found {len(blocks)}"
    code: str = blocks[0]
    return code


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("realtime-readme")) as running:
        yield running


def test_the_section_has_a_client_that_talks_to_the_fake_model() -> None:
    """The block is a client of the realtime route for ``fake-realtime`` that reads the two variables."""
    code = readme_client()
    assert "/api/v1/ws/realtime?model=fake-realtime" in code
    assert "SWITCHYARD_WS" in code
    assert "TOKEN" in code


def test_the_readme_client_runs_against_a_real_server(server: RunningServer, tmp_path: Path) -> None:
    """Run as the README says: it exits 0, prints the assistant's final transcript and ``done``, and writes a
    non-empty ``answer.wav`` (pcm16 mono at 24 kHz)."""
    script = tmp_path / "realtime_client.py"
    script.write_text(readme_client(), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHYARD_")}
    env.update(
        {
            "TOKEN": mint(),
            "SWITCHYARD_WS": server.base_url.replace("http://", "ws://"),
            "NO_PROXY": "*",
            "no_proxy": "*",
        }
    )
    done = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout
    assert done.returncode == 0, f"stdout:\n{output}\nstderr:\n{done.stderr}\nserver:\n{server.log()[-4000:]}"
    lines = output.splitlines()
    said = [line for line in lines if line.startswith("transcript.output: ")]
    assert said, output
    assert all(line.removeprefix("transcript.output: ").strip() for line in said), output
    assert any("'type': 'done'" in line for line in lines), output
    assert not any("'type': 'error'" in line or "'type': 'cancelled'" in line for line in lines), output
    answer = tmp_path / "answer.wav"
    assert answer.is_file(), output
    with wave.open(str(answer), "rb") as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2, 24_000)
        assert clip.getnframes() > 0
