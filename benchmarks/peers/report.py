"""Peer benchmark: the machine it ran on and the Markdown report (``benchmarks/results/peers.md``).

Two workers on a two-core machine cannot be measured "with the load generator elsewhere": wrk and the upstream take
cores from them. So the report gives the shared-core figure as measured, and beside it a projection from CPU time:
a worker that has a core to itself serves at most (requests / CPU seconds it spent) per second, so the capacity of
N workers is the requests of the run over the CPU seconds of its busiest worker (an uneven share of connections
shows up there). The ratio of the two-worker and one-worker capacities is the scaling the issue asks about. The
projection is checked on one worker: pinned to core 1, with wrk and the upstream pinned to core 0, its measured
requests/s should come close to the projected capacity.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import frozen

from benchmarks.peers.litellm_env import installed_version
from benchmarks.peers.load import Measured
from benchmarks.peers.streams import StreamTiming

__all__ = ["Machine", "Run", "machine", "render"]


@frozen
class Machine:
    """Where and when the run happened, and how loaded the machine was."""

    cpu: str
    cores: int
    python: str
    litellm: str
    switchyard: str
    wrk: str
    when: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


@frozen
class Run:
    """Everything one run measured, by leg name (``direct``, ``litellm``, ``native``, ``door``)."""

    machine: Machine
    duration_s: float
    connections: int
    rounds: Mapping[str, Sequence[Measured]]  # every round at full concurrency, by leg (``native-2w``: two workers)
    loaded: Mapping[str, Measured]
    single: Mapping[str, Measured]
    streams: Mapping[str, StreamTiming]
    workers: Mapping[str, Measured]


def machine(wrk: str, load_before: tuple[float, float, float], load_after: tuple[float, float, float]) -> Machine:
    """Describe this machine."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    try:
        switchyard = importlib.metadata.version("switchyard")
    except importlib.metadata.PackageNotFoundError:
        switchyard = "source tree"
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    wrk_version = (done.stdout or done.stderr).split(" [")[0].strip() or "wrk"
    return Machine(
        cpu=cpu,
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        litellm=installed_version() or "?",
        switchyard=switchyard,
        wrk=wrk_version,
        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        load_before=load_before,
        load_after=load_after,
    )


_NAMES = {
    "direct": "direct to the fake upstream",
    "litellm": "LiteLLM proxy",
    "native": "Switchyard `POST /api/v1/chat`",
    "door": "Switchyard `POST /v1/chat/completions`",
}


def _capacity(measured: Measured) -> float:
    """Requests/s the run's busiest process could serve with a core to itself."""
    busiest = max(measured.server_cpu_by_pid.values(), default=0.0)
    return measured.requests / busiest if busiest > 0 else float("nan")


def _split(measured: Measured) -> str:
    """How the two busiest processes shared the server CPU, e.g. ``52% / 48%``."""
    shares = sorted(measured.server_cpu_by_pid.values(), reverse=True)[:2]
    return " / ".join(f"{share / sum(shares):.0%}" for share in shares) if sum(shares) > 0 else "?"


def _nonstream(run: Run) -> list[str]:
    peer = run.loaded.get("litellm")
    direct = run.single.get("direct")
    count = max((len(r) for r in run.rounds.values()), default=1)
    how = f"best of {count} interleaved rounds" if count > 1 else "one round"
    lines = [
        f"### Non-streaming chat: `wrk -t1 -c{run.connections} -d{run.duration_s:g}s`, one server worker each, {how}",
        "",
        "| leg | requests/s | every round | x LiteLLM | server CPU ms/request | LiteLLM's CPU ÷ this | p50 ms "
        "| p99 ms | p50 at c=1 ms | added at c=1 ms | other load, cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, measured in run.loaded.items():
        label = _NAMES[name] + (f" {run.machine.litellm}" if name == "litellm" else "")
        gateway = peer is not None and name not in ("direct", "litellm")
        ratio = f"{measured.rps / peer.rps:.2f}x" if gateway and peer else ""
        cpu_ratio = f"{peer.cpu_ms_per_request / measured.cpu_ms_per_request:.2f}x" if gateway and peer else ""
        single = run.single.get(name)
        added = f"{single.p50_ms - direct.p50_ms:+.2f}" if single and direct and name != "direct" else ""
        c1 = f"{single.p50_ms:.2f}" if single else ""
        every = ", ".join(f"{r.rps:,.0f}" for r in run.rounds.get(name, ()))
        lines.append(
            f"| {label} | {measured.rps:,.0f} | {every} | {ratio} | {measured.cpu_ms_per_request:.2f} | {cpu_ratio} "
            f"| {measured.p50_ms:.1f} | {measured.p99_ms:.1f} | {c1} | {added} | {measured.other_cores:.2f} |"
        )
    lines += [
        "",
        "Server CPU is the server's process tree (for the direct leg: the upstream's), read from `/proc` around the "
        "run; other load is CPU used meanwhile by processes outside the benchmark. On a busy machine the CPU ratio is "
        "the steadier of the two ratios. Latency at c=1: `wrk -c1`, best p50 of the rounds, half as long.",
    ]
    return lines


def _streaming(run: Run) -> list[str]:
    direct = run.streams.get("direct")
    count = next(iter(run.streams.values())).streams if run.streams else 0
    lines = [
        f"### Streaming: concurrency 1, {count} streams of 40 tokens paced 5 ms apart, one httpx client for every leg",
        "",
        "| leg | time to first token p50 ms | over direct ms | mean inter-token gap ms | gap ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, timing in run.streams.items():
        over = f"{timing.ttft_ms - direct.ttft_ms:+.2f}" if direct and name != "direct" else ""
        ratio = f"{timing.gap_ms / direct.gap_ms:.3f}" if direct and name != "direct" else ""
        label = _NAMES[name] + (f" {run.machine.litellm}" if name == "litellm" else "")
        lines.append(f"| {label} | {timing.ttft_ms:.2f} | {over} | {timing.gap_ms:.2f} | {ratio} |")
    return lines


def _workers(run: Run) -> list[str]:
    one, two, pinned = run.loaded.get("native"), run.workers.get("2w"), run.workers.get("1w-pinned")
    if not one or not two:
        return []
    lines = [
        "### `--workers 2` on a machine where the load generator cannot run elsewhere",
        "",
        f"Measured on {run.machine.cores} shared cores (wrk, the upstream and the workers compete), and projected "
        "from CPU time: a worker with a core to itself serves (requests / its CPU seconds) per second; the capacity "
        "of N workers is limited by the busiest one.",
        "",
        "| Switchyard `POST /api/v1/chat` | requests/s measured (shared cores) | every round | server CPU ms/request "
        "| busiest worker CPU ms/request | projected capacity req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, measured, key in (("1 worker", one, "native"), ("2 workers", two, "native-2w")):
        every = ", ".join(f"{r.rps:,.0f}" for r in run.rounds.get(key, ()))
        busiest = max(measured.server_cpu_by_pid.values()) * 1000 / measured.requests
        lines.append(
            f"| {label} | {measured.rps:,.0f} | {every} | {measured.cpu_ms_per_request:.2f} | {busiest:.2f} "
            f"| {_capacity(measured):,.0f} |"
        )
    paired = zip(run.rounds.get("native", ()), run.rounds.get("native-2w", ()), strict=False)
    per_round = ", ".join(f"{_capacity(b) / _capacity(a):.2f}x (split {_split(b)})" for a, b in paired)
    lines += [
        "",
        f"Two workers over one: **{_capacity(two) / _capacity(one):.2f}x** projected (target ≥ 1.6x), "
        f"{two.rps / one.rps:.2f}x measured on the shared cores; the two workers' CPU split {_split(two)}. "
        f"Round by round: {per_round}. Contention inflates CPU time per request, so on a busy machine the "
        "projection is conservative; an uneven split is the listening socket's doing (one worker may accept most "
        "of wrk's connections), and it is what a keep-alive client pool meets too.",
    ]
    if pinned:
        lines.append(
            f"Check of the projection: one worker pinned to core 1 with wrk and the upstream pinned to core 0 served "
            f"{pinned.rps:,.0f} req/s against {_capacity(one):,.0f} projected "
            f"({pinned.rps / _capacity(one):.0%}; the rest of the machine's work also lands on core 1)."
        )
    return lines


def render(run: Run) -> str:
    """The report as Markdown."""
    m = run.machine
    other = max((x.other_cores for x in (*run.loaded.values(), *run.workers.values())), default=0.0)
    lines = [
        "## Peer benchmark: Switchyard and LiteLLM in the same run",
        "",
        f"{m.when} · {m.cpu}, {m.cores} cores · Python {m.python} · Switchyard {m.switchyard} · LiteLLM {m.litellm} "
        f"· {m.wrk} · load average {m.load_before[0]:.2f} before, {m.load_after[0]:.2f} after; other processes "
        f"used up to {other:.2f} cores during a load run. Reproduce with `make bench-peers`; the ratios are the point.",
        "",
        "Same loopback fake OpenAI upstream for every leg (`benchmarks/peers/upstream.py`, the emulator's bodies with "
        "usage). LiteLLM: master key, no database. Switchyard: default local settings (JWT auth, metrics, usage "
        "ledger on SQLite) with JSON logs at INFO, model `openai/gpt-4o-mini` pointed at the upstream.",
        "",
        *_nonstream(run),
        "",
        *_streaming(run),
    ]
    workers = _workers(run)
    if workers:
        lines += ["", *workers]
    return "\n".join(lines) + "\n"
