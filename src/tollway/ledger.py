"""The ledger: hold, settle, release and credit, group-committed by one writer
thread.

Every step appends to ``ledger`` and keeps the balance/held columns of the
account (and token) in step in the same transaction. Steps from concurrent
requests queue to one writer thread, which runs all that are waiting as one
transaction (group commit: one commit per batch, not per step) on its own
DB-API connection; the event loop only hands steps over and is woken once per
batch. A caller's step returns after its batch has committed, so a settled
charge is durable before the client is answered.

A step that cannot go ahead (no funds, no such hold) is an answer, not an
exception, so it does not roll back its batch; an unexpected database error
rolls the batch back and its steps are retried one by one, so one bad step
fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.schema import holds
from tollway.ledger_sql import (
    Close,
    Credit,
    Dialect,
    Hold,
    InsufficientFunds,
    LedgerError,
    PostgresDialect,
    Settlement,
    SqliteDialect,
    Step,
    UsageRecord,
    run_batch,
)
from tollway.types import Usage

log = logging.getLogger(__name__)

MAX_BATCH = 512
_STOP = object()

__all__ = ["InsufficientFunds", "Ledger", "LedgerError", "Settlement", "UsageRecord"]

Item = tuple[Step, asyncio.Future[Any]]


def _connector(engine: AsyncEngine, synchronous: str) -> tuple[Callable[[], Any], Dialect]:
    """How the writer thread opens its own connection to the engine's database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"

        def sqlite_connect() -> Any:
            import sqlite3

            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn

        return sqlite_connect, SqliteDialect()
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def postgres_connect() -> Any:
        import psycopg

        return psycopg.connect(conninfo, autocommit=False)

    return postgres_connect, PostgresDialect()


class Ledger:
    """Money steps, group-committed by one writer thread."""

    def __init__(
        self, engine: AsyncEngine, max_batch: int = MAX_BATCH, synchronous: str = "NORMAL"
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._connect, self._dialect = _connector(engine, synchronous)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="tollway-ledger-writer", daemon=True
        )
        self._thread.start()
        await ready

    async def stop(self) -> None:
        """Finish every step already queued, then stop."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._inbox.put(_STOP)
        await asyncio.to_thread(thread.join)

    async def hold(
        self, request_id: str, account_id: int, token_id: int | None, amount_nano: int
    ) -> InsufficientFunds | None:
        if amount_nano < 0:
            raise LedgerError("a hold cannot be negative")
        result: InsufficientFunds | None = await self._submit(
            Hold(request_id, account_id, token_id, amount_nano)
        )
        return result

    async def settle(self, record: UsageRecord) -> Settlement:
        if record.cost_nano < 0:
            raise LedgerError("a cost cannot be negative")
        result: Settlement = await self._submit(Close(record, "settle"))
        return result

    async def release(self, record: UsageRecord) -> Settlement:
        record.cost_nano = 0
        result: Settlement = await self._submit(Close(record, "release"))
        return result

    async def credit(self, account_id: int, amount_nano: int, reason: str) -> int:
        """Add (or, negative, take) money; returns the new balance."""
        result: int = await self._submit(Credit(account_id, amount_nano, reason))
        return result

    async def release_stale_holds(self, older_than: timedelta) -> int:
        """Release holds a crashed process left open (its calls never settled)."""
        cutoff = datetime.now(UTC) - older_than
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(holds.c.request_id, holds.c.account_id, holds.c.token_id).where(
                    and_(holds.c.state == "open", holds.c.created_at < cutoff)
                )
            )
            stale = rows.all()
        for request_id, account_id, token_id in stale:
            record = UsageRecord(
                request_id,
                account_id,
                token_id,
                "-",
                "-",
                "-",
                "-",
                Usage(items=0),
                {},
                0,
                status="abandoned",
                detail="hold left open by a stopped process; released",
            )
            with contextlib.suppress(LedgerError):
                await self.release(record)
        return len(stale)

    async def _submit(self, step: Step) -> Any:
        if self._thread is None or self._loop is None:
            raise LedgerError("ledger is not started")
        future: asyncio.Future[Any] = self._loop.create_future()
        self._inbox.put((step, future))
        result = await future
        if isinstance(result, LedgerError):
            raise result
        return result

    # --- the writer thread -------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
        except Exception as exc:
            self._loop.call_soon_threadsafe(_fail, ready, exc)
            return
        self._loop.call_soon_threadsafe(_succeed, ready)
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: Any) -> None:
        assert self._loop is not None
        stopping = False
        while not stopping:
            batch: list[Item] = []
            item = self._inbox.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
            if batch:
                results = self._commit(conn, [step for step, _ in batch])
                self._loop.call_soon_threadsafe(_deliver, batch, results)

    def _commit(self, conn: Any, steps: list[Step]) -> list[Any]:
        now = datetime.now(UTC)
        try:
            if self._dialect.name == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            results = run_batch(conn, self._dialect, steps, now)
            conn.commit()
            return results
        except Exception:
            with contextlib.suppress(Exception):
                conn.rollback()
            if len(steps) == 1:
                log.exception("ledger step failed: %r", steps[0])
                return [LedgerError("ledger write failed")]
            return [self._commit(conn, [step])[0] for step in steps]  # fail alone


def _deliver(batch: list[Item], results: list[Any]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if not future.done():  # a cancelled caller: its step happened (or not) durably
            future.set_result(result)


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
