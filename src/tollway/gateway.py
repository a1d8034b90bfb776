"""The services one running gateway holds, built once by the app factory and
handed to every endpoint (no globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.counting import TokenCounter
from tollway.ledger import Ledger
from tollway.settings import Settings
from tollway.state import State
from tollway.transport import Transport


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    state: State
    ledger: Ledger
    upstream: Transport
    counter: TokenCounter
    # Strong references to fire-and-forget tasks, so none is collected mid-way.
    background: set[asyncio.Task[None]] = field(default_factory=set)

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
