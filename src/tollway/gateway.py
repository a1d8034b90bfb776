"""The services one running gateway holds, built once by the app factory and
handed to every endpoint (no globals)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.counting import TokenCounter
from tollway.ledger import Ledger
from tollway.limits import Limiter, LocalLimiter
from tollway.observe.metrics import Metrics
from tollway.routing import Router
from tollway.settings import Settings
from tollway.state import State
from tollway.transport import Transport

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    state: State
    ledger: Ledger
    upstream: Transport
    counter: TokenCounter
    router: Router = field(default_factory=Router)
    limits: Limiter = field(default_factory=LocalLimiter)
    metrics: Metrics = field(default_factory=Metrics)
    # Strong references to fire-and-forget tasks, so none is collected mid-way.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background (kept referenced; a failure is logged)."""
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        task.add_done_callback(_logged)

    async def spending_lowered(
        self, account_id: int | None = None, token_id: int | None = None
    ) -> None:
        """After an edit (committed, the state version moved) that lowers what
        an account or a token may spend: every process's leases of it are
        returned, and this returns once every live process has taken the edit
        in, so the next call anywhere is weighed against the new limit."""
        await self.ledger.revoke_leases(account_id, token_id)
        await self.state.reload()
        await self.state.until_seen()


def _logged(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background work failed", exc_info=task.exception())
