"""The ledger: hold, settle, release and credit, group-committed.

Every step appends to ``ledger`` and keeps the balance/held columns of the
account (and token) in step in the same transaction. Steps from concurrent
requests queue to one writer, which runs all that are waiting as one
transaction (group commit: one commit per batch, not per step) on its own
DB-API connection: on SQLite on the event loop, once per turn of the loop; on
PostgreSQL on a writer thread (see ``Ledger``). A caller's step returns after
its batch has committed, so a settled charge is durable before the client is
answered.

A step that cannot go ahead (no funds, no such hold) is an answer, not an
exception, so it does not roll back its batch; an unexpected database error
rolls the batch back and its steps are retried one by one, so one bad step
fails alone.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.schema import holds, leases, tokens, video_jobs
from tollway.leases import STALE_S, Leases
from tollway.ledger_sql import Dialect, PostgresDialect, SqliteDialect, run_batch
from tollway.ledger_steps import (
    Close,
    Credit,
    Hold,
    InsufficientFunds,
    LedgerError,
    Settlement,
    Step,
    UsageRecord,
)
from tollway.types import MAX_NANO, Usage

log = logging.getLogger(__name__)

MAX_BATCH = 512
# A checkpoint copies the frames the log held when it began; the writer goes
# on meanwhile. Rounds repeat (at most this many) until a round began with
# fewer than SHORT_TAIL_FRAMES new frames.
CHECKPOINT_ROUNDS = 4
SHORT_TAIL_FRAMES = 256
# Under steady writes the log never catches up by itself: once it is this
# long (frames), the checkpointer takes the writers' turn for its last round
# so the whole log is copied and the next commit starts it over.
LONG_LOG_FRAMES = 4096
# Past a burst, a log file longer than this is cut back when it starts over.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
_STOP = object()

__all__ = ["InsufficientFunds", "Ledger", "LedgerError", "Settlement", "UsageRecord"]

Item = tuple[Step, asyncio.Future[Any]]


def _connector(engine: AsyncEngine, synchronous: str) -> tuple[Callable[[], Any], Dialect]:
    """How the writer opens its own connection to the engine's database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"

        def sqlite_connect() -> Any:
            import sqlite3

            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run on the checkpointer thread, never inside a commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            return conn

        return sqlite_connect, SqliteDialect()
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def postgres_connect() -> Any:
        import psycopg

        return psycopg.connect(conninfo, autocommit=False)

    return postgres_connect, PostgresDialect()


class Ledger:
    """Money steps, group-committed.

    On SQLite (unless every commit must reach the disk, synchronous=FULL) the
    batch runs on the event loop itself: a WAL commit is a write to the log, a
    few microseconds, cheaper than waking a thread and waiting for the GIL back
    (which made the slowest calls slower). Steps arriving during one turn of
    the loop form one batch. Checkpoints, which do fsync, run on a thread of
    their own. On PostgreSQL, where a statement is a network round trip, the
    batch runs on a writer thread.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        max_batch: int = MAX_BATCH,
        synchronous: str = "NORMAL",
        writer: str = "auto",
    ) -> None:
        self._engine = engine
        connect, dialect = _connector(engine, synchronous)
        inline = dialect.name == "sqlite" and synchronous in ("OFF", "NORMAL")
        inline = writer == "inline" or (writer == "auto" and inline)
        self._writer: _Writer = (_InlineWriter if inline else _ThreadWriter)(
            connect, dialect, max_batch
        )
        self._leases = Leases(self._submit, self._enqueue)
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._writer.start()
            self._started = True
            self._leases.start()

    async def stop(self) -> None:
        """Finish every step already queued, then stop."""
        if self._started:
            await self._leases.stop()
            self._started = False
            await self._writer.stop()

    async def hold(
        self,
        request_id: str,
        account_id: int,
        token_id: int | None,
        amount_nano: int,
        leased: bool = False,
    ) -> InsufficientFunds | None:
        """Hold a call's worst case. ``leased``: in memory, against this
        process's lease (tollway.leases) — for calls this process settles
        itself; otherwise a hold row any process may settle (videos)."""
        if amount_nano < 0:
            raise LedgerError("a hold cannot be negative")
        if amount_nano > MAX_NANO:  # fits no balance, nor a 64-bit column of SQLite
            return InsufficientFunds("most", amount_nano, MAX_NANO)
        if leased:
            if not self._started:
                raise LedgerError("ledger is not started")
            return await self._leases.hold(request_id, account_id, token_id, amount_nano)
        result: InsufficientFunds | None = await self._submit(
            Hold(request_id, account_id, token_id, amount_nano)
        )
        return result

    def hold_now(
        self, request_id: str, account_id: int, token_id: int | None, amount_nano: int
    ) -> bool:
        """A leased hold taken at once, in memory, when this process's lease
        has room (most calls); False: call ``hold(..., leased=True)``."""
        if amount_nano < 0 or not self._started:
            return False
        return self._leases.hold_now(request_id, account_id, token_id, amount_nano)

    async def settle(self, record: UsageRecord) -> Settlement:
        if record.cost_nano < 0:
            raise LedgerError("a cost cannot be negative")
        if self._leases.holds(record.request_id):
            return await self._leases.close(record, "settle")
        result: Settlement = await self._submit(Close(record, "settle"))
        return result

    async def release(self, record: UsageRecord) -> Settlement:
        record.cost_nano = 0
        if self._leases.holds(record.request_id):
            return await self._leases.close(record, "release")
        result: Settlement = await self._submit(Close(record, "release"))
        return result

    async def credit(self, account_id: int, amount_nano: int, reason: str) -> int:
        """Add (or, negative, take) money; returns the new balance. A debit
        binds the next call on every process: once it is applied, the
        account's leases (all taken from the balance before it) are returned
        before this returns. A debit is applied as asked, even below zero: an
        admin's correction (calls are refused until credit brings it back)."""
        result: int = await self._submit(Credit(account_id, amount_nano, reason))
        if amount_nano < 0:
            await self._leases.revoke(account_id)
        return result

    async def revoke_leases(
        self, account_id: int | None = None, token_id: int | None = None
    ) -> None:
        """An edit lowered what the account (or, with ``token_id``, the token)
        may spend — a quota, a disabled or deleted token or account: return
        every process's leases of it, so the next call anywhere is weighed
        against the new limit (tollway.leases). Call after the edit commits."""
        if account_id is None:
            async with self._engine.connect() as conn:
                found = await conn.execute(
                    select(tokens.c.account_id).where(tokens.c.id == token_id)
                )
                account_id = found.scalar()
            if account_id is None:
                return
        await self._leases.revoke(int(account_id), token_id)

    async def confirm_leases(self) -> None:
        """Another process may have returned leases of this one (an edit it
        made): look, and hold no more against those. Cheap when there are none."""
        if self._started:
            await self._leases.confirm()

    async def release_stale_holds(self, older_than: timedelta) -> int:
        """Release holds a crashed process left open (its calls never settled),
        and return the leases of processes that stopped renewing them."""
        lease_cutoff = datetime.now(UTC) - timedelta(seconds=STALE_S)
        async with self._engine.connect() as conn:
            # (this process's own too: a live lease is renewed every few
            # seconds, so one that is not is an orphan)
            stale_leases = await conn.execute(
                select(leases.c.id, leases.c.account_id).where(leases.c.renewed_at < lease_cutoff)
            )
            orphans = [(int(i), int(a)) for i, a in stale_leases]
        if orphans:
            returned = await self._leases.reclaim_stale(orphans, lease_cutoff)
            if returned:
                log.warning("returned %d leases of stopped processes", returned)
        cutoff = datetime.now(UTC) - older_than
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(holds.c.request_id, holds.c.account_id, holds.c.token_id).where(
                    and_(
                        holds.c.state == "open",
                        holds.c.created_at < cutoff,
                        # a video's hold lives as long as its job; the job closes it
                        ~exists().where(video_jobs.c.request_id == holds.c.request_id),
                    )
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
        result = await self._enqueue(step)
        if isinstance(result, LedgerError):
            raise result
        return result

    def _enqueue(self, step: Step) -> asyncio.Future[Any]:
        if not self._started:
            raise LedgerError("ledger is not started")
        return self._writer.submit(step)


def _begin(conn: Any) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _try_begin(conn: Any, dialect: Dialect) -> bool:
    """Begin at once (SQLite, no busy timeout), or False: a writer outside the
    ledger holds SQLite's lock."""
    if dialect.name != "sqlite":
        return True  # (PostgreSQL begins by itself)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        return False
    return True


def _begin_polling(conn: Any) -> None:
    """Take SQLite's write lock by asking often. Several workers share one
    file; SQLite's own busy handler sleeps ever longer (up to 100 ms) between
    tries, so a worker that just committed wins the lock back again and again
    and the other starves. Short, even polls take turns instead."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.0002)


class _WriterTurns:
    """Several processes' ledger writers on one SQLite file take turns through
    a lock file: a blocked ``flock`` wakes the moment the holder lets go,
    where polling SQLite's write lock wakes late (up to a poll interval) and
    a worker's calls wait on the other's commits meanwhile. The event loop
    only ever *tries* the turn (``try_take``); a thread does the waiting.
    Each process's checkpointer takes the same turn (its own descriptor: a
    flock conflicts between descriptors, even within one process) for a last
    copy."""

    def __init__(self, db_path: str) -> None:
        import fcntl  # POSIX; several workers need SO_REUSEPORT (Linux) anyway

        self.flock = fcntl.flock
        self.exclusive, self.unlock = fcntl.LOCK_EX, fcntl.LOCK_UN
        self.nonblocking = fcntl.LOCK_NB
        self.path = db_path + "-tollway-writer.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def take(self) -> None:
        self.flock(self.fd, self.exclusive)  # (the GIL is released while it waits)

    def give(self) -> None:
        self.flock(self.fd, self.unlock)

    def try_take(self) -> bool:
        try:
            self.flock(self.fd, self.exclusive | self.nonblocking)
        except BlockingIOError:
            return False
        return True

    def begin(self, conn: Any) -> None:
        self.take()
        _begin_polling(conn)  # at once, unless a writer outside the ledger has it

    def close(self) -> None:
        os.close(self.fd)


def _has_flock() -> bool:
    try:
        import fcntl  # noqa: F401  (POSIX)
    except ImportError:
        return False
    return True


class _LoopTurn:
    """The writers' turn within one process, where there is no lock file (a
    database in memory, a platform without ``flock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def take(self) -> None:
        self.lock.acquire()

    def try_take(self) -> bool:
        return self.lock.acquire(blocking=False)

    def give(self) -> None:
        self.lock.release()

    def close(self) -> None:
        pass


def _commit(
    conn: Any,
    dialect: Dialect,
    steps: list[Step],
    begin: Callable[[Any], None] = _begin,
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
    return [_commit(conn, dialect, [step], begin, end)[0] for step in steps]  # fail alone


class _Writer(abc.ABC):
    def __init__(self, connect: Callable[[], Any], dialect: Dialect, max_batch: int) -> None:
        self.connect = connect
        self.dialect = dialect
        self.max_batch = max_batch

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def submit(self, step: Step) -> asyncio.Future[Any]: ...


class _InlineWriter(_Writer):
    """Batches run on the event loop, one per turn of the loop (SQLite).
    Nothing here waits on the disk: commits do not sync (synchronous=NORMAL)
    and checkpoints, which do, run on their own thread. Nor on another
    writer: the loop only tries the writers' turn and SQLite's lock; when
    another worker (or the checkpointer) has the one, or a writer outside the
    ledger the other, a thread waits and hands both to the loop."""

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.conn = self.connect()
        self.pending: list[Item] = []
        self.scheduled = False
        self.waiting = False  # a thread waits for the writers' turn for us
        self.waiter: concurrent.futures.ThreadPoolExecutor | None = None
        self.turn: _WriterTurns | _LoopTurn = _LoopTurn()
        self.checkpointer: _Checkpointer | None = None
        if self.dialect.name != "sqlite":  # (PostgreSQL, writer="inline" forced: its own log)
            return
        # The loop never waits in SQLite's busy handler: a writer outside the
        # ledger that holds the lock may be a management edit through
        # SQLAlchemy on this very loop, which cannot commit while the loop
        # waits (it stalled the process for the whole busy timeout). A thread
        # waits for the lock instead (``_flush``).
        self.conn.execute("PRAGMA busy_timeout=0")
        path = self.conn.execute("PRAGMA database_list").fetchone()[2]
        checkpointer_turn: _WriterTurns | _LoopTurn = self.turn
        if path and _has_flock():
            # Other processes may write this file (the workers of --workers N,
            # the CLI): the ledger's writers take turns through its lock file.
            # (SQLite's own lock is then taken at once but for a writer outside
            # the ledger. Polling it instead of a turn cost every call ~20 us
            # at c=1: measured, alternated.)
            self.turn, checkpointer_turn = _WriterTurns(path), _WriterTurns(path)
        self.checkpointer = _Checkpointer(self.connect, checkpointer_turn)
        self.checkpointer.start()

    async def stop(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            await asyncio.to_thread(self.checkpointer.join)
            self.checkpointer.turn.close()
        while self.waiting:  # the waiter has yet to commit what is pending
            await asyncio.sleep(0.001)
        if self.waiter is not None:
            self.waiter.shutdown()
        self.turn.take()  # (another worker's commit: well under a millisecond)
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
        if have_turn and _try_begin(self.conn, self.dialect):
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
            if self.dialect.name == "sqlite":
                _begin_polling(self.conn)  # (the loop leaves the connection to us meanwhile)
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
                results = _commit(self.conn, self.dialect, steps, _begin_polling, None, first)
                _deliver(batch, results)
        finally:
            self.turn.give()
        if pending and self.checkpointer is not None:
            self.checkpointer.nudge()


class _Checkpointer(threading.Thread):
    """Copies the SQLite WAL back into the database now and then, off the
    loop (a checkpoint syncs both files to disk). ``turn`` is the writers':
    held for a last round once the log is long, so nothing is added to it
    meanwhile and the next commit starts it over."""

    def __init__(self, connect: Callable[[], Any], turn: _WriterTurns | _LoopTurn) -> None:
        super().__init__(name="tollway-wal-checkpoint", daemon=True)
        self.connect = connect
        self.turn = turn
        self.wake = threading.Event()
        self.stopping = False

    def nudge(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()

    def run(self) -> None:
        conn = self.connect()
        try:
            while not self.stopping:
                self.wake.wait(1.0)
                self.wake.clear()
                with contextlib.suppress(sqlite3.Error):  # busy: the next round will do
                    self._copy(conn)
                time.sleep(0.2)  # at most five checkpoints a second
        finally:
            conn.close()

    def _copy(self, conn: Any) -> None:
        """Copy the log into the database, again while much was written
        meanwhile (the writers do not wait; a round copies what the log held
        when it began), and once the log is long, a last time within the
        writers' turn, so all of it is copied."""
        before = -1
        for _ in range(CHECKPOINT_ROUNDS):
            cur = conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            busy, frames, _copied = cur.fetchone()
            cur.close()
            if busy or frames - before < SHORT_TAIL_FRAMES:
                break
            before = frames
        if busy or frames < LONG_LOG_FRAMES:
            return
        self.turn.take()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        finally:
            self.turn.give()


class _ThreadWriter(_Writer):
    """Batches run on a writer thread: what is waiting when it is free (PostgreSQL)."""

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
            conn = self.connect()
            if self.dialect.name == "sqlite":
                conn.execute("PRAGMA busy_timeout=0")  # _begin_polling waits instead
        except Exception as exc:
            self.loop.call_soon_threadsafe(_fail, ready, exc)
            return
        turns = checkpointer_turn = checkpointer = None
        if self.dialect.name == "sqlite":
            path = conn.execute("PRAGMA database_list").fetchone()[2]
            if path:  # (an in-memory database keeps no log)
                turns, checkpointer_turn = _WriterTurns(path), _WriterTurns(path)
                checkpointer = _Checkpointer(self.connect, checkpointer_turn)
                checkpointer.start()
        self.loop.call_soon_threadsafe(_succeed, ready)
        try:
            self._serve(conn, turns, checkpointer)
        finally:
            if checkpointer is not None:
                checkpointer.stop()
                checkpointer.join()
            conn.close()
            for turn in (turns, checkpointer_turn):
                if turn is not None:
                    turn.close()

    def _serve(
        self, conn: Any, turns: _WriterTurns | None, checkpointer: _Checkpointer | None
    ) -> None:
        begin = turns.begin if turns is not None else _begin_polling
        end = turns.give if turns is not None else None

        stopping = False
        while not stopping:
            batch: list[Item] = []
            item = self.inbox.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
            if batch:
                results = _commit(
                    conn,
                    self.dialect,
                    [step for step, _ in batch],
                    begin,
                    end,
                )
                self.loop.call_soon_threadsafe(_deliver, batch, results)
                if checkpointer is not None:
                    checkpointer.nudge()


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
