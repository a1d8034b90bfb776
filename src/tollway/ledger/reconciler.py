"""Closing what stopped processes left open: leases their owner stopped
renewing, and holds older than any call runs (their calls never settled).

A hold opened as outliving its request (``Hold.outlives_request``: a video
job's, closed by its job however long it renders) is never stale here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.schema import holds, leases
from tollway.ledger.leases import STALE_S, Leases
from tollway.ledger.records import LedgerError, UsageRecord, UsageStatus
from tollway.ledger.steps import Close, EntryKind, Step
from tollway.types import Usage

log = logging.getLogger(__name__)


class Reconciler:
    """``submit`` runs a step in the ledger's next batch (its result, or its
    LedgerError raised); ``leases`` are this process's."""

    def __init__(
        self, engine: AsyncEngine, leases: Leases, submit: Callable[[Step], Awaitable[Any]]
    ) -> None:
        self.engine = engine
        self.leases = leases
        self.submit = submit

    async def release_stale_holds(self, older_than: timedelta) -> int:
        """Return the leases of processes that stopped renewing them, and
        release the holds opened longer than ``older_than`` ago; returns how
        many holds."""
        await self._return_stale_leases()
        stale = await self._stale_holds(datetime.now(UTC) - older_than)
        for request_id, account_id, token_id in stale:
            record = _abandoned(request_id, account_id, token_id)
            with contextlib.suppress(LedgerError):
                await self.submit(Close(record, EntryKind.RELEASE))
        return len(stale)

    async def _return_stale_leases(self) -> None:
        # (this process's own too: a live lease is renewed every few seconds,
        # so one that is not is an orphan)
        cutoff = datetime.now(UTC) - timedelta(seconds=STALE_S)
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(leases.c.id, leases.c.account_id).where(leases.c.renewed_at < cutoff)
            )
            orphans = [(int(i), int(a)) for i, a in found]
        if orphans:
            returned = await self.leases.reclaim_stale(orphans, cutoff)
            if returned:
                log.warning("returned %d leases of stopped processes", returned)

    async def _stale_holds(self, cutoff: datetime) -> list[Any]:
        query = select(holds.c.request_id, holds.c.account_id, holds.c.token_id).where(
            holds.c.state == "open",
            holds.c.created_at < cutoff,
            ~holds.c.outlives_request,
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())


def _abandoned(request_id: str, account_id: int, token_id: int | None) -> UsageRecord:
    return UsageRecord(
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
        status=UsageStatus.ABANDONED,
        detail="hold left open by a stopped process; released",
    )
