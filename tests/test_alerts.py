"""Budget and low-balance alerts: webhooks managed through /api, events due
once per key whatever runs the scan, signed deliveries to a real receiver on
loopback, retried with backoff until it answers, recorded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import orjson
import pytest
import uvicorn
from sqlalchemy import update

from tests.conftest import Served, customer, free_port, sdk
from tollway.alerts.delivery import deliver_due
from tollway.alerts.scanner import scan
from tollway.alerts.signing import SIGNATURE_HEADER, signature, verify
from tollway.db.schema import webhook_events


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that keeps what it is sent; it answers
    ``status`` (500 to make the sender retry)."""

    url: str = ""
    status: int = 200
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.got.append((headers, body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    app.url = f"http://127.0.0.1:{port}/hook"
    yield app
    server.should_exit = True
    await task


async def send_due(served: Served) -> None:
    await scan(served.gw)
    async with httpx.AsyncClient() as client:
        await deliver_due(served.gw, client)


async def spend(served: Served, key: str, calls: int) -> None:
    async with sdk(served, key) as client:
        for _ in range(calls):
            with contextlib.suppress(openai.APIStatusError):
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
                )


async def test_a_budget_alert_fires_once_per_threshold_signed(
    served: Served, receiver: Receiver
) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        hook = (
            await c.post("/api/webhooks", json={"url": receiver.url, "thresholds": [50, 80]})
        ).json()
        token = (
            await c.post(
                "/api/tokens", json={"name": "b", "budget_usd": "0.0001", "budget_period": "day"}
            )
        ).json()
    assert hook["secret"].startswith("whsec_")
    await spend(served, token["key"], 40)  # past the whole budget: refused at its edge
    await served.gw.ledger.revoke_leases(token_id=token["id"])
    await send_due(served)
    await send_due(served)  # a second scan (any replica's) sends nothing again
    bodies = [orjson.loads(body) for _, body in receiver.got]
    thresholds = sorted(b["threshold_percent"] for b in bodies if b["token_id"] == token["id"])
    assert thresholds == [50, 80]
    for headers, body in receiver.got:
        assert headers["x-tollway-event"] == "budget.threshold"
        assert verify(hook["secret"], headers[SIGNATURE_HEADER], body, int(time.time()))
        assert not verify("whsec_other", headers[SIGNATURE_HEADER], body, int(time.time()))
    async with served.client(manager) as c:
        events = (await c.get(f"/api/webhooks/{hook['id']}/events")).json()["data"]
    assert {e["status"] for e in events} == {"delivered"}


async def test_low_balance_and_retries_until_the_receiver_answers(
    served: Served, receiver: Receiver
) -> None:
    manager, _ = await customer(served, credit="0.001")
    async with served.client(manager) as c:
        body = {"url": receiver.url, "events": ["balance.low"], "low_balance_usd": "0.01"}
        hook = (await c.post("/api/webhooks", json=body)).json()
    receiver.status = 500
    await send_due(served)
    assert len(receiver.got) == 1
    async with served.client(manager) as c:
        event = (await c.get(f"/api/webhooks/{hook['id']}/events")).json()["data"][0]
    assert (event["status"], event["attempts"], event["last_error"]) == ("pending", 1, "HTTP 500")
    await send_due(served)
    assert len(receiver.got) == 1  # not before its backoff has passed
    async with served.gw.engine.begin() as conn:  # the backoff has passed
        await conn.execute(update(webhook_events).values(next_at=webhook_events.c.created_at))
    receiver.status = 200
    await send_due(served)
    assert len(receiver.got) == 2
    payload = orjson.loads(receiver.got[-1][1])
    assert payload["event"] == "balance.low" and payload["low_balance_usd"] == "0.01"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://x", "events": ["nope"]}, "events"),
        ({"url": "http://x", "thresholds": [0]}, "thresholds"),
        ({"url": "http://x", "low_balance_usd": "-1"}, "low_balance_usd"),
    ],
)
async def test_bad_webhooks_are_400s(served: Served, body: dict[str, Any], param: str) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        got = await c.post("/api/webhooks", json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["param"] == param


async def test_another_account_cannot_see_a_webhook(served: Served) -> None:
    mine, _ = await customer(served)
    theirs, _ = await customer(served)
    async with served.client(mine) as c:
        hook = (await c.post("/api/webhooks", json={"url": "http://127.0.0.1:1/x"})).json()
    async with served.client(theirs) as c:
        assert (await c.get(f"/api/webhooks/{hook['id']}")).status_code == 404
        assert (await c.delete(f"/api/webhooks/{hook['id']}")).status_code == 404


def test_the_signature_is_hmac_sha256_of_time_and_body() -> None:
    header = signature("s", 1700000000, b"{}")
    assert header.startswith("t=1700000000,v1=")
    assert verify("s", header, b"{}", 1700000100)
    assert not verify("s", header, b"{} ", 1700000100)
    assert not verify("s", header, b"{}", 1700001000)  # stale: a replay
