"""Processes the benchmark starts (upstreams, gateways, load generators), and
the guarantee that every one of them is stopped again.

Each child runs in its own session (its own process group), so a Ctrl+C in the
terminal reaches only bench/run.py, which then stops the children itself,
group by group: SIGTERM, a grace period, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
NGINX_TEMPLATE = BENCH_DIR / "nginx.conf"

# `tollway ...` run by this very interpreter (no shell shim in between), so the
# pid we hold is the gateway's own and /proc/PID is its memory and CPU.
TOLLWAY_MAIN = "import sys; sys.argv[0] = 'tollway'; from tollway.cli import main; main()"


class BenchError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class Supervisor:
    """Starts children and stops all of them, whatever happens."""

    workdir: Path
    children: list[Child] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        """No more starts (a start-up thread may still be running at Ctrl+C)."""
        self.closed = True

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Child:
        if self.closed:
            raise BenchError("shutting down")
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
        """Run a short-lived child (wrk, py-spy) to completion; returns its stdout."""
        if self.closed:
            raise BenchError("shutting down")
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        child = Child(name, popen, self.workdir / f"{name}.log")
        self.children.append(child)
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(child)
            raise BenchError(f"{name} did not finish within {timeout:.0f} s") from None
        finally:
            if child in self.children and not child.alive():
                self.children.remove(child)
        if popen.returncode != 0:
            raise BenchError(
                f"{name} exited with {popen.returncode}: {err.decode(errors='replace')[-2000:]}"
            )
        return out.decode(errors="replace")

    def stop(self, child: Child, grace_s: float = 5.0) -> None:
        if child.alive():
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.popen.wait(5)
        # Leftovers of the group (e.g. nginx workers) go too.
        _signal_group(child.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            with contextlib.suppress(Exception):
                self.stop(child)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl+C, so every `finally` runs."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, child: Child, timeout_s: float = 60.0) -> None:
    """Until the URL answers (any HTTP status), or the child dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited early:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{child.name} did not answer {url} within {timeout_s:.0f} s")


# --------------------------------------------------------------------------
# /proc readings: resident memory and CPU time of a process (or its group)


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
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every live process of a process group (nginx: master + workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


# --------------------------------------------------------------------------
# Tools from Debian's packages


def ensure_tool(binary: str, package: str, install: bool) -> str | None:
    """The tool's path; installs the Debian package first when allowed."""
    found = shutil.which(binary) or _sbin(binary)
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print(f"  installing {package} (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
        if done.returncode != 0 and argv[1] == "install":
            sys.stderr.write(done.stderr.decode(errors="replace")[-1000:])
            return None
    return shutil.which(binary) or _sbin(binary)


def _sbin(binary: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        path = Path(folder) / binary
        if path.exists():
            return str(path)
    return None


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except OSError:
        return "?"
    text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
    return text[0].split("Copyright")[0].strip() if text else "?"


# --------------------------------------------------------------------------
# Process groups (a gateway with --workers N is a uvicorn supervisor and N
# worker processes in one group): members, memory, CPU, pinning


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group, the group leader first."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found, key=lambda pid: (pid != pgid, pid))


def parent_pid(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def gateway_workers(pgid: int) -> list[int]:
    """The processes that serve requests: the leader itself when it has no
    children (one worker), else its children (uvicorn's worker processes)."""
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
    import resource

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


def raise_fd_limit(want: int) -> int:
    """Soft RLIMIT_NOFILE up to ``want`` (children inherit it); returns the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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
