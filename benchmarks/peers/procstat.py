"""Peer benchmark: CPU time from ``/proc``, for server CPU per request and for how busy the machine was meanwhile.

A server's CPU is the sum over its process tree (Hypercorn's spawned workers, uvicorn's reloader-less single
process), read before and after a load run; the machine's busy time comes from ``/proc/stat``, so a report can say
how much CPU went to processes outside the benchmark (other work on a shared machine).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["machine_busy_s", "pin_tree", "tree_cpu_s"]

_TICK = float(os.sysconf("SC_CLK_TCK"))


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of every thread) or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and each of its live descendants, by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)], cpu[int(entry)] = stat
    wanted = {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return {pid: cpu[pid] for pid in wanted if pid in cpu}


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores added up."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in first[:8]]  # user nice system idle iowait irq softirq steal
    total = sum(ticks)
    return (total - ticks[3] - ticks[4]) / _TICK, total / _TICK


def pin_tree(root: int, cores: set[int]) -> None:
    """Restrict every thread of ``root`` and its descendants to ``cores`` (threads started later inherit it)."""
    for pid in tree_cpu_s(root):
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                os.sched_setaffinity(int(task), cores)
            except OSError:  # the thread ended meanwhile
                continue
