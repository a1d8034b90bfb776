"""Tollway's own processes for end-to-end tests: the simulator and gateways
started as ``python -m tollway ...`` on loopback, waited for, stopped; and
the Operator that sets them up through the management API. The
``simulator_url`` fixture (conftest) starts the simulator this way."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class Operator:
    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, json: dict[str, Any], key: str = ADMIN_KEY) -> httpx.Response:
        return httpx.post(self.base + path, json=json, headers={"Authorization": f"Bearer {key}"})

    def setup(self, simulator_url: str, credit: str) -> tuple[str, str, int]:
        channel = {
            "name": "sim",
            "type": "openai",
            "base_url": simulator_url,
            "api_key": "sim-key",
            "models": ["*"],
        }
        assert self.post("/api/channels", json=channel).status_code == 201
        user = self.post("/api/users", json={"username": "e2e"}).json()
        got = self.post(
            f"/api/users/{user['id']}/credit", json={"amount_usd": credit, "reason": "e2e"}
        )
        assert got.status_code == 200
        mkey = user["management_key"]
        time.sleep(0.5)  # other replicas see the new channel within their 250 ms poll
        token = httpx.post(
            f"{self.base}/api/tokens",
            json={"name": "e2e"},
            headers={"Authorization": f"Bearer {mkey}"},
        ).json()
        return mkey, token["key"], token["id"]

    def me(self, mkey: str) -> dict[str, Any]:
        got = httpx.get(f"{self.base}/api/me", headers={"Authorization": f"Bearer {mkey}"})
        data: dict[str, Any] = got.json()
        return data

    def me_at_rest(self, mkey: str) -> dict[str, Any]:
        """/api/me once nothing is held: a gateway process returns the reserve
        it keeps for a busy account (tollway.leases) after a second idle."""
        deadline = time.monotonic() + 10
        while True:
            me = self.me(mkey)
            if me["held_usd"] == "0" or time.monotonic() > deadline:
                return me
            time.sleep(0.1)

    def usage(self, mkey: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(
                f"{self.base}/api/usage", params=params, headers={"Authorization": f"Bearer {mkey}"}
            ).json()
            records += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return records
