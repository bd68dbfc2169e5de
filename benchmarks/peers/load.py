"""Peer benchmark: the load generator (wrk, one thread, a Lua script for the POST body) and what it measured.

Every leg is driven by the same wrk command line, so the client costs the same whoever serves. Around each run the
server's process-tree CPU and the machine's busy time are read from ``/proc``: CPU per request is server CPU over
requests completed, and "other load" is the machine's busy time minus what the server, the upstream and wrk used.
A run with any non-2xx answer or socket error fails loudly: a gateway that answers 401 fast is not fast.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from benchmarks.peers.procstat import machine_busy_s, tree_cpu_s

__all__ = ["Leg", "Measured", "ensure_wrk", "run_wrk"]


@frozen
class Leg:
    """One target: where to POST what, with which headers."""

    name: str
    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]


@frozen
class Measured:
    """One wrk run: throughput, latency percentiles, server CPU (total and per process) and the machine's load."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    server_cpu_by_pid: Mapping[int, float]
    upstream_cpu_s: float
    client_cpu_s: float
    other_cores: float  # CPU used meanwhile by processes outside the benchmark, in cores

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU milliseconds per completed request."""
        return self.server_cpu_s * 1000 / self.requests if self.requests else float("nan")


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing and this process may (root, apt-get)."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk (apt-get install wrk) ...", flush=True)
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: install it (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)")
    return found


def _lua(leg: Leg) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(dict(leg.body), separators=(',', ':'))}]==]"]
    headers = {"Content-Type": "application/json", **leg.headers}
    lines += [f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in headers.items()]
    return "\n".join(lines) + "\n"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _parse(output: str, leg: Leg, *, strict: bool) -> tuple[int, float, float, float, float]:
    """(requests, seconds, requests/s, p50 ms, p99 ms) from ``wrk --latency`` output."""
    problems = re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", output)
    if problems and strict:
        raise RuntimeError(f"{leg.name}: wrk saw errors ({'; '.join(problems)}):\n{output}")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (done and rate and p50 and p99):
        raise RuntimeError(f"{leg.name}: unreadable wrk output:\n{output}")
    seconds = _ms(done.group(2) + done.group(3)) / 1000
    return int(done.group(1)), seconds, float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1))


def run_wrk(
    wrk: str,
    leg: Leg,
    *,
    connections: int,
    duration_s: float,
    server_pid: int,
    upstream_pid: int,
    pin: Sequence[int] = (),
    strict: bool = True,
) -> Measured:
    """One ``wrk -t1 -c<connections> -d<duration>s --latency`` run against ``leg``, with CPU read around it;
    ``pin`` runs wrk on those cores only; ``strict=False`` (a warm-up) tolerates errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(leg))
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        script.name,
        leg.url,
    ]
    server_before, upstream_before = tree_cpu_s(server_pid), tree_cpu_s(upstream_pid)
    busy_before, total_before = machine_busy_s()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=duration_s + 60,
            preexec_fn=(lambda: os.sched_setaffinity(0, set(pin))) if pin else None,
        )
    finally:
        Path(script.name).unlink()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_after, total_after = machine_busy_s()
    server_after, upstream_after = tree_cpu_s(server_pid), tree_cpu_s(upstream_pid)
    if done.returncode != 0:
        raise RuntimeError(f"{leg.name}: wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    requests, seconds, rps, p50, p99 = _parse(done.stdout, leg, strict=strict)
    by_pid = {pid: cpu - server_before.get(pid, 0.0) for pid, cpu in server_after.items()}
    server_cpu = sum(by_pid.values())
    upstream_cpu = 0.0  # the direct leg: the server is the upstream
    if upstream_pid != server_pid:
        upstream_cpu = sum(upstream_after.values()) - sum(upstream_before.values())
    client_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    wall = (total_after - total_before) / (os.cpu_count() or 1)
    ours = server_cpu + upstream_cpu + client_cpu
    other = max(0.0, (busy_after - busy_before) - ours) / wall if wall > 0 else 0.0
    return Measured(requests, seconds, rps, p50, p99, server_cpu, by_pid, upstream_cpu, client_cpu, other)
