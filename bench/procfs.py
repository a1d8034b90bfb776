"""/proc readings: resident memory and CPU time of a process, of its process
group (a gateway with --workers N is tollway's supervisor and N worker
processes in one group), of the machine; worker placement and connections."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    return _cpu_of(_stat_fields(pid))


def _cpu_of(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def _group_members(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """Every process of a process group still in /proc, zombies too, with its
    stat fields; the ones gone or unreadable while /proc is walked are skipped."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid:  # field 5: pgrp
            yield int(entry), fields


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every live process of a process group (nginx: master + workers)."""
    total = 0.0
    for _, fields in _group_members(pgid):
        total += _cpu_of(fields)
    return total


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group, the group leader first."""
    found = [pid for pid, fields in _group_members(pgid) if fields[0] != "Z"]
    return sorted(found, key=lambda pid: (pid != pgid, pid))


def parent_pid(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def gateway_workers(pgid: int) -> list[int]:
    """The processes that serve requests: the leader itself when it has no
    children (one worker), else its children (the supervisor's workers; a
    multiprocessing resource tracker, should one run there, serves nothing)."""
    members = group_pids(pgid)
    children = [
        pid
        for pid in members
        if pid != pgid and _safe_ppid(pid) == pgid and b"resource_tracker" not in _cmdline(pid)
    ]
    return children or [pgid]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _safe_ppid(pid: int) -> int:
    try:
        return parent_pid(pid)
    except (OSError, ValueError):
        return -1


def group_rss_kib(pgid: int) -> dict[str, Any]:
    """VmRSS summed over the group's processes (and each one's)."""
    per: dict[str, int] = {}
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError, KeyError):
            per[str(pid)] = rss_kib(pid)["VmRSS"]
    return {"VmRSS": sum(per.values()), "processes": len(per), "per_pid": per}


def per_pid_cpu_seconds(pgid: int) -> dict[int, float]:
    out = {}
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError, ValueError):
            out[pid] = cpu_seconds(pid)
    return out


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def children_cpu_seconds() -> float:
    """CPU time of this process's reaped children (wrk, the stream client...)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pin(pid: int, cpus: str) -> bool:
    """taskset every thread of a process to a CPU list ("0", "1", "0,1")."""
    taskset = shutil.which("taskset")
    if taskset is None:
        return False
    done = subprocess.run(
        [taskset, "-a", "-p", "-c", cpus, str(pid)], capture_output=True, timeout=10, check=False
    )
    return done.returncode == 0


def pids_with_cmdline(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (PostgreSQL names each
    backend "postgres: ... USER DATABASE ...", so a scratch database's backends
    are found by its name)."""
    needle = fragment.encode()
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and needle in _cmdline(int(entry))
    ]


def pids_cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            out[pid] = cpu_seconds(pid)
    return out


def worker_connections(pgid: int, port: int) -> list[int]:
    """Established TCP connections to ``port`` held by each gateway worker
    (socket inodes of /proc/PID/fd matched against /proc/net/tcp{,6})."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    established.add(inode)
    counts = []
    for pid in gateway_workers(pgid):
        n = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in established:
                        n += 1
        counts.append(n)
    return counts
