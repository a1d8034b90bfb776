"""Stored responses (``store: true``): what GET /v1/responses/{id}, its
input_items and ``previous_response_id`` read.

A response belongs to the account that made it: every read names the
account, and another account's response is as absent as a missing one. A
response is written after it was answered, off the answer's path; until the
write lands, a read in this process waits for it (``ResponseStore.settled``),
so a client that continues a conversation at once finds it. Each write is
one statement on an autocommit connection (see videos/store.py: SQLite and
the ledger share the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.db.schema import stored_responses
from tollway.gateway import Gateway

log = logging.getLogger(__name__)

Json = dict[str, Any]

MAX_CHAIN = 100  # responses a previous_response_id may reach back through
WRITE_WAIT_S = 10.0  # how long a read waits for this process's pending write


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    account_id: int
    token_id: int | None
    model: str
    created_at: datetime
    previous_response_id: str | None
    input_items: list[Json]  # this request's own input, each item with an id
    response: Json  # the response object as answered


class ChainTooLong(Exception):
    """A previous_response_id chain longer than MAX_CHAIN."""


class ResponseStore:
    """The stored responses of one gateway process, and its writes in flight."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._pending: dict[str, asyncio.Event] = {}

    def save_later(self, stored: StoredResponse) -> None:
        """Write ``stored`` in the background; reads here wait for it."""
        self._pending[stored.id] = asyncio.Event()
        self.gw.spawn(self._save(stored))

    async def _save(self, stored: StoredResponse) -> None:
        try:
            async with self._connection() as conn:
                await conn.execute(insert(stored_responses).values(_row(stored)))
        finally:
            event = self._pending.pop(stored.id, None)
            if event is not None:
                event.set()

    async def settled(self, response_id: str) -> None:
        event = self._pending.get(response_id)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), WRITE_WAIT_S)

    async def load(self, account_id: int, response_id: str) -> StoredResponse | None:
        await self.settled(response_id)
        c = stored_responses.c
        query = select(stored_responses).where(c.id == response_id, c.account_id == account_id)
        async with self._connection() as conn:
            row = (await conn.execute(query)).first()
        return _stored(row._mapping) if row is not None else None

    async def delete(self, account_id: int, response_id: str) -> bool:
        await self.settled(response_id)
        c = stored_responses.c
        query = delete(stored_responses).where(c.id == response_id, c.account_id == account_id)
        async with self._connection() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def conversation(self, account_id: int, response_id: str) -> list[Json] | None:
        """The items of the conversation up to and including ``response_id``
        (each response's input, then its output), oldest first; None when a
        response of the chain is not the account's (or no longer stored)."""
        chain: list[StoredResponse] = []
        next_id: str | None = response_id
        while next_id is not None:
            if len(chain) == MAX_CHAIN:
                raise ChainTooLong(response_id)
            stored = await self.load(account_id, next_id)
            if stored is None:
                return None
            chain.append(stored)
            next_id = stored.previous_response_id
        items: list[Json] = []
        for stored in reversed(chain):
            items.extend(stored.input_items)
            output = stored.response.get("output")
            items.extend(output if isinstance(output, list) else ())
        return items

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        async with self.gw.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def _row(stored: StoredResponse) -> Json:
    return {
        "id": stored.id,
        "account_id": stored.account_id,
        "token_id": stored.token_id,
        "model": stored.model,
        "created_at": stored.created_at,
        "previous_response_id": stored.previous_response_id,
        "input_items": stored.input_items,
        "response": stored.response,
    }


def _stored(row: Any) -> StoredResponse:
    return StoredResponse(
        id=row["id"],
        account_id=row["account_id"],
        token_id=row["token_id"],
        model=row["model"],
        created_at=row["created_at"],
        previous_response_id=row["previous_response_id"],
        input_items=list(row["input_items"] or []),
        response=dict(row["response"] or {}),
    )
