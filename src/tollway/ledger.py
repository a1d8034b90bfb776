"""The ledger: hold, settle, release and credit, each one transaction's worth of
rows, group-committed.

Every step appends to ``ledger`` and keeps the balance/held columns of the
account (and token) in step in the same transaction. Steps from concurrent
requests are queued to one writer task that runs as many as are waiting in
one database transaction (group commit): one commit per batch instead of one
per step, and no two writers of this process fighting over SQLite's lock. A
caller's step returns only after its batch has committed, so a settled
charge is durable before the client is answered.

A step that cannot go ahead (no funds) is an answer, not an exception, so it
does not roll back its batch; an unexpected database error rolls the batch
back and the steps are retried one by one, so one bad step fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.db.schema import accounts, holds, ledger, tokens, usage_records
from tollway.types import Usage

log = logging.getLogger(__name__)

MAX_BATCH = 256


class LedgerError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    """Why a hold did not fit: the account's balance or the token's quota."""

    scope: str  # "balance" | "token_quota"
    needed_nano: int
    available_nano: int


@dataclass(slots=True)
class UsageRecord:
    """The one record a call leaves (SPEC §3)."""

    request_id: str
    account_id: int
    token_id: int | None
    model: str
    endpoint: str
    billing_mode: str
    method: str
    usage: Usage
    unit_prices: dict[str, str]
    cost_nano: int
    status: str = "ok"
    channel_id: int | None = None
    duration_ms: int | None = None
    detail: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        u = self.usage
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "account_id": self.account_id,
            "token_id": self.token_id,
            "model": self.model,
            "endpoint": self.endpoint,
            "billing_mode": self.billing_mode,
            "method": self.method,
            **u.token_classes(),
            "items": u.items,
            "unit_prices": self.unit_prices,
            "cost_nano": self.cost_nano,
            "usage_source": u.source.value,
            "status": self.status,
            "channel_id": self.channel_id,
            "duration_ms": self.duration_ms,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    cost_nano: int
    already_settled: bool = False


class _Step(Protocol):
    @property
    def account_id(self) -> int: ...

    async def apply(self, conn: AsyncConnection, now: datetime) -> Any: ...


@dataclass(slots=True)
class _Hold:
    request_id: str
    account_id: int
    token_id: int | None
    amount_nano: int

    async def apply(self, conn: AsyncConnection, now: datetime) -> InsufficientFunds | None:
        a = self.amount_nano
        got = await conn.execute(
            update(accounts)
            .where(
                accounts.c.id == self.account_id,
                accounts.c.balance_nano - accounts.c.held_nano >= a,
            )
            .values(held_nano=accounts.c.held_nano + a)
        )
        if got.rowcount != 1:
            return await _short(conn, accounts, self.account_id, a, "balance")
        if self.token_id is not None:
            fits = or_(
                tokens.c.quota_nano.is_(None),
                tokens.c.quota_nano - tokens.c.used_nano - tokens.c.held_nano >= a,
            )
            got = await conn.execute(
                update(tokens)
                .where(tokens.c.id == self.token_id, fits)
                .values(held_nano=tokens.c.held_nano + a)
            )
            if got.rowcount != 1:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.id == self.account_id)
                    .values(held_nano=accounts.c.held_nano - a)
                )
                return await _short(conn, tokens, self.token_id, a, "token_quota")
        await conn.execute(
            insert(holds).values(
                request_id=self.request_id,
                account_id=self.account_id,
                token_id=self.token_id,
                amount_nano=a,
                state="open",
                created_at=now,
            )
        )
        await _append(conn, now, self.account_id, self.token_id, self.request_id, "hold", a)
        return None


async def _short(
    conn: AsyncConnection, table: Any, row_id: int, needed: int, scope: str
) -> InsufficientFunds:
    if scope == "balance":
        expr = table.c.balance_nano - table.c.held_nano
    else:
        expr = table.c.quota_nano - table.c.used_nano - table.c.held_nano
    available = (await conn.execute(select(expr).where(table.c.id == row_id))).scalar()
    return InsufficientFunds(scope, needed, max(int(available or 0), 0))


@dataclass(slots=True)
class _Close:
    """Settle (status ok, any cost) or release (cost 0) an open hold, exactly once."""

    record: UsageRecord
    kind: str  # "settle" | "release"

    @property
    def account_id(self) -> int:
        return self.record.account_id

    async def apply(self, conn: AsyncConnection, now: datetime) -> Settlement:
        r = self.record
        closed = await conn.execute(
            update(holds)
            .where(holds.c.request_id == r.request_id, holds.c.state == "open")
            .values(state="settled" if self.kind == "settle" else "released", closed_at=now)
            .returning(holds.c.amount_nano)
        )
        held = closed.scalar()
        if held is None:
            return await _already_closed(conn, r.request_id)
        cost = r.cost_nano
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == r.account_id)
            .values(
                held_nano=accounts.c.held_nano - held, balance_nano=accounts.c.balance_nano - cost
            )
        )
        if r.token_id is not None:
            await conn.execute(
                update(tokens)
                .where(tokens.c.id == r.token_id)
                .values(
                    held_nano=tokens.c.held_nano - held,
                    used_nano=tokens.c.used_nano + cost,
                    last_used_at=now,
                )
            )
        await conn.execute(insert(usage_records).values(r.row()))
        amount = -cost if self.kind == "settle" else -held
        await _append(conn, now, r.account_id, r.token_id, r.request_id, self.kind, amount)
        return Settlement(cost)


async def _already_closed(conn: AsyncConnection, request_id: str) -> Settlement:
    found = await conn.execute(
        select(usage_records.c.cost_nano).where(usage_records.c.request_id == request_id)
    )
    cost = found.scalar()
    if cost is None:
        raise LedgerError(f"no open hold for request {request_id}")
    return Settlement(int(cost), already_settled=True)


@dataclass(slots=True)
class _Credit:
    account_id: int
    amount_nano: int
    reason: str

    async def apply(self, conn: AsyncConnection, now: datetime) -> int:
        got = await conn.execute(
            update(accounts)
            .where(accounts.c.id == self.account_id)
            .values(balance_nano=accounts.c.balance_nano + self.amount_nano)
            .returning(accounts.c.balance_nano)
        )
        balance = got.scalar()
        if balance is None:
            raise LedgerError(f"no account {self.account_id}")
        kind = "credit" if self.amount_nano >= 0 else "debit"
        await _append(conn, now, self.account_id, None, None, kind, self.amount_nano, self.reason)
        return int(balance)


async def _append(
    conn: AsyncConnection,
    now: datetime,
    account_id: int,
    token_id: int | None,
    request_id: str | None,
    kind: str,
    amount_nano: int,
    reason: str | None = None,
) -> None:
    await conn.execute(
        insert(ledger).values(
            created_at=now,
            account_id=account_id,
            token_id=token_id,
            request_id=request_id,
            kind=kind,
            amount_nano=amount_nano,
            reason=reason,
        )
    )


class Ledger:
    """Money steps, group-committed by one writer task."""

    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[_Step, asyncio.Future[Any]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="tollway-ledger-writer")

    async def stop(self) -> None:
        """Finish every step already queued, then stop."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    async def hold(
        self, request_id: str, account_id: int, token_id: int | None, amount_nano: int
    ) -> InsufficientFunds | None:
        if amount_nano < 0:
            raise LedgerError("a hold cannot be negative")
        step = _Hold(request_id, account_id, token_id, amount_nano)
        result: InsufficientFunds | None = await self._submit(step)
        return result

    async def settle(self, record: UsageRecord) -> Settlement:
        if record.cost_nano < 0:
            raise LedgerError("a cost cannot be negative")
        result: Settlement = await self._submit(_Close(record, "settle"))
        return result

    async def release(self, record: UsageRecord) -> Settlement:
        record.cost_nano = 0
        result: Settlement = await self._submit(_Close(record, "release"))
        return result

    async def credit(self, account_id: int, amount_nano: int, reason: str) -> int:
        """Add (or, negative, take) money; returns the new balance."""
        result: int = await self._submit(_Credit(account_id, amount_nano, reason))
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

    async def _submit(self, step: _Step) -> Any:
        if self._writer is None:
            raise LedgerError("ledger is not started")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((step, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[_Step, asyncio.Future[Any]]]) -> None:
        # Rows are locked in account order, the same in every replica's batches,
        # so two batches never wait on each other in a cycle (a deadlock).
        # The sort is stable: one account's steps keep their order.
        batch.sort(key=lambda item: item[0].account_id)
        now = datetime.now(UTC)
        try:
            async with self._engine.begin() as conn:
                results = [await step.apply(conn, now) for step, _ in batch]
        except Exception:
            if len(batch) == 1:
                step, future = batch[0]
                log.exception("ledger step failed: %r", step)
                _resolve(future, exc=LedgerError("ledger write failed"))
                return
            for one in batch:  # fail alone, not together
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)


def _resolve(future: asyncio.Future[Any], result: Any = None, exc: Exception | None = None) -> None:
    if future.done():  # the caller was cancelled; its step still happened (or not) durably
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
