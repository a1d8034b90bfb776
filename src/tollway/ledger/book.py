"""The ledger: hold, settle, release and credit, group-committed.

Every step appends to ``ledger`` and keeps the balance/held columns of the
account (and token) in step in the same transaction, run by the writer
(``tollway.ledger.writers``) in a batch with the steps of other calls; a
step returns once its batch has committed.

A step that cannot go ahead (no funds, no such hold) is an answer, not an
exception, so it does not roll back its batch.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.schema import tokens
from tollway.ledger.dialects import connector
from tollway.ledger.leases import Leases
from tollway.ledger.reconciler import Reconciler
from tollway.ledger.records import InsufficientFunds, LedgerError, Settlement, UsageRecord
from tollway.ledger.steps import RELEASE, SETTLE, Close, Credit, Hold, Step
from tollway.ledger.writers import MAX_BATCH, writer_for
from tollway.observe.logs import log_call
from tollway.types import MAX_NANO

if TYPE_CHECKING:
    from tollway.observe.metrics import Metrics


class Ledger:
    """Money steps, group-committed. ``synchronous``: SQLite's setting for
    the ledger's connections; it also picks the writer (``writer_for``).
    ``metrics``: where each settled or released call, and each batch, is
    counted (the one place every call ends)."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_batch: int = MAX_BATCH,
        synchronous: str = "NORMAL",
        metrics: Metrics | None = None,
    ) -> None:
        self._engine = engine
        connect, dialect = connector(engine, synchronous)
        self._writer = writer_for(dialect, synchronous)(connect, dialect, max_batch)
        self._metrics = metrics
        if metrics is not None:
            self._writer.on_batch = metrics.batch
            metrics.refresh = self.count_open
        self._leases = Leases(self._submit, self._enqueue)
        self._reconciler = Reconciler(engine, self._leases, self._submit)
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
        outlives_request: bool = False,
    ) -> InsufficientFunds | None:
        """Hold a call's worst case. ``leased``: in memory, against this
        process's lease (tollway.ledger.leases) — for calls this process
        settles itself; otherwise a hold row any process may close.
        ``outlives_request``: a hold row that lives on after the request that
        opened it (a video job's), closed by whatever it belongs to; the
        stale-hold sweep (``release_stale_holds``) never releases it."""
        if amount_nano < 0:
            raise LedgerError("a hold cannot be negative")
        if amount_nano > MAX_NANO:  # fits no balance, nor a 64-bit column of SQLite
            return InsufficientFunds("most", amount_nano, MAX_NANO)
        if leased:
            if outlives_request:
                raise LedgerError("a leased hold lives in this process: it cannot outlive it")
            if not self._started:
                raise LedgerError("ledger is not started")
            return await self._leases.hold(request_id, account_id, token_id, amount_nano)
        result: InsufficientFunds | None = await self._submit(
            Hold(request_id, account_id, token_id, amount_nano, outlives_request)
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
            settled = await self._leases.close(record, SETTLE)
        else:
            settled = await self._submit(Close(record, SETTLE))
        self._ended(record)
        return settled

    async def release(self, record: UsageRecord) -> Settlement:
        record.cost_nano = 0
        if self._leases.holds(record.request_id):
            released = await self._leases.close(record, RELEASE)
        else:
            released = await self._submit(Close(record, RELEASE))
        self._ended(record)
        return released

    def _ended(self, record: UsageRecord) -> None:
        """A call's record is written: counted and logged, once."""
        if self._metrics is not None:
            self._metrics.call(record)
        log_call(record)

    def count_open(self) -> None:
        """Set the open-holds and leases gauges from this process's leases."""
        if self._metrics is not None:
            self._metrics.open_holds.set(len(self._leases.calls))
            self._metrics.leases.set(len(self._leases.by_key))

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
        against the new limit (tollway.ledger.leases). Call after the edit
        commits."""
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
        """Release holds a crashed process left open (its calls never settled;
        holds that outlive their request excepted), and return the leases of
        processes that stopped renewing them. Returns how many holds."""
        return await self._reconciler.release_stale_holds(older_than)

    async def _submit(self, step: Step) -> Any:
        result = await self._enqueue(step)
        if isinstance(result, LedgerError):
            raise result
        return result

    def _enqueue(self, step: Step) -> asyncio.Future[Any]:
        if not self._started:
            raise LedgerError("ledger is not started")
        return self._writer.submit(step)
