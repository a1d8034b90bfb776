"""End to end: the simulator and the gateway as real processes on loopback,
driven by the official openai SDK; balances checked to the nano-USD, on
SQLite and on PostgreSQL (with two gateway replicas sharing one database)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from conftest import fresh_postgres_database, need_postgres
from processes import Operator, gateway_processes, gateways

HELLO = [{"role": "user", "content": "Hello there"}]


@contextlib.asynccontextmanager
async def database_env(kind: str, tmp: Path) -> AsyncIterator[dict[str, str]]:
    if kind == "sqlite":
        yield {"TOLLWAY_DATA_DIR": str(tmp / "data")}
        return
    need_postgres()
    async with fresh_postgres_database() as url:
        yield {"TOLLWAY_DATABASE_URL": url}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_sdk_calls_bill_exactly(kind: str, simulator_url: str, tmp_path: Path) -> None:
    async with database_env(kind, tmp_path) as env:
        with gateways(env, tmp_path) as [base]:
            op = Operator(base)
            mkey, key, _ = op.setup(simulator_url, "5")
            client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
            raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
            assert raw.headers["x-tollway-billing-method"] == "per_use"
            assert raw.headers["x-tollway-cost-usd"] == "0.00028"
            chunks = list(
                client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks).count(" ") == 15
            emb = client.embeddings.create(model="text-embedding-3-small", input="a b c")
            assert emb.usage.prompt_tokens == 3
            records = op.usage(mkey)
            assert len(records) == 3 and {r["status"] for r in records} == {"ok"}
            spent = sum(Decimal(r["cost_usd"]) for r in records)
            me = op.me_at_rest(mkey)
            assert Decimal(me["balance_usd"]) == Decimal(5) - spent
            assert me["held_usd"] == "0"
            client.close()


async def hammer(bases: list[str], key: str, calls: int) -> tuple[int, int]:
    """`calls` parallel calls spread over the gateways; returns (ok, refused)."""
    clients = [openai.AsyncOpenAI(base_url=b + "/v1", api_key=key, max_retries=0) for b in bases]

    async def one(i: int) -> bool:
        client = clients[i % len(clients)]
        content = f"call {i} [sim:tokens={1 + i % 13}]"
        messages = [{"role": "user", "content": content}]
        try:
            if i % 3 == 0:
                stream = await client.chat.completions.create(
                    model="gpt-4o", messages=messages, stream=True, max_tokens=64
                )
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(
                    model="gpt-4o", messages=messages, max_tokens=64
                )
        except openai.APIStatusError as exc:
            assert exc.status_code == 402, exc
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(calls)))
    for client in clients:
        await client.close()
    return sum(results), calls - sum(results)


@pytest.mark.parametrize(
    ("kind", "replicas"),
    [
        ("sqlite", 1),
        pytest.param("postgres", 1, marks=pytest.mark.postgres),
        pytest.param("postgres", 2, marks=pytest.mark.postgres),
    ],
)
async def test_concurrent_calls_keep_the_balance_exact(
    kind: str, replicas: int, simulator_url: str, tmp_path: Path
) -> None:
    async with database_env(kind, tmp_path) as env:
        with gateways(env, tmp_path, replicas) as bases:
            op = Operator(bases[0])
            mkey, key, _ = op.setup(simulator_url, "1")
            ok, refused = await hammer(bases, key, 300)
            assert (ok, refused) == (300, 0)
            records = op.usage(mkey)
            assert len(records) == 300
            assert len({r["request_id"] for r in records}) == 300
            spent = sum(Decimal(r["cost_usd"]) for r in records)
            me = op.me_at_rest(mkey)
            assert Decimal(me["balance_usd"]) == Decimal(1) - spent
            assert me["held_usd"] == "0"


@pytest.mark.postgres
async def test_holds_stop_overspending_across_replicas(simulator_url: str, tmp_path: Path) -> None:
    """A balance for about 40 calls, 200 parallel calls on two replicas: those
    that do not fit are refused, and the balance never goes below zero."""
    async with database_env("postgres", tmp_path) as env:
        with gateways(env, tmp_path, 2) as bases:
            op = Operator(bases[0])
            # each call holds (prompt bytes/2 + 64 output) tokens' worth: ~0.0011 USD
            mkey, key, _ = op.setup(simulator_url, "0.05")
            ok, refused = await hammer(bases, key, 200)
            assert ok > 0 and refused > 0 and ok + refused == 200
            records = [r for r in op.usage(mkey) if r["status"] == "ok"]
            assert len(records) == ok
            me = op.me_at_rest(mkey)
            spent = sum(Decimal(r["cost_usd"]) for r in records)
            assert Decimal(me["balance_usd"]) == Decimal("0.05") - spent >= 0
            assert me["held_usd"] == "0"


@pytest.mark.postgres
async def test_mode_edit_reaches_the_other_replica_within_a_second(
    simulator_url: str, tmp_path: Path
) -> None:
    async with database_env("postgres", tmp_path) as env:
        with gateways(env, tmp_path, 2) as [a, b]:
            op = Operator(a)
            mkey, key, token_id = op.setup(simulator_url, "1")
            with httpx.Client(base_url=b, headers={"Authorization": f"Bearer {key}"}) as client_b:
                body = {"model": "gpt-4o", "messages": HELLO}
                assert client_b.post("/v1/chat/completions", json=body).status_code == 200
                edited = httpx.patch(
                    f"{a}/api/tokens/{token_id}",
                    json={"billing_mode": "pay_per_call"},
                    headers={"Authorization": f"Bearer {mkey}"},
                )
                assert edited.status_code == 200
                started = time.monotonic()
                while client_b.post("/v1/chat/completions", json=body).status_code == 200:
                    assert time.monotonic() - started < 1.0, "replica b still uses the old mode"
                    time.sleep(0.05)
                refused = client_b.post("/v1/chat/completions", json=body)
                assert refused.json()["error"]["code"] == "billing_mode_mismatch"


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_images_and_videos_through_real_processes(
    kind: str, simulator_url: str, tmp_path: Path
) -> None:
    async with database_env(kind, tmp_path) as env:
        with gateways(env, tmp_path) as [base]:
            op = Operator(base)
            mkey, key, _ = op.setup(simulator_url, "5")
            client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
            raw = client.images.with_raw_response.generate(
                model="dall-e-3", prompt="a lighthouse", size="1792x1024", quality="hd"
            )
            assert raw.headers["x-tollway-cost-usd"] == "0.12"
            assert raw.parse().data
            video = client.videos.create(model="sora_video2", prompt="waves", seconds="10")
            deadline = time.monotonic() + 20
            while video.status not in ("completed", "failed"):
                assert time.monotonic() < deadline, video
                time.sleep(0.1)
                video = client.videos.retrieve(video.id)
            assert video.status == "completed"
            content = client.videos.download_content(video.id)
            assert content.read()[4:8] == b"ftyp"
            records = op.usage(mkey)
            assert sorted(r["cost_usd"] for r in records) == ["0.12", "0.15"]
            me = op.me_at_rest(mkey)
            assert (me["balance_usd"], me["held_usd"]) == ("4.73", "0")
            client.close()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return sorted(found)


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """Established connections to ``port`` each process holds (via /proc)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
    counts = dict.fromkeys(pids, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    counts[inodes[fields[9]]] += 1
    return counts


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
async def test_several_workers_split_connections_and_bill_exactly(
    simulator_url: str, tmp_path: Path
) -> None:
    """`tollway serve --workers 2`: each worker listens on its own socket of the
    port (SO_REUSEPORT), so connections spread over both; calls bill exactly
    through both; a worker that dies is replaced; SIGTERM stops them all."""
    async with database_env("sqlite", tmp_path) as env:
        with gateway_processes(env, tmp_path, 1, workers=2) as [(base, proc)]:
            port = int(base.rsplit(":", 1)[1])
            leader = proc.pid  # `tollway serve` becomes the server process (exec)
            workers = children(leader)
            assert len(workers) == 2
            op = Operator(base)
            mkey, key, _ = op.setup(simulator_url, "1")
            clients = [httpx.AsyncClient(base_url=base, timeout=30) for _ in range(32)]
            try:
                body = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 5}
                auth = {"Authorization": f"Bearer {key}"}
                answers = await asyncio.gather(
                    *(c.post("/v1/chat/completions", json=body, headers=auth) for c in clients)
                )
                assert {a.status_code for a in answers} == {200}
                spread = connections_by_process(workers, port)
                assert sum(spread.values()) == 32 and min(spread.values()) >= 4, spread
            finally:
                for c in clients:
                    await c.aclose()
            ok, refused = await hammer([base], key, 200)
            assert (ok, refused) == (200, 0)
            records = op.usage(mkey)
            assert len(records) == 232
            me = op.me_at_rest(mkey)
            assert Decimal(me["balance_usd"]) == Decimal(1) - sum(
                Decimal(r["cost_usd"]) for r in records
            )
            assert me["held_usd"] == "0"
            os.kill(workers[0], 9)  # a worker dies: another takes its place
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                now = children(leader)
                if len(now) == 2 and workers[0] not in now:
                    break
                time.sleep(0.1)
            assert len(now) == 2 and workers[0] not in now
            assert (await hammer([base], key, 20)) == (20, 0)
        # gateway_processes() sent SIGTERM to the leader and waited for it
        for pid in now:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived its leader"
