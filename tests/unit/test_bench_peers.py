"""The peer benchmark reads wrk's output faithfully, refuses runs with errors, and reports ratios against LiteLLM."""

from __future__ import annotations

import pytest

from benchmarks.peers.load import Leg, Measured, _parse
from benchmarks.peers.report import Machine, Run, render
from benchmarks.peers.streams import StreamTiming

_LEG = Leg("native", "http://127.0.0.1:1/api/v1/chat", {"model": "m"}, {})
_OUTPUT = """Running 10s test @ http://127.0.0.1:1/api/v1/chat
  1 threads and 20 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.50s
  2407 requests in 10.02s, 1.10MB read
Requests/sec:    240.22
Transfer/sec:    112.00KB
"""


def test_wrk_output_is_read_with_its_units() -> None:
    """Requests, seconds, rate and the p50/p99 percentiles in milliseconds, whatever unit wrk printed."""
    assert _parse(_OUTPUT, _LEG, strict=True) == (2407, 10.02, 240.22, 0.812, 1500.0)


def test_a_run_with_errors_fails_unless_it_is_a_warmup() -> None:
    """Non-2xx answers make a measured run fail (a gateway answering 401 fast is not fast); a warm-up goes on."""
    broken = _OUTPUT.replace("Requests/sec", "  Non-2xx or 3xx responses: 7\nRequests/sec")
    with pytest.raises(RuntimeError, match="Non-2xx or 3xx responses: 7"):
        _parse(broken, _LEG, strict=True)
    assert _parse(broken, _LEG, strict=False)[0] == 2407


def _measured(
    rps: float, cpu_s: float, requests: int, p50: float = 10.0, by_pid: dict[int, float] | None = None
) -> Measured:
    return Measured(requests, 10.0, rps, p50, p50 * 3, cpu_s, by_pid or {1: cpu_s}, 0.1, 0.2, 0.5)


def test_report_states_ratios_over_litellm_and_the_worker_projection() -> None:
    """Requests/s and CPU ratios against LiteLLM, added latency over direct, and the two-worker projection."""
    machine = Machine(
        "Test CPU", 2, "3.11.7", "1.108.7", "0.1.0", "wrk 4.1.0", "2026-01-01 00:00 UTC", (1, 1, 1), (2, 2, 2)
    )
    run = Run(
        machine=machine,
        duration_s=10,
        connections=20,
        rounds={
            "litellm": [_measured(90, 10.0, 900), _measured(100, 10.0, 1000)],
            "native": [_measured(500, 2.0, 5000), _measured(450, 2.0, 4500)],
            "native-2w": [
                _measured(700, 4.0, 7000, by_pid={1: 0.1, 2: 2.0, 3: 1.9}),
                _measured(650, 4.0, 6500, by_pid={2: 3.6, 3: 0.4}),
            ],
        },
        loaded={
            "direct": _measured(3000, 0.3, 30000),
            "litellm": _measured(100, 10.0, 1000),
            "native": _measured(500, 2.0, 5000),
        },
        single={"direct": _measured(900, 0.1, 9000, p50=0.5), "native": _measured(300, 1.0, 3000, p50=1.7)},
        streams={"direct": StreamTiming(30, 5.5, 5.1), "native": StreamTiming(30, 7.0, 5.2)},
        workers={"2w": _measured(700, 4.0, 7000, by_pid={1: 0.1, 2: 2.0, 3: 1.9})},
    )
    text = render(run)
    assert "| Switchyard `POST /api/v1/chat` | 500 | 500, 450 | 5.00x | 0.40 | 25.00x |" in text
    assert "best of 2 interleaved rounds" in text
    assert "+1.20" in text  # added p50 at concurrency 1
    assert "| +1.50 | 5.20 | 1.020 |" in text  # TTFT over direct, gap, gap ratio
    assert "**1.40x** projected" in text  # (7000 requests / 2.0 s busiest worker) / (5000 / 2.0)
    assert "Round by round: 1.40x (split 51% / 49%), 0.80x (split 90% / 10%)" in text
    assert "Test CPU, 2 cores" in text
    assert "LiteLLM 1.108.7" in text
