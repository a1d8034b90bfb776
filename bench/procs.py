"""Processes the benchmark starts (upstreams, gateways, load generators), and
the guarantee that every one of them is stopped again.

Each child runs in its own session (its own process group), so a Ctrl+C in the
terminal reaches only bench/run.py, which then stops the children itself,
group by group: SIGTERM, a grace period, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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


def raise_fd_limit(want: int) -> int:
    """Soft RLIMIT_NOFILE up to ``want`` (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
