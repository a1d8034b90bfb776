"""The two databases the ledger writes, as its writer sees them: how to open
its own DB-API connection (sqlite3 or psycopg, not SQLAlchemy: the batch is
the hot path's only database work), and the few ways their SQL differs."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.engine import sqlite_pragmas


class Dialect(Protocol):
    name: str

    def sql(self, text: str) -> str: ...

    def time(self, moment: datetime) -> Any: ...

    def json(self, value: Any) -> Any: ...

    def pipeline(self, conn: Any) -> Any: ...

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None: ...


class Connect(Protocol):
    """Open a connection of the ledger's own. ``busy_wait`` False: the
    writer's, which never waits in SQLite's busy handler (one of its threads
    waits for the lock instead); PostgreSQL has no such handler."""

    def __call__(self, busy_wait: bool = True) -> Any: ...


class SqliteDialect:
    name = "sqlite"

    def sql(self, text: str) -> str:
        return text

    def time(self, moment: datetime) -> Any:
        # the format SQLAlchemy's SQLite DateTime reads back (stored as UTC):
        # "%Y-%m-%d %H:%M:%S.%f", by isoformat (C, without strftime's detour)
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds")

    def json(self, value: Any) -> Any:
        import orjson

        return orjson.dumps(value).decode()

    def pipeline(self, conn: Any) -> Any:
        return contextlib.nullcontext()

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None:
        return None  # BEGIN IMMEDIATE already holds the one write lock


class PostgresDialect:
    name = "postgresql"

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def sql(self, text: str) -> str:
        found = self._cache.get(text)
        if found is None:
            found = re.sub(r"(?<!:):(\w+)", r"%(\1)s", text)
            self._cache[text] = found
        return found

    def time(self, moment: datetime) -> Any:
        return moment

    def json(self, value: Any) -> Any:
        from psycopg.types.json import Json

        return Json(value)

    def pipeline(self, conn: Any) -> Any:
        # Statements whose results are not read right away (charges, inserts)
        # go out without waiting for each one's answer.
        return conn.pipeline()

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None:
        # Every batch locks its rows in id order, so two replicas' batches
        # never wait on each other in a cycle.
        if ids:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE",
                {"ids": sorted(ids)},
            )


def connector(engine: AsyncEngine, synchronous: str) -> tuple[Connect, Dialect]:
    """How the ledger opens its own connections to the engine's database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return _sqlite_connect(url.database or ":memory:", synchronous), SqliteDialect()
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def postgres_connect(busy_wait: bool = True) -> Any:
        import psycopg

        return psycopg.connect(conninfo, autocommit=False)

    return postgres_connect, PostgresDialect()


def _sqlite_connect(path: str, synchronous: str) -> Connect:
    sqlite_pragmas(synchronous)  # (a bad setting fails here, not on the writer's thread)

    def sqlite_connect(busy_wait: bool = True) -> Any:
        import sqlite3

        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        for pragma in sqlite_pragmas(synchronous, ledger=True, busy_wait=busy_wait):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    return sqlite_connect
