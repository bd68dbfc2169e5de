"""Peer benchmark: ``make bench-peers`` (``python -m benchmarks.peers [--quick]``).

One run, one machine, one load generator: direct to the fake upstream, LiteLLM's proxy, and Switchyard (native
``POST /api/v1/chat`` and the OpenAI door ``POST /v1/chat/completions``), one server worker each, plus Switchyard with
two workers, measured the only honest way two cores allow (see ``benchmarks/peers/report.py``). All servers run at
once and the legs are loaded in interleaved rounds, so a shift in the machine's other load hits every leg alike.
Writes ``benchmarks/results/peers.md`` (and ``peers.json``) and prints the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from attrs import asdict, frozen

from benchmarks.peers import servers
from benchmarks.peers.litellm_env import LITELLM_VERSION, ensure_litellm
from benchmarks.peers.load import Leg, Measured, ensure_wrk, run_wrk
from benchmarks.peers.procstat import pin_tree
from benchmarks.peers.report import Run, machine, render
from benchmarks.peers.streams import StreamTiming, Wire, time_streams
from benchmarks.peers.upstream import STREAM_MODEL

RESULTS = Path(__file__).resolve().parents[1] / "results"
MESSAGES = [{"role": "user", "content": "Say hello."}]
WARMUP_S = 2.0


def _legs(name: str, target: servers.Running, path: str, model: str, stream_model: str) -> tuple[Leg, Leg]:
    headers = {"Authorization": f"Bearer {target.token}"}
    url = f"{target.base_url}{path}"
    whole = Leg(name, url, {"model": model, "messages": MESSAGES}, headers)
    streamed = Leg(name, url, {"model": stream_model, "messages": MESSAGES, "stream": True}, headers)
    return whole, streamed


@frozen
class _Target:
    """A leg and the processes it loads: the server's root pid and the upstream's."""

    key: str
    whole: Leg
    streamed: Leg
    wire: Wire
    server: int
    upstream: int


class _Bench:
    """The run's settings and the wrk binary, and everything measured so far (best of the rounds, and all rounds)."""

    def __init__(self, args: argparse.Namespace, wrk: str) -> None:
        self.args = args
        self.wrk = wrk
        self.loaded: dict[str, Measured] = {}
        self.single: dict[str, Measured] = {}
        self.rounds: dict[str, list[Measured]] = {}
        self.streams: dict[str, StreamTiming] = {}
        self.workers: dict[str, Measured] = {}

    def wrk_run(self, target: _Target, connections: int, duration_s: float, pin: tuple[int, ...] = ()) -> Measured:
        """One measured wrk run, printed as it lands."""
        measured = run_wrk(
            self.wrk,
            target.whole,
            connections=connections,
            duration_s=duration_s,
            server_pid=target.server,
            upstream_pid=target.upstream,
            pin=pin,
        )
        print(
            f"  {target.key} c={connections}: {measured.rps:,.0f} req/s, p50 {measured.p50_ms:.2f} ms, "
            f"p99 {measured.p99_ms:.2f} ms, server CPU {measured.cpu_ms_per_request:.2f} ms/req, "
            f"other load {measured.other_cores:.2f} cores",
            flush=True,
        )
        return measured

    def measure(self, targets: list[_Target]) -> None:
        """Warm every target up, then interleaved rounds: each round loads every target once, so a change in the
        machine's other load hits every leg alike; the best round of each leg is kept (foreign load only slows)."""
        args = self.args
        for target in targets:
            run_wrk(
                self.wrk,
                target.whole,
                connections=args.connections,
                duration_s=WARMUP_S,
                server_pid=target.server,
                upstream_pid=target.upstream,
                strict=False,
            )
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}, {args.connections} connections ...", flush=True)
            for target in targets:
                measured = self.wrk_run(target, args.connections, args.duration)
                self.rounds.setdefault(target.key, []).append(measured)
                best = self.loaded.get(target.key)
                if best is None or measured.rps > best.rps:
                    self.loaded[target.key] = measured
        single = [t for t in targets if t.key in _STREAMED]
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}, 1 connection ...", flush=True)
            for target in single:
                measured = self.wrk_run(target, 1, args.duration / 2)
                best = self.single.get(target.key)
                if best is None or measured.p50_ms < best.p50_ms:
                    self.single[target.key] = measured
        print(f"streams, {args.streams} per leg ...", flush=True)
        for target in single:
            timing = time_streams(target.streamed, target.wire, args.streams)
            self.streams[target.key] = timing
            print(f"  {target.key}: TTFT p50 {timing.ttft_ms:.2f} ms, gap {timing.gap_ms:.2f} ms", flush=True)


_STREAMED = ("direct", "litellm", "native", "door")


def _target(key: str, server: servers.Running, up: servers.Running, path: str, wire: Wire) -> _Target:
    """Peers name the models as the upstream does; Switchyard names them ``vendor/model`` from its catalog."""
    model, stream_model = ("gpt-4o-mini", STREAM_MODEL) if key in ("direct", "litellm") else _OURS
    whole, streamed = _legs(key, server, path, model, stream_model)
    return _Target(key, whole, streamed, wire, server.pid, up.pid)


_OURS = ("openai/gpt-4o-mini", f"openai/{STREAM_MODEL}")


def _measure(bench: _Bench, folder: Path) -> None:
    """Every server up at once (an idle one costs next to nothing), then the interleaved rounds."""
    args = bench.args
    litellm = ensure_litellm()
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(servers.upstream(folder))
        print(f"starting LiteLLM proxy {LITELLM_VERSION} and Switchyard ...", flush=True)
        peer = stack.enter_context(servers.litellm_proxy(folder, litellm, up.base_url))
        ours = stack.enter_context(servers.switchyard(folder, up.base_url))
        targets = [
            _target("direct", up, up, "/v1/chat/completions", "openai"),
            _target("litellm", peer, up, "/v1/chat/completions", "openai"),
            _target("native", ours, up, "/api/v1/chat", "switchyard"),
            _target("door", ours, up, "/v1/chat/completions", "openai"),
        ]
        two_workers = args.workers and (os.cpu_count() or 1) >= 2
        if two_workers:
            both = stack.enter_context(servers.switchyard(folder, up.base_url, workers=2))
            targets.append(_target("native-2w", both, up, "/api/v1/chat", "switchyard"))
        bench.measure(targets)
        if two_workers:
            bench.workers["2w"] = bench.loaded.pop("native-2w")
            print("one worker pinned to core 1, wrk and the upstream to core 0 ...", flush=True)
            everything = set(range(os.cpu_count() or 1))
            pin_tree(ours.pid, {1})
            pin_tree(up.pid, {0})
            try:
                bench.workers["1w-pinned"] = bench.wrk_run(targets[2], args.connections, args.duration, pin=(0,))
            finally:
                pin_tree(up.pid, everything)
                pin_tree(ours.pid, everything)


def main(argv: list[str] | None = None) -> int:
    """Measure, write ``benchmarks/results/peers.md`` and ``peers.json``, print the report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: one round of 3 s runs, 5 streams per leg")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=20, help="wrk connections (default 20)")
    parser.add_argument("--streams", type=int, default=30, help="streams per leg for TTFT (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept (default 3)")
    parser.add_argument("--no-workers", dest="workers", action="store_false", help="skip the two-worker check")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for peers.md and peers.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.streams, args.rounds = 3.0, 5, 1
    bench = _Bench(args, ensure_wrk())
    before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="switchyard-peers-") as tmp:
        _measure(bench, Path(tmp))
    run = Run(
        machine=machine(bench.wrk, before, os.getloadavg()),
        duration_s=args.duration,
        connections=args.connections,
        rounds=bench.rounds,
        loaded=bench.loaded,
        single=bench.single,
        streams=bench.streams,
        workers=bench.workers,
    )
    text = render(run)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.md").write_text(text)
    (args.out / "peers.json").write_text(json.dumps(asdict(run), indent=2, default=str) + "\n")
    print()
    print(text)
    print(f"written: {args.out / 'peers.md'}, {args.out / 'peers.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
