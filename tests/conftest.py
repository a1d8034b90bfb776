"""Shared fixtures: databases (SQLite and PostgreSQL), the upstream simulator,
and a gateway served for real on loopback.

PostgreSQL tests need a server at TOLLWAY_TEST_POSTGRES_URL (default: the
local one), Redis tests one at TOLLWAY_TEST_REDIS_URL (default: database 15 of
the local one). Locally they skip when none answers; with
TOLLWAY_REQUIRE_POSTGRES=1 / TOLLWAY_REQUIRE_REDIS=1 (set by .ci/run) a
missing server fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.app import create_app
from tollway.catalog import load_catalog_files
from tollway.db.engine import make_engine, migrate
from tollway.gateway import Gateway
from tollway.ledger import Ledger
from tollway.server import KEEP_ALIVE_S
from tollway.settings import Settings
from tollway.simulator import Simulator, SimulatorConfig, start
from tollway.transport import Transport
from tollway.types import Model

ADMIN_KEY = "tm-test-admin-key"
PG_URL = os.environ.get("TOLLWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("TOLLWAY_REQUIRE_POSTGRES") == "1"


REDIS_URL = os.environ.get("TOLLWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_REDIS = os.environ.get("TOLLWAY_REQUIRE_REDIS") == "1"


def need_redis() -> str:
    """The test Redis's URL (database 15), or a skip (a failure in CI) when none answers."""
    host_port = REDIS_URL.split("//", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=1):
            return REDIS_URL
    except OSError:
        if REQUIRE_REDIS:
            pytest.fail(f"Redis is required (TOLLWAY_REQUIRE_REDIS=1) but {REDIS_URL} is down")
        pytest.skip(f"no Redis at {REDIS_URL}")


def postgres_available() -> bool:
    host_port = PG_URL.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1):
            return True
    except OSError:
        return False


def need_postgres() -> None:
    if postgres_available():
        return
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required (TOLLWAY_REQUIRE_POSTGRES=1) but {PG_URL} is down")
    pytest.skip(f"no PostgreSQL at {PG_URL}")


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty database for one test; dropped afterwards."""
    name = f"tollway_t_{secrets.token_hex(6)}"
    admin_dsn = PG_URL
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tollway.db'}"
        return
    need_postgres()
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (SQLite, and PostgreSQL where it runs)."""
    eng = make_engine(database_url)
    await migrate(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def book(engine: AsyncEngine) -> AsyncIterator[Ledger]:
    """A started ledger on ``engine``."""
    ledger_ = Ledger(engine)
    await ledger_.start()
    yield ledger_
    await ledger_.stop()


@pytest.fixture(scope="session")
def catalog_models() -> list[Model]:
    return load_catalog_files()


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[Simulator]:
    sim = await start(SimulatorConfig(api_key="sim-key"))
    yield sim
    await sim.stop()


@pytest.fixture(scope="module")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The simulator as its own process (``python -m tollway simulate``), for
    tests that run the gateway as processes too."""
    from processes import start_process, stop, wait_ready  # processes imports this module

    port = free_port()
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    proc = start_process(["simulate", "--port", str(port), "--api-key", "sim-key"], {}, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/_sim/stats", proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


@dataclass
class Served:
    """A gateway served by uvicorn on loopback, in this process."""

    base_url: str
    gw: Gateway
    admin: httpx.AsyncClient

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    async def new_account(self, credit_usd: str = "10", role: str = "user") -> dict[str, Any]:
        name = f"user-{secrets.token_hex(4)}"
        got = await self.admin.post("/api/users", json={"username": name, "role": role})
        assert got.status_code == 201, got.text
        account = got.json()
        if credit_usd != "0":
            got = await self.admin.post(
                f"/api/users/{account['id']}/credit",
                json={"amount_usd": credit_usd, "reason": "test"},
            )
            assert got.status_code == 200, got.text
        return account

    async def new_token(self, management_key: str, **fields: Any) -> dict[str, Any]:
        async with self.client(management_key) as c:
            got = await c.post("/api/tokens", json={"name": "t", **fields})
        assert got.status_code == 201, got.text
        token: dict[str, Any] = got.json()
        return token

    async def balance_usd(self, management_key: str) -> str:
        async with self.client(management_key) as c:
            me = await c.get("/api/me")
        assert me.status_code == 200, me.text
        return str(me.json()["balance_usd"])

    async def me_at_rest(self, management_key: str) -> dict[str, Any]:
        """/api/me once nothing is held: the gateway returns the reserve it
        keeps for a busy account (tollway.leases) after a second idle."""
        deadline = asyncio.get_running_loop().time() + 10
        async with self.client(management_key) as c:
            while True:
                got = await c.get("/api/me")
                assert got.status_code == 200, got.text
                me: dict[str, Any] = got.json()
                if me["held_usd"] == "0" or asyncio.get_running_loop().time() > deadline:
                    return me
                await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, models: list[Model], transport: Transport | None = None
) -> AsyncIterator[Served]:
    """The gateway on a loopback port; ``transport`` replaces its network to upstreams."""
    app = create_app(settings, models, transport)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,  # as tollway serve: past the clients' 5 s
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    admin = httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    )
    try:
        yield Served(base, app.state.gateway, admin)
    finally:
        await admin.aclose()
        server.should_exit = True
        await task


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "state_poll_ms": 100,
    }
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
async def served(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    """A gateway with a channel to the simulator for every model."""
    async with serve(test_settings(database_url), catalog_models) as s:
        await add_channel(s, simulator.base_url)
        yield s


async def add_channel(served: Served, base_url: str) -> None:
    """A channel to an (OpenAI-compatible) simulator for every model."""
    got = await served.admin.post(
        "/api/channels",
        json={
            "name": "sim",
            "type": "openai",
            "base_url": base_url,
            "api_key": "sim-key",
            "models": ["*"],
        },
    )
    assert got.status_code == 201, got.text


async def customer(served: Served, credit: str = "10", **token_fields: Any) -> tuple[str, str]:
    """A new account with credit and one token: (management key, API key)."""
    account = await served.new_account(credit)
    token = await served.new_token(account["management_key"], **token_fields)
    return account["management_key"], token["key"]


def sdk(served: Served, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=served.base_url + "/v1", api_key=key, max_retries=0)


async def usage_records(served: Served, management_key: str) -> list[dict[str, Any]]:
    async with served.client(management_key) as c:
        got = await c.get("/api/usage")
    assert got.status_code == 200
    records: list[dict[str, Any]] = got.json()["data"]
    return records


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, for the console's browser tests (required in CI)."""
    missing = browser_missing()
    if missing:
        if os.environ.get("TOLLWAY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required (TOLLWAY_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def web(
    tmp_path: Path, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    """The gateway with its console, on SQLite, and a channel "sim" to the
    simulator for every model (the console's browser and page tests)."""
    from test_web import add_simulator_channel, serve_console

    settings = test_settings(f"sqlite:///{tmp_path / 'tollway.db'}")
    async with serve_console(settings, catalog_models) as served:
        await add_simulator_channel(served, simulator)
        yield served
