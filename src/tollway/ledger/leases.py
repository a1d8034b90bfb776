"""Balance leases: calls held in memory against a reserve the process took.

A per-call hold in the database costs a transaction before every call and
makes every worker and replica update the same account row. Instead, a
process reserves a slice of an account's (and token's) money once — a lease:
a row in ``leases`` whose amount counts as held, so no other process can
spend it — and holds its calls against that slice in memory. A call's
settlement still commits before the client is answered (its usage record,
its ledger entry and the lease's spent amount, in one transaction), so a
crash loses no settled charge; it only touches the lease's own row.

- A hold that does not fit what is left of the lease grows it (one
  transaction, which also folds what the lease has spent into the balance).
  A lease asks for more each time it grows within a second (up to
  ``MAX_LEASE_NANO``), and never for more than 1/LEASE_SHARE of what the
  account or token has to spare, so other workers still find money.
- A lease idle for ``IDLE_S`` is returned: its spent amount is charged to the
  balance and the rest of its reserve freed. All are returned at shutdown.
- Leases with calls still in flight are renewed every ``RENEW_S``; a lease
  not renewed for ``STALE_S`` belongs to a process that stopped, and the
  reconciler of any process returns it (a call settled later on a returned
  lease charges the account directly).
- An edit that lowers what may be spent (a quota, a debit, a disabled token
  or account) returns every process's leases of that account or token in
  one transaction (``revoke``). This process forgets its own before the
  edit answers; another finds out at its next step on the lease (a settle,
  a grow, a renewal) or when the state poller sees the edit (``confirm``),
  whichever comes first. Calls already in flight then charge the account
  directly; new ones grow a lease against the new limit.

Until a lease is returned, an account's balance is ``balance_nano - Σ
spent_nano`` of its leases, and a token's use ``used_nano + Σ spent_nano``:
manage/ reads them so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tollway.ledger.records import InsufficientFunds, LedgerError, Settlement, UsageRecord
from tollway.ledger.steps import (
    CloseKind,
    LeaseClose,
    LeaseGrow,
    LeaseReturn,
    LeaseRevoke,
    LeaseTouch,
    Step,
)

log = logging.getLogger(__name__)

START_CALLS = 16  # a new lease covers this many holds like the first
# A lease takes at most this share of what an account (or token) has to
# spare, so other workers still find money to hold against.
LEASE_SHARE = 8
MAX_LEASE_NANO = 10 * 10**9  # $10
IDLE_S = 1.0
RENEW_S = 5.0
STALE_S = 30.0
TICK_S = 0.25
# A lease whose last renewal is older than this is confirmed (by a grow)
# before a call holds against it: a stalled process must not spend a lease
# the reconciler may have returned (STALE_S).
UNCONFIRMED_S = 3 * RENEW_S


@dataclass(eq=False)
class Lease:
    account_id: int
    token_id: int | None
    target: int
    id: int | None = None
    amount: int = 0  # as in the database after the last committed step
    spent: int = 0
    inflight: int = 0  # held by this process's calls in flight
    last_used: float = 0.0
    last_grown: float = -1e9
    last_renewed: float = 0.0
    growing: asyncio.Future[None] | None = None

    @property
    def free(self) -> int:
        return self.amount - self.spent - self.inflight


@dataclass
class Leases:
    """One process's leases. ``submit`` runs a step in the ledger's next batch."""

    submit: Callable[[Step], Awaitable[Any]]  # run a step, its result or LedgerError raised
    enqueue: Callable[[Step], asyncio.Future[Any]]  # queue a step, the writer's future
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    by_key: dict[tuple[int, int | None], Lease] = field(default_factory=dict)
    calls: dict[str, tuple[Lease, int]] = field(default_factory=dict)
    settling: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    keeper: asyncio.Task[None] | None = None
    unreturned: list[Lease] = field(default_factory=list)  # returns that failed: again next tick

    def start(self) -> None:
        self.keeper = asyncio.create_task(self._keep(), name="tollway-leases")

    async def stop(self) -> None:
        """Return every lease (calls still in flight then charge directly)."""
        if self.keeper is not None:
            self.keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.keeper
            self.keeper = None
        for lease in list(self.by_key.values()):
            if lease.growing is not None:  # let a first grow land, so its row is known
                with contextlib.suppress(Exception):
                    await asyncio.shield(lease.growing)
        leases, self.by_key = list(self.by_key.values()), {}
        failed = await self._return_all(leases + self.unreturned)
        if failed:
            log.error("%d leases not returned at shutdown; the reconciler returns them", failed)

    def holds(self, request_id: str) -> bool:
        return request_id in self.calls or request_id in self.settling

    def hold_now(self, request_id: str, account_id: int, token_id: int | None, amount: int) -> bool:
        """Hold against the lease at once if it has room (most calls): no
        task, no wait. False: ``hold`` must grow it (or wait for a grow)."""
        lease = self.by_key.get((account_id, token_id))
        if lease is None or lease.free < amount:
            return False
        now = time.monotonic()
        if lease.id is not None and now - lease.last_renewed > UNCONFIRMED_S:
            return False  # confirm it is still ours first (hold grows it)
        lease.inflight += amount
        lease.last_used = now
        self.calls[request_id] = (lease, amount)
        return True

    async def hold(
        self, request_id: str, account_id: int, token_id: int | None, amount: int
    ) -> InsufficientFunds | None:
        key = (account_id, token_id)
        while True:
            lease = self.by_key.get(key)
            if lease is None:
                lease = self.by_key[key] = Lease(account_id, token_id, amount * START_CALLS)
            if self.hold_now(request_id, account_id, token_id, amount):
                return None
            if lease.growing is not None:  # another call is growing it: wait, look again
                await asyncio.shield(lease.growing)
                continue
            # (a grow also confirms the lease is still there, or starts a new one)
            short = await self._grow(lease, max(amount - lease.free, 0))
            if short is not None:
                available = short.available_nano + max(lease.free, 0)
                return InsufficientFunds(short.scope, amount, available, short.period)

    async def _grow(self, lease: Lease, need: int) -> InsufficientFunds | None:
        now = time.monotonic()
        # (a lease started by a free call has no size to go by yet)
        lease.target = max(lease.target, need * START_CALLS)
        if now - lease.last_grown < 1.0:  # busy: ask for more each time
            lease.target = min(lease.target * 2, MAX_LEASE_NANO)
        step = LeaseGrow(
            self.owner,
            lease.account_id,
            lease.token_id,
            lease.id,
            need,
            max(need, lease.target),
        )
        lease.growing = asyncio.get_running_loop().create_future()
        written = self.enqueue(step)
        written.add_done_callback(lambda f: self._grown(lease, step, f))
        result = await asyncio.shield(written)
        if isinstance(result, LedgerError):
            raise result
        return result if isinstance(result, InsufficientFunds) else None

    def _grown(self, lease: Lease, step: LeaseGrow, written: asyncio.Future[Any]) -> None:
        """Bring the lease up to date once its grow is written (whether or not
        the call that asked still waits)."""
        done, lease.growing = lease.growing, None
        if done is not None:
            done.set_result(None)
        result = None if written.cancelled() else written.result()
        if result is not None:  # refused (InsufficientFunds) or not written (LedgerError)
            return
        if step.new_id is not None:  # a new row (the first, or the old one was reclaimed)
            lease.id, lease.amount, lease.spent = step.new_id, step.granted, 0
        else:
            lease.amount += step.granted - step.folded
            lease.spent -= step.folded
        lease.last_grown = lease.last_renewed = time.monotonic()

    async def close(self, record: UsageRecord, kind: CloseKind) -> Settlement:
        """Settle or release a call held here (``holds(request_id)`` is true).
        The step is queued before the first await and the lease is brought up
        to date when it commits, whether or not this caller still waits."""
        request_id = record.request_id
        found = self.calls.pop(request_id, None)
        if found is None:  # a second settle while the first commits
            first = await asyncio.shield(self.settling[request_id])
            if isinstance(first, LedgerError):
                raise first
            return Settlement(first.cost_nano, already_settled=True)
        lease, held = found
        step = LeaseClose(record, lease.id, self.owner, held, kind)
        done = self.enqueue(step)
        self.settling[request_id] = done
        done.add_done_callback(lambda f: self._closed(request_id, lease, held, step, f))
        result = await asyncio.shield(done)
        if isinstance(result, LedgerError):
            raise result
        return result

    def _closed(
        self, request_id: str, lease: Lease, held: int, step: LeaseClose, done: asyncio.Future[Any]
    ) -> None:
        self.settling.pop(request_id, None)
        lease.inflight -= held
        lease.last_used = time.monotonic()
        result = None if done.cancelled() else done.result()
        if not isinstance(result, Settlement):  # not written: the lease is as it was
            return
        if step.missing:
            if lease.id == step.lease_id:  # reclaimed: the next hold takes a new one
                lease.id, lease.amount, lease.spent = None, 0, 0
        elif lease.id == step.lease_id:
            lease.spent += result.cost_nano
            lease.amount += step.raised
            lease.last_renewed = lease.last_used

    async def revoke(self, account_id: int, token_id: int | None = None) -> None:
        """Return every process's leases of the account (of the token); this
        process's are forgotten once that commits, before this returns."""
        step = LeaseRevoke(account_id, token_id)
        written = self.enqueue(step)
        written.add_done_callback(lambda f: self._revoked(step, f))
        result = await asyncio.shield(written)
        if isinstance(result, LedgerError):
            raise result

    def _revoked(self, step: LeaseRevoke, written: asyncio.Future[Any]) -> None:
        # (a grow queued before the revoke was brought up to date before this
        # runs; one queued after finds its row gone and starts a new lease)
        if written.cancelled() or isinstance(written.result(), LedgerError):
            return
        for (account_id, token_id), lease in self.by_key.items():
            if account_id == step.account_id and step.token_id in (None, token_id):
                lease.id, lease.amount, lease.spent = None, 0, 0

    async def confirm(self) -> None:
        """Look whether leases of ours were returned by another process (an
        edit lowered what may be spent there): hold no more against those."""
        leases = self.by_key.values()
        await self._renew([x for x in leases if x.id is not None and x.growing is None])

    async def reclaim_stale(self, stale: list[tuple[int, int]], before: datetime) -> int:
        """Return leases (id, account id) not renewed since ``before``: their
        process stopped (or is stuck; it finds out at its next renewal)."""
        results = await asyncio.gather(
            *(self.submit(LeaseReturn(i, before, account_id=a)) for i, a in stale)
        )
        return sum(1 for r in results if r is not None)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tend()
            except Exception:
                log.exception("lease upkeep failed; will retry")

    async def _tend(self) -> None:
        now = time.monotonic()
        idle: list[Lease] = self.unreturned
        self.unreturned = []
        renew: list[Lease] = []
        for key, lease in list(self.by_key.items()):
            if lease.growing is not None:
                continue
            if lease.inflight == 0 and now - lease.last_used > IDLE_S:
                del self.by_key[key]
                idle.append(lease)
            elif lease.id is not None and now - lease.last_renewed > RENEW_S:
                renew.append(lease)
        await self._renew(renew)
        await self._return_all(idle)

    async def _renew(self, leases: list[Lease]) -> None:
        if not leases:
            return
        now = time.monotonic()
        touch = LeaseTouch([lease.id for lease in leases if lease.id is not None], self.owner)
        await self.submit(touch)
        for lease in leases:
            if lease.id in touch.missing:  # reclaimed or revoked: hold no more against it
                lease.id, lease.amount, lease.spent = None, 0, 0
            else:
                lease.last_renewed = now

    async def _return_all(self, leases: list[Lease]) -> int:
        """Queue every return at once; keep the ones that failed for later."""
        pending = [
            (lease, self.enqueue(LeaseReturn(lease.id, account_id=lease.account_id)))
            for lease in leases
            if lease.id is not None
        ]
        for lease, written in pending:
            with contextlib.suppress(Exception):
                if not isinstance(await written, LedgerError):
                    continue
            self.unreturned.append(lease)
        return len(self.unreturned)
