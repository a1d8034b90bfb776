"""PostgreSQL: a fresh scratch database per gateway, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from procs import BenchError


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
