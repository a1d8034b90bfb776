"""Tollway's own processes for end-to-end tests: the simulator and gateways
started as ``python -m tollway ...`` on loopback, waited for, stopped."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from conftest import ADMIN_KEY, free_port


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tollway", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.05)
    raise RuntimeError(f"not ready after {seconds}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def gateway_processes(
    env: dict[str, str], tmp: Path, count: int = 1, workers: int = 1
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for i in range(count):
            port = free_port()
            log = tmp / f"gateway{i}.log"
            proc = start_process(
                ["serve", "--port", str(port), "--workers", str(workers)],
                {"TOLLWAY_ADMIN_KEY": ADMIN_KEY, **env},
                log,
            )
            started.append((f"http://127.0.0.1:{port}", proc))
            wait_ready(f"http://127.0.0.1:{port}/health", proc, log)
        yield started
    finally:
        for _, proc in started:
            stop(proc)


@contextlib.contextmanager
def gateways(env: dict[str, str], tmp: Path, count: int = 1) -> Iterator[list[str]]:
    with gateway_processes(env, tmp, count) as started:
        yield [url for url, _ in started]
