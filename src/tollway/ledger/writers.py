"""The ledger's writer: steps from concurrent calls queue to it, and it runs
all that are waiting as one transaction (group commit: one commit per batch,
not per step) on its own connection. A caller's step is answered once its
batch has committed, so a settled charge is durable before the client is.

Two writers, picked by ``writer_for``:

- ``InlineWriter`` (SQLite, unless every commit must reach the disk): the
  batch runs on the event loop itself, once per turn of the loop. A WAL
  commit that does not sync is a write to the log, cheaper than waking a
  thread and waiting for the GIL back. Checkpoints, which do sync, run on a
  thread of their own (``Checkpointer``).
- ``ThreadWriter`` (PostgreSQL, where a statement is a network round trip;
  SQLite with synchronous=FULL or EXTRA): batches run on a writer thread,
  each taking what is waiting when it is free.

An unexpected database error rolls the batch back and its steps are retried
one by one, so one bad step fails alone.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tollway.ledger.checkpointer import Checkpointer
from tollway.ledger.dialects import Connect, Dialect
from tollway.ledger.records import LedgerError
from tollway.ledger.sql import run_batch
from tollway.ledger.steps import Step
from tollway.ledger.turns import (
    LoopTurn,
    Turn,
    WriterTurns,
    begin_immediate,
    begin_polling,
    has_flock,
    try_begin,
)

log = logging.getLogger(__name__)

MAX_BATCH = 512
_STOP = object()

Item = tuple[Step, asyncio.Future[Any]]


def writer_for(dialect: Dialect, synchronous: str) -> type[Writer]:
    """On the loop where a commit does not wait for the disk, else a thread."""
    if dialect.name == "sqlite" and synchronous in ("OFF", "NORMAL"):
        return InlineWriter
    return ThreadWriter


def commit(
    conn: Any,
    dialect: Dialect,
    steps: list[Step],
    begin: Callable[[Any], None] = begin_immediate,
    end: Callable[[], None] | None = None,
    begun: bool = False,
) -> list[Any]:
    """One batch, one transaction; on an unexpected error each step alone.
    ``begin`` takes the write lock (and the writers' turn) unless the caller
    has (``begun``); ``end`` gives the turn back, once per transaction."""
    now = datetime.now(UTC)
    try:
        if dialect.name == "sqlite" and not begun:
            begin(conn)
        with dialect.pipeline(conn):
            results = run_batch(conn, dialect, steps, now)
        conn.commit()
        return results
    except Exception:
        with contextlib.suppress(Exception):
            conn.rollback()
        if len(steps) == 1:
            log.exception("ledger step failed: %r", steps[0])
            return [LedgerError("ledger write failed")]
    finally:
        if end is not None:
            end()
    return [commit(conn, dialect, [step], begin, end)[0] for step in steps]  # fail alone


class Writer(abc.ABC):
    def __init__(self, connect: Connect, dialect: Dialect, max_batch: int = MAX_BATCH) -> None:
        self.connect = connect
        self.dialect = dialect
        self.max_batch = max_batch
        # Told each batch's steps and commit time in seconds (tollway.observe).
        self.on_batch: Callable[[int, float], None] | None = None

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None:
        """Commit every step already submitted, then stop."""

    @abc.abstractmethod
    def submit(self, step: Step) -> asyncio.Future[Any]:
        """Queue a step; the future is its result once its batch committed."""


class InlineWriter(Writer):
    """Batches run on the event loop, one per turn of the loop (SQLite only).
    Nothing here waits on the disk: commits do not sync (synchronous=NORMAL)
    and checkpoints, which do, run on their own thread. Nor on another
    writer: the loop only tries the writers' turn and SQLite's lock; when
    another worker (or the checkpointer) has the one, or a writer outside the
    ledger the other, a thread waits and hands both to the loop.

    The loop never waits in SQLite's busy handler: a writer outside the
    ledger that holds the lock may be a management edit through SQLAlchemy
    on this very loop, which cannot commit while the loop waits (it would
    stall the process for the whole busy timeout)."""

    def __init__(self, connect: Connect, dialect: Dialect, max_batch: int = MAX_BATCH) -> None:
        if dialect.name != "sqlite":
            raise ValueError("the inline writer writes SQLite only")
        super().__init__(connect, dialect, max_batch)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.conn = self.connect(busy_wait=False)
        self.pending: list[Item] = []
        self.scheduled = False
        self.waiting = False  # a thread waits for the writers' turn for us
        self.waiter: concurrent.futures.ThreadPoolExecutor | None = None
        self.turn: Turn = LoopTurn()
        checkpointer_turn: Turn = self.turn
        path = self.conn.execute("PRAGMA database_list").fetchone()[2]
        if path and has_flock():
            # Other processes may write this file (the workers of --workers N,
            # the CLI): the ledger's writers take turns through its lock file
            # (SQLite's own lock is then taken at once but for a writer
            # outside the ledger), which costs a call less than polling it.
            self.turn, checkpointer_turn = WriterTurns(path), WriterTurns(path)
        self.checkpointer = Checkpointer(self.connect, checkpointer_turn)
        self.checkpointer.start()

    async def stop(self) -> None:
        self.checkpointer.stop()
        await asyncio.to_thread(self.checkpointer.join)
        self.checkpointer.turn.close()
        while self.waiting:  # the waiter has yet to commit what is pending
            await asyncio.sleep(0.001)
        if self.waiter is not None:
            self.waiter.shutdown()
        self.turn.take()  # (at most another worker's commit)
        self._flush_holding()
        self.conn.close()
        self.turn.close()

    def submit(self, step: Step) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending.append((step, future))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        if self.waiting or not self.pending:
            # the waiter commits all that is pending once it has the turn (or
            # already did: ``scheduled`` is reset where the batch is taken)
            return
        have_turn = self.turn.try_take()
        if have_turn and try_begin(self.conn):
            self._flush_holding(begun=True)
            return
        # Another worker is committing, a checkpointer is copying the log's
        # last frames (and syncing), or a writer outside the ledger has
        # SQLite's lock: the loop goes on with other calls, and a thread waits
        # for the turn and the lock, so these commit the moment both are free.
        self.waiting = True
        if self.waiter is None:
            self.waiter = concurrent.futures.ThreadPoolExecutor(1, "tollway-ledger-turn")
        self.waiter.submit(self._wait_turn, have_turn)

    def _wait_turn(self, have_turn: bool) -> None:
        begun = False
        try:
            if not have_turn:
                self.turn.take()  # (the GIL is released while it waits)
            begin_polling(self.conn)  # (the loop leaves the connection to us meanwhile)
            begun = True
        finally:
            # (were the lock file to fail, SQLite's own lock still keeps the
            # commits apart: the turn only spares the workers its busy waits)
            self.loop.call_soon_threadsafe(self._turn_taken, begun)

    def _turn_taken(self, begun: bool) -> None:
        self.waiting = False
        self._flush_holding(begun)

    def _flush_holding(self, begun: bool = False) -> None:
        """Commit all that is pending; the caller has taken the turn (and,
        ``begun``, SQLite's lock for the first batch)."""
        try:
            self.scheduled = False
            pending, self.pending = self.pending, []
            for at in range(0, len(pending), self.max_batch):
                batch = pending[at : at + self.max_batch]
                steps = [step for step, _ in batch]
                first = begun and at == 0  # (the rest, rarely, begin on the loop)
                began_s = time.perf_counter()
                results = commit(self.conn, self.dialect, steps, begin_polling, None, first)
                if self.on_batch is not None:
                    self.on_batch(len(steps), time.perf_counter() - began_s)
                deliver(batch, results)
        finally:
            self.turn.give()
        if pending:
            self.checkpointer.nudge()


class ThreadWriter(Writer):
    """Batches run on a writer thread: what is waiting when it is free."""

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        ready: asyncio.Future[None] = self.loop.create_future()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="tollway-ledger-writer", daemon=True
        )
        self.thread.start()
        await ready

    async def stop(self) -> None:
        self.inbox.put(_STOP)
        await asyncio.to_thread(self.thread.join)

    def submit(self, step: Step) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self.inbox.put((step, future))
        return future

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            conn = self.connect(busy_wait=False)  # (SQLite: begin_polling waits instead)
        except Exception as exc:
            self.loop.call_soon_threadsafe(_fail, ready, exc)
            return
        turns = checkpointer_turn = checkpointer = None
        if self.dialect.name == "sqlite":
            path = conn.execute("PRAGMA database_list").fetchone()[2]
            if path:  # (an in-memory database keeps no log)
                turns, checkpointer_turn = WriterTurns(path), WriterTurns(path)
                checkpointer = Checkpointer(self.connect, checkpointer_turn)
                checkpointer.start()
        self.loop.call_soon_threadsafe(_succeed, ready)
        self.conn = conn  # (replaced when the database restarts: _connected)
        try:
            self._serve(turns, checkpointer)
        finally:
            if checkpointer is not None:
                checkpointer.stop()
                checkpointer.join()
            self.conn.close()
            for turn in (turns, checkpointer_turn):
                if turn is not None:
                    turn.close()

    def _serve(self, turns: WriterTurns | None, checkpointer: Checkpointer | None) -> None:
        begin = turns.begin if turns is not None else begin_polling
        end = turns.give if turns is not None else None
        while True:
            batch, stopping = self._take_batch()
            if batch:
                steps = [step for step, _ in batch]
                self.conn = self._connected(self.conn)
                began_s = time.perf_counter()
                results = commit(self.conn, self.dialect, steps, begin, end)
                if self.on_batch is not None:
                    self.on_batch(len(steps), time.perf_counter() - began_s)
                if _broken(self.conn):  # the database went away under the batch: once more
                    self.conn = self._connected(self.conn)
                    if not _broken(self.conn):
                        results = commit(self.conn, self.dialect, steps, begin, end)
                self.loop.call_soon_threadsafe(deliver, batch, results)
                if checkpointer is not None:
                    checkpointer.nudge()
            if stopping:
                return

    def _connected(self, conn: Any) -> Any:
        """``conn``, or a new connection when it broke (the database restarted):
        while the database is down the old one is kept and batches fail fast
        (LedgerError: the calls get a 503), and the first batch after it is
        back reconnects."""
        if not _broken(conn):
            return conn
        try:
            fresh = self.connect(busy_wait=False)
        except Exception as exc:
            log.warning("ledger: database unreachable (%r); retrying with the next batch", exc)
            return conn
        with contextlib.suppress(Exception):
            conn.close()
        log.warning("ledger: reconnected to the database")
        return fresh

    def _take_batch(self) -> tuple[list[Item], bool]:
        """What is waiting (at least one, waited for), up to ``max_batch``;
        True: the writer is asked to stop after it."""
        batch: list[Item] = []
        item = self.inbox.get()
        while item is not _STOP:
            batch.append(item)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True


def _broken(conn: Any) -> bool:
    """A psycopg connection that is closed or broken (sqlite3's never are)."""
    return bool(getattr(conn, "closed", False) or getattr(conn, "broken", False))


def deliver(batch: list[Item], results: list[Any]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if not future.done():  # a cancelled caller: its step happened (or not) durably
            future.set_result(result)


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
