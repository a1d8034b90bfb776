"""Copying SQLite's write-ahead log back into the database, off the event
loop: a checkpoint syncs both files to disk, which no call should wait for."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from typing import Any

from tollway.ledger.dialects import Connect
from tollway.ledger.turns import Turn

# A checkpoint copies the frames the log held when it began; the writer goes
# on meanwhile. Rounds repeat (at most this many) until a round began with
# fewer than SHORT_TAIL_FRAMES new frames.
CHECKPOINT_ROUNDS = 4
SHORT_TAIL_FRAMES = 256
# Under steady writes the log never catches up by itself: once it is this
# long (frames), the checkpointer takes the writers' turn for its last round
# so the whole log is copied and the next commit starts it over.
LONG_LOG_FRAMES = 4096
IDLE_WAKE_S = 1.0
MIN_GAP_S = 0.2  # at most five checkpoints a second


class Checkpointer(threading.Thread):
    """Copies the WAL back into the database now and then, when nudged after
    a commit (or every IDLE_WAKE_S). ``turn`` is the writers': held for a last
    round once the log is long, so nothing is added to it meanwhile and the
    next commit starts it over."""

    def __init__(self, connect: Connect, turn: Turn) -> None:
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
                self.wake.wait(IDLE_WAKE_S)
                self.wake.clear()
                with contextlib.suppress(sqlite3.Error):  # busy: the next round will do
                    self._copy(conn)
                time.sleep(MIN_GAP_S)
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
