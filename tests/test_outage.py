"""The database gone under a running gateway (PostgreSQL: the database is
dropped, its connections cut): /v1, /api and the console answer 503
database_unavailable, never a 500, and nothing is charged. (The fault run,
tests/test_faults.py, restarts a whole PostgreSQL and sees calls recover.)"""

from __future__ import annotations

import psycopg

from tests.conftest import (
    PG_URL,
    add_channel,
    customer,
    fresh_postgres_database,
    need_postgres,
    serve,
    test_settings,
)
from tollway.simulator import Simulator
from tollway.types import Model

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_lost_database_is_a_503_everywhere(
    catalog_models: list[Model], simulator: Simulator
) -> None:
    need_postgres()
    async with fresh_postgres_database() as url, serve(test_settings(url), catalog_models) as gw:
        await add_channel(gw, simulator.base_url)
        manager, key = await customer(gw)
        _, other_key = await customer(gw)
        async with gw.client(key) as c:
            assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
        name = url.rsplit("/", 1)[1]
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as pg:
            await pg.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for api_key in (key, other_key):  # known to this process, and never seen by it
            async with gw.client(api_key) as c:
                got = await c.post("/v1/chat/completions", json=CHAT)
            assert got.status_code == 503, got.text
            assert got.json()["error"]["code"] == "database_unavailable"
        async with gw.client(manager) as c:
            me = await c.get("/api/me")
        assert me.status_code == 503, me.text
        assert me.json()["error"]["code"] == "database_unavailable"
