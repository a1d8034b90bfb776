"""Failover with real processes: a gateway and three simulators, each a
channel; one simulator is killed (SIGKILL) mid-load. Calls not yet answered
move to the others: no non-streamed call and no stream that had not started
fails, and every call is billed exactly once (balance = credit - Σ records,
to the nano-USD)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_KEY, free_port
from processes import gateways, start_process, stop, wait_ready

HELLO = [{"role": "user", "content": "Hello there"}]
MODEL = "gpt-4o-mini"
CALLS = 150
STREAMS = 30


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for i in range(3):
            port = free_port()
            log = tmp_path / f"sim{i}.log"
            args = ["simulate", "--port", str(port), "--api-key", "sim-key", "--latency-ms", "30"]
            proc = start_process(args, {}, log)
            wait_ready(f"http://127.0.0.1:{port}/_sim/stats", proc, log)
            started.append((f"http://127.0.0.1:{port}/v1", proc))
        yield started
    finally:
        for _, proc in started:
            if proc.poll() is None:
                stop(proc)


def admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def setup(base: str, urls: list[str]) -> tuple[str, str]:
    with admin(base) as op:
        for i, url in enumerate(urls):
            body = {"name": f"sim{i}", "type": "openai", "base_url": url,
                    "api_key": "sim-key", "models": ["*"]}  # fmt: skip
            assert op.post("/api/channels", json=body).status_code == 201
        user = op.post("/api/users", json={"username": "failover"}).json()
        got = op.post(f"/api/users/{user['id']}/credit", json={"amount_usd": "5", "reason": "t"})
        assert got.status_code == 200
    mkey = user["management_key"]
    headers = {"Authorization": f"Bearer {mkey}"}
    token = httpx.post(f"{base}/api/tokens", json={"name": "t"}, headers=headers).json()
    return mkey, token["key"]


async def load(base: str, key: str, kill: subprocess.Popen[bytes]) -> dict[str, int]:
    """CALLS calls, 10 at a time, the simulator killed a third of the way in;
    then STREAMS streams, all started after the kill."""
    outcome = {"ok": 0, "failed": 0, "streams_ok": 0, "streams_failed": 0}
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    gate = asyncio.Semaphore(10)

    async def one(i: int) -> None:
        async with gate:
            if i == CALLS // 3:
                kill.send_signal(signal.SIGKILL)
            try:
                got = await client.chat.completions.create(model=MODEL, messages=HELLO)
                assert got.choices[0].message.content
                outcome["ok"] += 1
            except openai.APIError:
                outcome["failed"] += 1

    async def stream() -> None:
        try:
            parts = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in parts if c.choices])
            assert text
            outcome["streams_ok"] += 1
        except openai.APIError:
            outcome["streams_failed"] += 1

    async with client:
        await asyncio.gather(*(one(i) for i in range(CALLS)))
        kill.wait(5)
        await asyncio.gather(*(stream() for _ in range(STREAMS)))
    return outcome


@pytest.mark.timeout(180)
async def test_killing_a_channels_upstream_mid_load_loses_no_call(
    simulators: list[tuple[str, subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    env = {"TOLLWAY_DATA_DIR": str(tmp_path / "data")}
    with gateways(env, tmp_path) as (base,):
        mkey, key = setup(base, [url for url, _ in simulators])
        outcome = await load(base, key, simulators[1][1])
        assert outcome == {"ok": CALLS, "failed": 0, "streams_ok": STREAMS, "streams_failed": 0}
        headers = {"Authorization": f"Bearer {mkey}"}
        records = httpx.get(f"{base}/api/usage?limit=1000", headers=headers).json()["data"]
        assert len(records) == CALLS + STREAMS
        assert len({r["request_id"] for r in records}) == len(records)
        assert all(r["status"] == "ok" for r in records)
        retried = [r for r in records if r["attempts"] > 1]
        assert retried, "the killed simulator served no call at all?"
        with admin(base) as op:
            listed = op.get("/api/channels").json()["data"]
        killed = next(c for c in listed if c["name"] == "sim1")
        assert all(r["channel_id"] != killed["id"] for r in retried)
        charged = sum(Decimal(r["cost_usd"]) for r in records)
        for _ in range(100):  # the gateway returns its lease after a second idle
            me = httpx.get(f"{base}/api/me", headers=headers).json()
            if me["held_usd"] == "0":
                break
            await asyncio.sleep(0.1)
        assert Decimal(me["balance_usd"]) == Decimal("5") - charged


@pytest.mark.timeout(120)
async def test_a_rejected_key_auto_disables_its_channel_until_a_test_passes(
    simulators: list[tuple[str, subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    (good, _), (revoked, _), _ = simulators
    root = revoked.removesuffix("/v1")
    assert httpx.post(f"{root}/_sim/config", json={"api_key": "rotated"}).status_code == 200
    env = {"TOLLWAY_DATA_DIR": str(tmp_path / "data")}
    with gateways(env, tmp_path) as (base,), admin(base) as op:
        body = {"name": "revoked", "type": "openai", "base_url": revoked, "api_key": "old-key",
                "models": ["*"], "priority": 10}  # fmt: skip
        bad = op.post("/api/channels", json=body).json()
        body = {**body, "name": "good", "base_url": good, "api_key": "sim-key", "priority": 0}
        assert op.post("/api/channels", json=body).status_code == 201
        user = op.post("/api/users", json={"username": "keys"}).json()
        op.post(f"/api/users/{user['id']}/credit", json={"amount_usd": "1", "reason": "t"})
        headers = {"Authorization": f"Bearer {user['management_key']}"}
        key = httpx.post(f"{base}/api/tokens", json={"name": "t"}, headers=headers).json()["key"]
        async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as c:
            raw = await c.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
        assert raw.headers["x-tollway-attempts"] == "2"
        for _ in range(50):
            seen = op.get(f"/api/channels/{bad['id']}").json()
            if seen["status"] == "auto_disabled":
                break
            await asyncio.sleep(0.1)
        assert seen["status"] == "auto_disabled" and "Incorrect API key" in seen["status_reason"]
        failed = op.post(f"/api/channels/{bad['id']}/test", json={}).json()
        assert failed["ok"] is False and failed["status_code"] == 401
        # The operator fixes the upstream account: the key works again.
        assert httpx.post(f"{root}/_sim/config", json={"api_key": "old-key"}).status_code == 200
        passed = op.post(f"/api/channels/{bad['id']}/test", json={}).json()
        assert passed["ok"] is True and passed["enabled_again"] is True
        assert op.get(f"/api/channels/{bad['id']}").json()["status"] == "enabled"
