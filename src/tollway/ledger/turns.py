"""Taking SQLite's one write lock: the writers' turn (between the ledger's
writers of several processes, and a process's checkpointer), and SQLite's
own lock, taken so that no one starves.

PostgreSQL needs none of this: its batches lock their rows (``Dialect.lock_rows``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

# How long a writer polls for SQLite's lock before giving up (as SQLite's
# own busy timeout on other connections).
LOCK_WAIT_S = 30
LOCK_POLL_S = 0.0002


def begin_immediate(conn: Any) -> None:
    conn.execute("BEGIN IMMEDIATE")


def try_begin(conn: Any) -> bool:
    """Begin at once (no busy timeout), or False: a writer outside the ledger
    holds SQLite's lock."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        return False
    return True


def begin_polling(conn: Any) -> None:
    """Take SQLite's write lock by asking often. Several workers share one
    file; SQLite's own busy handler sleeps ever longer (up to 100 ms) between
    tries, so a worker that just committed wins the lock back again and again
    and the other starves. Short, even polls take turns instead."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(LOCK_POLL_S)


class WriterTurns:
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
        begin_polling(conn)  # at once, unless a writer outside the ledger has it

    def close(self) -> None:
        os.close(self.fd)


class LoopTurn:
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


Turn = WriterTurns | LoopTurn


def has_flock() -> bool:
    try:
        import fcntl  # noqa: F401  (POSIX)
    except ImportError:
        return False
    return True
