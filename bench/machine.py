"""The machine and the source tree a run measures on: other work on the cores,
plain-Python speed, tool versions, the commit and uncommitted files."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
import timeit
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from plan import Plan
from procfs import machine_busy_jiffies
from procs import BENCH_DIR
from progress import log
from tools import tool_version

QUIET_CORES = 0.25


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def wait_quiet(max_s: float) -> float:
    """Wait (bounded) until other work uses < QUIET_CORES; returns seconds waited."""
    t0 = time.monotonic()
    while True:
        busy = background_load(2.0)
        waited = time.monotonic() - t0
        if busy < QUIET_CORES or waited >= max_s:
            log(f"machine: {busy} cores busy with other work after waiting {waited:.0f} s")
            return round(waited, 1)
        log(f"machine busy ({busy} cores, load {loadavg()}): waiting ...")
        time.sleep(min(15.0, max(0.0, max_s - waited)))


def background_load(seconds: float = 1.0) -> float:
    """Cores busy with something else (other tests, builds) before/after the run."""
    b0, t0 = machine_busy_jiffies()
    time.sleep(seconds)
    b1, t1 = machine_busy_jiffies()
    cores = os.cpu_count() or 1
    return round(cores * (b1 - b0) / max(1, t1 - t0), 2)


def python_speed_us() -> float:
    """How fast this machine runs plain Python: the best of 5 timings of
    ``sum(range(1000))``, in microseconds (lower is faster). The same CPU
    name can hide machines of quite different speed; this makes runs on
    different days comparable (a gateway's CPU per request scales with it)."""
    timer = timeit.Timer("sum(range(1000))")
    loops = 2_000
    return round(min(timer.repeat(5, loops)) / loops * 1e6, 2)


def environment(
    wrk: str, nginx: str | None, pg_url: str, plan: Plan, extra_env: dict[str, str]
) -> dict[str, Any]:
    """The results file's "meta": when, what code, on what machine, with what plan."""
    commit, changed = tree_state(BENCH_DIR.parent)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "dirty": bool(changed),
        "dirty_files": changed,
        "tollway": _tollway_version(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python_speed_us": python_speed_us(),
        "kernel": platform.release(),
        "wrk": tool_version([wrk, "-v"]),
        "nginx": tool_version([nginx, "-v"]) if nginx else None,
        "plan": plan.__dict__,
        "gateway_env": extra_env,
        "pg_url": pg_url,
    }


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def _tollway_version() -> str:
    try:
        return version("tollway")
    except Exception:
        return "?"


def tree_state(repo: Path) -> tuple[str, list[str]]:
    """HEAD and the tracked files with uncommitted changes (bench/ included)."""
    changed = [
        line.split(maxsplit=1)[-1]
        for line in _git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
        if line.strip()
    ]
    return _git(repo, "rev-parse", "HEAD"), changed


def _git(repo: Path, *argv: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, timeout=10)
    except OSError:
        return ""
    return done.stdout.decode().strip()
