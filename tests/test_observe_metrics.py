"""/metrics, /healthz and /readyz on a real gateway on loopback: real calls
with the openai SDK, then the scrape parsed and the counters compared with
what happened."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tollway.simulator import Simulator
from tollway.types import NANO_PER_USD, Model

from conftest import (
    ADMIN_KEY,
    PG_URL,
    Served,
    customer,
    fresh_postgres_database,
    need_postgres,
    sdk,
    serve,
    test_settings,
    usage_records,
)
from processes import gateway_processes

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(scraped: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for sample, got, value in scraped
        if sample == name and all(got.get(k) == v for k, v in labels.items())
    )


async def scrape(base_url: str) -> list[tuple[str, dict[str, str], float]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        got = await client.get("/metrics")  # no key
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return samples(got.text)


async def chat_calls(served: Served, key: str, count: int) -> None:
    client = sdk(served, key)
    try:
        for _ in range(count):
            await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    finally:
        await client.close()


async def test_calls_counted_once_each_with_their_spend(served: Served) -> None:
    management_key, key = await customer(served)
    await chat_calls(served, key, 3)
    scraped = await scrape(served.base_url)
    records = await usage_records(served, management_key)
    assert len(records) == 3
    ok = {"endpoint": "chat/completions", "model": "gpt-4o-mini", "status": "ok"}
    assert total(scraped, "tollway_requests_total", **ok) == 3
    assert total(scraped, "tollway_request_duration_seconds_count", **ok) == 3
    spend = sum(Decimal(r["cost_usd"]) * NANO_PER_USD for r in records)
    assert spend > 0
    assert total(scraped, "tollway_spend_nano_usd_total", model="gpt-4o-mini") == spend
    assert total(scraped, "tollway_upstream_attempts_total") == 3
    assert total(scraped, "tollway_upstream_failures_total") == 0
    assert total(scraped, "tollway_ledger_batch_steps_count") >= 1
    assert total(scraped, "tollway_ledger_commit_seconds_count") >= 1
    assert total(scraped, "tollway_open_holds") == 0  # every call has settled


async def test_refusals_counted_by_code(served: Served) -> None:
    _, broke = await customer(served, credit="0")
    client = sdk(served, broke)
    try:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    finally:
        await client.close()
    assert refused.value.status_code == 402
    async with served.client("sk-not-a-key") as c:
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 401
        assert (await c.get("/v1/nothing-here")).status_code == 404
    scraped = await scrape(served.base_url)
    name = "tollway_refusals_total"
    assert total(scraped, name, code="insufficient_quota", status="402") == 1
    assert total(scraped, name, status="401") == 1
    assert total(scraped, name, code="not_found", status="404") == 1
    assert total(scraped, "tollway_requests_total") == 0  # none was metered


async def test_management_api_refusals_are_counted_too(served: Served) -> None:
    management_key, _ = await customer(served)
    async with served.client("not-a-management-key") as c:
        assert (await c.get("/api/tokens")).status_code == 401
    async with served.client(management_key) as c:
        assert (await c.post("/api/tokens", json={"name": 5})).status_code == 400
        assert (await c.get("/api/tokens/999999")).status_code == 404
        assert (await c.get("/api/no-such-thing")).status_code == 404
        assert (await c.post("/api/users", json={"username": "x"})).status_code == 403
    scraped = await scrape(served.base_url)
    name = "tollway_refusals_total"
    assert total(scraped, name, status="401") == 1
    assert total(scraped, name, code="invalid_request", status="400") == 1
    assert total(scraped, name, status="404") == 2
    assert total(scraped, name, status="403") == 1


async def test_failed_attempts_and_cooldowns_by_channel(
    served: Served, simulator: Simulator
) -> None:
    dead = await served.admin.post(
        "/api/channels",
        json={"name": "dead", "type": "openai", "base_url": "http://127.0.0.1:9",
              "api_key": "dead-key", "models": ["*"], "priority": 10},
    )  # fmt: skip
    assert dead.status_code == 201, dead.text
    dead_id = str(dead.json()["id"])
    await served.gw.state.reload()
    _, key = await customer(served)
    await chat_calls(served, key, 3)  # each fails over from the dead channel
    scraped = await scrape(served.base_url)
    assert total(scraped, "tollway_upstream_failures_total", channel_id=dead_id) >= 1
    assert total(scraped, "tollway_channel_cooldowns_total", channel_id=dead_id) >= 1
    attempts = total(scraped, "tollway_upstream_attempts_total")
    failures = total(scraped, "tollway_upstream_failures_total")
    assert attempts - failures == 3  # one attempt served each call
    assert total(scraped, "tollway_requests_total", status="ok") == 3


async def test_probes_answer_without_a_key(served: Served) -> None:
    async with served.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "catalog": True}


async def test_not_ready_when_the_database_is_gone(catalog_models: list[Model]) -> None:
    """The database dropped under a running gateway (PostgreSQL, its
    connections ended): /readyz says 503, /healthz still 200."""
    need_postgres()
    async with (
        fresh_postgres_database() as url,
        serve(test_settings(url), catalog_models) as s,
        s.client() as c,
    ):
        assert (await c.get("/readyz")).status_code == 200
        await drop_database(url)
        gone = await c.get("/readyz")
        assert gone.status_code == 503
        assert gone.json()["checks"] == {"database": False, "catalog": True}
        assert (await c.get("/healthz")).status_code == 200  # up, not ready


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as pg:
        await pg.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def add_sim_channel(base_url: str, sim_url: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    channel = {"name": "sim", "type": "openai", "base_url": sim_url,
               "api_key": "sim-key", "models": ["*"]}  # fmt: skip
    got = httpx.post(f"{base_url}/api/channels", json=channel, headers=admin, timeout=30)
    assert got.status_code == 201, got.text


def new_api_key(base_url: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    user = httpx.post(f"{base_url}/api/users", json={"username": "w"}, headers=admin, timeout=30)
    assert user.status_code == 201, user.text
    account: dict[str, Any] = user.json()
    credit = {"amount_usd": "10", "reason": "test"}
    got = httpx.post(
        f"{base_url}/api/users/{account['id']}/credit", json=credit, headers=admin, timeout=30
    )
    assert got.status_code == 200, got.text
    mine = {"Authorization": f"Bearer {account['management_key']}"}
    token = httpx.post(f"{base_url}/api/tokens", json={"name": "t"}, headers=mine, timeout=30)
    assert token.status_code == 201, token.text
    return str(token.json()["key"])


async def test_workers_share_one_scrape(tmp_path: Path, simulator: Simulator) -> None:
    """Under --workers 2, whichever worker answers /metrics counts every
    worker's calls (the kernel spreads connections over both)."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"")  # an earlier run's: cleared at start
    env = {
        "TOLLWAY_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        "TOLLWAY_STATE_POLL_MS": "100",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with gateway_processes(env, tmp_path, workers=2) as started:
        base_url = started[0][0]
        await asyncio.to_thread(add_sim_channel, base_url, simulator.base_url)
        key = await asyncio.to_thread(new_api_key, base_url)
        calls = 12
        for _ in range(calls):  # a new connection each: both workers serve some
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
                got = await c.post(
                    "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
                )
                assert got.status_code == 200, got.text
        for _ in range(6):  # each scrape, whichever worker, sees all of them
            scraped = await scrape(base_url)
            assert total(scraped, "tollway_requests_total", status="ok") == calls
            assert total(scraped, "tollway_upstream_attempts_total") == calls
        # both workers served calls (each wrote its own counters)
        counted = {path.stem for path in metrics_dir.glob("counter_*.db")}
        assert len(counted) == 2, counted
