"""The server process (`tollway serve`, `python -m tollway.server`) as real
processes on loopback: workers die with their supervisor, and a start on a
port something still holds refuses in one line instead of serving beside it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds worker processes in /proc (Linux)"
)


SERVE = ["-m", "tollway", "serve"]  # migrates, then execs into the server process
SERVER = ["-m", "tollway.server"]  # the server process itself


class Serve:
    """`tollway serve` (or the server process) on a port, in its own process group, logged."""

    def __init__(
        self, tmp: Path, port: int, *args: str, name: str = "serve", entry: list[str] = SERVE
    ) -> None:
        self.port, self.log = port, tmp / f"{name}.log"
        env = {**os.environ, "TOLLWAY_DATA_DIR": str(tmp / "data")}
        env.pop("TOLLWAY_DATABASE_URL", None)
        with self.log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, *entry, "--port", str(port), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so kill() ends its workers too
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, seconds: float = 40) -> None:
        deadline = time.monotonic() + seconds
        while not answers(self.port):
            assert self.proc.poll() is None, f"exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"not ready after {seconds}s:\n{self.output()}"
            time.sleep(0.05)

    def exit_code(self, seconds: float = 30) -> int:
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {seconds}s:\n{self.output()}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextlib.contextmanager
def serving(
    tmp: Path, port: int, *args: str, name: str = "serve", entry: list[str] = SERVE
) -> Iterator[Serve]:
    server = Serve(tmp, port, *args, name=name, entry=entry)
    try:
        yield server
    finally:
        server.kill()


def answers(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    return False


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def refused(server: Serve) -> str:
    """The output of a start that must refuse: non-zero, one clear line."""
    code = server.exit_code()
    output = server.output()
    assert code != 0, output
    assert "Traceback" not in output, output
    assert f"cannot listen on 127.0.0.1:{server.port}" in output, output
    return output


def test_workers_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, port, "--workers", "2") as server:
        server.wait_ready()
        workers = children(server.proc.pid)  # `tollway serve` execs into the supervisor
        assert len(workers) == 2, workers
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if alive(pid)], "workers outlived their supervisor"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


ENTRIES = pytest.mark.parametrize("entry", [SERVE, SERVER], ids=["serve", "server"])
WORKERS = pytest.mark.parametrize("workers", ["2", "1"])


@ENTRIES
@WORKERS
def test_a_start_on_a_port_a_gateway_holds_refuses(
    tmp_path: Path, entry: list[str], workers: str
) -> None:
    port = free_port()
    with serving(tmp_path, port, "--workers", "2", name="first") as first:
        first.wait_ready()
        with serving(tmp_path, port, "--workers", workers, name="2nd", entry=entry) as second:
            output = refused(second)
            assert "address already in use" in output, output
            assert answers(port)  # the first goes on


@ENTRIES
@WORKERS
def test_a_start_on_a_port_another_program_holds_refuses(
    tmp_path: Path, entry: list[str], workers: str
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with serving(tmp_path, port, "--workers", workers, entry=entry) as server:
            refused(server)


def test_a_restart_after_a_clean_stop_serves_at_once(tmp_path: Path) -> None:
    """Connections the stopped gateway closed linger in TIME_WAIT on the port;
    they must not block the next start."""
    port = free_port()
    with serving(tmp_path, port, "--workers", "2", name="first") as first:
        first.wait_ready()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(4):
                assert client.get("/health").status_code == 200
            first.proc.send_signal(signal.SIGTERM)  # the server closes the kept-alive one
            assert first.exit_code() == 0, first.output()
    with serving(tmp_path, port, "--workers", "2", name="second") as second:
        second.wait_ready()
