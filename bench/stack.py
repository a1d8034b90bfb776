"""What a benchmark run stands up: the upstream (simulator or nginx), fresh
databases, and gateways bootstrapped with an account, credit, channels and
an API key, all through the public interfaces (CLI, environment, /api)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from procs import (
    NGINX_TEMPLATE,
    TOLLWAY_MAIN,
    BenchError,
    Child,
    Supervisor,
    free_port,
    wait_http,
)

CHAT_MODEL = "gpt-4o"  # the non-streaming request
STREAM_MODEL = "gpt-4o-mini"  # the streaming request (its own channel, see below)
UPSTREAM_KEY = "sk-bench-upstream"
CREDIT_USD = "1000000"


# --------------------------------------------------------------------------
# Upstreams


@dataclass
class Upstream:
    """An OpenAI-compatible fake. The non-streaming and streaming answers may
    sit under different base URLs (nginx serves a fixed body per location)."""

    kind: str  # "simulator" | "nginx"
    child: Child
    port: int
    chat_base: str  # base URL of /chat/completions answering JSON
    stream_base: str  # base URL of /chat/completions answering SSE

    @property
    def chat_url(self) -> str:
        return self.chat_base + "/chat/completions"

    @property
    def stream_url(self) -> str:
        return self.stream_base + "/chat/completions"


def start_simulator(sup: Supervisor) -> Upstream:
    port = free_port()
    child = sup.start(
        "upstream-simulator",
        [
            sys.executable,
            "-c",
            TOLLWAY_MAIN,
            "simulate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )
    wait_http(f"http://127.0.0.1:{port}/v1/models", child)
    base = f"http://127.0.0.1:{port}/v1"
    return Upstream("simulator", child, port, base, base)


def start_nginx(sup: Supervisor, nginx: str) -> Upstream:
    port = free_port()
    prefix = sup.workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_TEMPLATE.read_text().replace("@PORT@", str(port)))
    child = sup.start(
        "upstream-nginx",
        [
            nginx,
            "-p",
            f"{prefix}/",
            "-c",
            str(conf),
            "-e",
            str(prefix / "error.log"),
            "-g",
            "daemon off;",
        ],
    )
    wait_http(f"http://127.0.0.1:{port}/", child)
    return Upstream(
        "nginx",
        child,
        port,
        f"http://127.0.0.1:{port}/v1",
        f"http://127.0.0.1:{port}/sse/v1",
    )


# --------------------------------------------------------------------------
# PostgreSQL: a fresh database per gateway, dropped afterwards


@dataclass
class PgDatabase:
    admin_url: str  # where CREATE/DROP DATABASE run
    user: str
    name: str

    @property
    def url(self) -> str:
        parts = urlsplit(self.admin_url)
        host = parts.hostname or "127.0.0.1"
        port = f":{parts.port}" if parts.port else ""
        password = f":{parts.password}" if parts.password else ""
        netloc = f"{self.user}{password}@{host}{port}"
        return urlunsplit(("postgresql", netloc, f"/{self.name}", "", ""))


async def _pg_connect(admin_url: str) -> tuple[Any, str]:
    import asyncpg  # a dependency of tollway

    parts = urlsplit(admin_url)
    users = [parts.username] if parts.username else ["root", "postgres"]
    last: Exception | None = None
    for user in users:
        try:
            conn = await asyncpg.connect(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=user,
                password=parts.password,
                database=(parts.path or "/").lstrip("/") or "postgres",
                timeout=5,
            )
            return conn, user
        except Exception as exc:  # try the next user
            last = exc
    raise BenchError(f"cannot connect to PostgreSQL at {admin_url}: {last!r}")


def pg_available(admin_url: str) -> str | None:
    """None when reachable, else why not."""

    async def probe() -> None:
        conn, _ = await _pg_connect(admin_url)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return str(exc)
    return None


# Every database this process created and has not dropped yet (dropped at exit).
CREATED_DATABASES: list[PgDatabase] = []


def pg_create(admin_url: str) -> PgDatabase:
    name = f"tollway_bench_{os.getpid()}_{secrets.token_hex(3)}"

    async def go() -> str:
        conn, user = await _pg_connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return user

    db = PgDatabase(admin_url, asyncio.run(go()), name)
    CREATED_DATABASES.append(db)
    return db


def pg_drop(db: PgDatabase) -> None:
    async def go() -> None:
        conn, _ = await _pg_connect(db.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())
    if db in CREATED_DATABASES:
        CREATED_DATABASES.remove(db)


# --------------------------------------------------------------------------
# Management API (stdlib HTTP: nothing of the benchmark runs in the gateway)


def api(base: str, method: str, path: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise BenchError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None
    return json.loads(raw, parse_float=Decimal) if raw else None


# --------------------------------------------------------------------------
# Gateways


@dataclass
class Gateway:
    db: str  # "sqlite" | "postgres"
    upstream: Upstream
    child: Child
    port: int
    admin_key: str
    pg: PgDatabase | None = None
    account_id: int = 0
    user_key: str = ""  # the benchmark account's management key
    token: str = ""  # its sk-... API key
    info: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    label: str = ""  # overrides the name (e.g. "sqlite×2" in the scaling phase)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    argv: list[str] = field(default_factory=list, repr=False)
    child_name: str = ""

    @property
    def name(self) -> str:
        return f"gateway/{self.label or self.db}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_url(self) -> str:
        return self.base + "/v1/chat/completions"

    @property
    def stream_url(self) -> str:
        return self.chat_url

    @property
    def pid(self) -> int:
        return self.child.pid


def start_gateway(
    sup: Supervisor,
    db: str,
    upstream: Upstream,
    pg_admin_url: str,
    extra_env: dict[str, str],
    workers: int = 1,
    label: str = "",
    before_bootstrap: Callable[[Gateway], None] | None = None,
    init_with_one_worker: bool = False,
) -> Gateway:
    """A fresh gateway (new SQLite directory or scratch PostgreSQL database),
    bootstrapped. ``before_bootstrap`` sees it answering /health, before any
    other request (the idle-memory phase reads its memory there).
    ``init_with_one_worker``: first start it with one worker until it answers
    (migrations, first admin), stop it, then start the N workers on that
    database (works around N workers racing to create the first admin)."""
    port = free_port()
    admin_key = "tw-bench-admin-" + secrets.token_hex(16)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")
    }  # nothing of the caller's gateway settings leaks in
    env["TOLLWAY_ADMIN_KEY"] = admin_key
    pg = None
    if db == "sqlite":
        data_dir = Path(sup.workdir) / f"data-{upstream.kind}-{port}"
        data_dir.mkdir()
        env["TOLLWAY_DATA_DIR"] = str(data_dir)
    elif db == "postgres":
        pg = pg_create(pg_admin_url)
        env["TOLLWAY_DATABASE_URL"] = pg.url
    else:
        raise BenchError(f"unknown database {db!r}")
    env.update(extra_env)
    argv = [sys.executable, "-c", TOLLWAY_MAIN, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    child_name = f"gateway-{db}-{upstream.kind}" + (f"-{label}" if label else "")
    if init_with_one_worker and workers != 1:
        init = sup.start(child_name + "-init", argv[: argv.index("--workers")], env=env)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", init, timeout_s=120)
        finally:
            sup.stop(init, grace_s=10)
    child = sup.start(child_name, argv, env=env)
    gw = Gateway(db, upstream, child, port, admin_key, pg)
    gw.workers, gw.label, gw.env, gw.argv, gw.child_name = workers, label, env, argv, child_name
    try:
        wait_http(gw.base + "/health", child, timeout_s=120)
        if before_bootstrap is not None:
            before_bootstrap(gw)
        _bootstrap(gw)
    except BaseException:
        stop_gateway(sup, gw)
        raise
    return gw


def _bootstrap(gw: Gateway) -> None:
    """An account with plenty of credit, channels to the upstream, an API key."""
    user = api(gw.base, "POST", "/api/users", gw.admin_key, {"username": "bench", "role": "user"})
    gw.account_id, gw.user_key = user["id"], user["management_key"]
    api(
        gw.base,
        "POST",
        f"/api/users/{gw.account_id}/credit",
        gw.admin_key,
        {"amount_usd": CREDIT_USD, "reason": "benchmark credit"},
    )
    up = gw.upstream
    api(
        gw.base,
        "POST",
        "/api/channels",
        gw.admin_key,
        {
            "name": f"bench-{up.kind}",
            "type": "openai",
            "base_url": up.chat_base,
            "api_key": UPSTREAM_KEY,
            "models": ["*"],
        },
    )
    # The streaming request's model goes to the upstream's SSE location.
    api(
        gw.base,
        "POST",
        "/api/channels",
        gw.admin_key,
        {
            "name": f"bench-{up.kind}-stream",
            "type": "openai",
            "base_url": up.stream_base,
            "api_key": UPSTREAM_KEY,
            "models": [STREAM_MODEL],
            "priority": 10,
        },
    )
    token = api(gw.base, "POST", "/api/tokens", gw.user_key, {"name": "bench"})
    gw.token = token["key"]
    gw.info = {"token_billing_mode": token["billing_mode"], "account_id": gw.account_id}


def restart_gateway(sup: Supervisor, gw: Gateway) -> None:
    """Stop the gateway (SIGTERM) and start it again on the same database, port
    and settings; returns once it answers /health (no other request made)."""
    sup.stop(gw.child, grace_s=10)
    gw.child = sup.start(gw.child_name, gw.argv, env=gw.env)
    wait_http(gw.base + "/health", gw.child, timeout_s=120)


def stop_gateway(sup: Supervisor, gw: Gateway) -> None:
    try:
        sup.stop(gw.child, grace_s=10)
    finally:
        if gw.pg is not None:
            pg_drop(gw.pg)
            gw.pg = None
