"""The fault run's load: many accounts with small balances calling every kind
of metered endpoint at once, some streams left mid-way, and a tally of what
each call got back."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

CREDIT_USD = "0.05"
# Each kind of call: (name, path, body, streamed)
HELLO = [{"role": "user", "content": "hello"}]
CHAT = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 40}
# Past the replicas' upstream timeout (faults.py: 5 s without a byte): an
# upstream that never answers, and one that hangs mid-stream.
SLOW = {**CHAT, "messages": [{"role": "user", "content": "hello [sim:latency_ms=7000]"}]}
STALLED = {**CHAT, "stream": True,
           "messages": [{"role": "user", "content": "hello [sim:stall_after=3]"}]}  # fmt: skip
IMAGE = {"model": "dall-e-2", "prompt": "a cat", "size": "256x256"}
KINDS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("chat", "/v1/chat/completions", CHAT, False),
    ("stream", "/v1/chat/completions", {**CHAT, "stream": True}, True),
    ("stream_left", "/v1/chat/completions", {**CHAT, "stream": True}, True),
    ("embeddings", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}, False),
    ("image", "/v1/images/generations", IMAGE, False),
    ("messages", "/v1/messages", {"model": "claude-3-5-haiku-latest", "max_tokens": 40,
                                  "messages": [{"role": "user", "content": "hi"}]}, False),
    ("video", "/v1/videos", {"model": "sora-2", "prompt": "waves", "seconds": "4"}, False),
    ("timeout", "/v1/chat/completions", SLOW, False),
    ("stream_stalled", "/v1/chat/completions", STALLED, True),
]  # fmt: skip
# The timeouts hold a client for 5 s each: a few of them go a long way.
WEIGHTS = [10] * (len(KINDS) - 2) + [1, 1]


# Answers that prove a call was admitted by the rate limits: it was served,
# refused for funds (the hold comes after the limits), or its upstream failed.
# A 429 was refused; a 503 proves nothing (the database down while the key
# was looked up comes before the limits), so it is left out of the check.
ADMITTED = frozenset({200, 402, 502, 504})


@dataclass
class Customer:
    account_id: int
    management_key: str
    key: str
    rpm_limit: int | None


@dataclass
class Tally:
    """What the load saw: calls by kind and by status, and every passed call's
    send time per limited token (to check the rate limits afterwards)."""

    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    passed_at: dict[str, list[float]] = field(default_factory=dict)


async def make_customers(base: str, admin_key: str, n: int) -> list[Customer]:
    """``n`` accounts with CREDIT_USD each; every third token limited to 30
    requests a minute, every fourth with a daily budget."""
    customers = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        admin = {"Authorization": f"Bearer {admin_key}"}
        for i in range(n):
            user = await _ok(c.post("/api/users", json={"username": f"load{i}"}, headers=admin))
            credit = {"amount_usd": CREDIT_USD, "reason": "fault run"}
            await _ok(c.post(f"/api/users/{user['id']}/credit", json=credit, headers=admin))
            fields: dict[str, Any] = {"name": "load"}
            if i % 3 == 0:
                fields["rpm_limit"] = 30
            if i % 4 == 0:
                fields.update(budget_usd="0.02", budget_period="day")
            mine = {"Authorization": f"Bearer {user['management_key']}"}
            token = await _ok(c.post("/api/tokens", json=fields, headers=mine))
            customers.append(
                Customer(user["id"], user["management_key"], token["key"], fields.get("rpm_limit"))
            )
    return customers


async def _ok(pending: Any) -> dict[str, Any]:
    got = await pending
    if got.status_code >= 300:
        raise RuntimeError(f"{got.request.url}: {got.status_code} {got.text[:300]}")
    found: dict[str, Any] = got.json()
    return found


async def run_load(
    base: str, customers: list[Customer], seconds: float, workers: int, seed: int = 1
) -> Tally:
    tally = Tally()
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base, timeout=20, limits=limits) as client:
        rngs = [random.Random(seed + i) for i in range(workers)]
        await asyncio.gather(*(_worker(client, customers, end, tally, rng) for rng in rngs))
    return tally


async def _worker(
    client: httpx.AsyncClient,
    customers: list[Customer],
    end: float,
    tally: Tally,
    rng: random.Random,
) -> None:
    while time.monotonic() < end:
        customer = rng.choice(customers)
        kind, path, body, streamed = rng.choices(KINDS, WEIGHTS)[0]
        tally.by_kind[kind] += 1
        sent = time.time()
        try:
            status = await _call(client, customer.key, path, body, streamed, kind == "stream_left")
        except httpx.HTTPError as exc:  # a replica killed under the call, nginx gone
            tally.errors[type(exc).__name__] += 1
            continue
        tally.by_status[status] += 1
        if status in ADMITTED and customer.rpm_limit is not None:
            tally.passed_at.setdefault(customer.key, []).append(sent)


async def _call(
    client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any], streamed: bool,
    leave: bool,
) -> int:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    if path == "/v1/messages":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if not streamed:
        return (await client.post(path, json=body, headers=headers)).status_code
    async with client.stream("POST", path, json=body, headers=headers) as resp:
        async for _ in resp.aiter_bytes():
            if leave:
                break  # the client goes away mid-stream: billed for what was generated
        return resp.status_code
