"""What the hot path reads per request, kept in memory: tokens by key hash,
the catalog (shipped files + admin overrides) and the channels.

Every management change bumps one shared version row; each replica polls it
(every ``state_poll_ms``) and drops what it cached when it moves, so an edit
made anywhere takes effect everywhere within a poll interval. Changes made
through this process apply at once. Whoever else keeps something an edit can
invalidate (the ledger's balance leases: a debit or a lowered quota returns
them, and bumps the version) registers with ``on_change`` to look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.catalog import Catalog
from tollway.catalog.schema import ModelEntry
from tollway.db.schema import accounts, channels, model_overrides, state_version, tokens
from tollway.keys import hash_key
from tollway.timeutil import aware
from tollway.types import BillingMode, Model

log = logging.getLogger(__name__)

# Bound on cached keys, so a flood of random keys cannot grow memory forever.
MAX_CACHED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    account_id: int
    name: str
    billing_mode: BillingMode
    quota_nano: int | None
    expires_at: datetime | None
    models: frozenset[str] | None
    enabled: bool
    account_enabled: bool

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str
    type: str
    base_url: str
    api_key: str
    models: frozenset[str]
    priority: int

    def serves(self, model: Model) -> bool:
        return (
            "*" in self.models or model.id in self.models or bool(self.models & set(model.aliases))
        )


class State:
    def __init__(self, engine: AsyncEngine, base_models: list[Model], poll_ms: int = 500) -> None:
        self._engine = engine
        self._base_models = base_models
        self._poll_s = poll_ms / 1000
        self._version = -1
        self._tokens: dict[str, TokenInfo | None] = {}
        self._routes: dict[str, tuple[Channel, ...]] = {}
        self.catalog = Catalog(base_models)
        self.channels: tuple[Channel, ...] = ()
        self._poller: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call ``listener`` after every reload that finds the version moved."""
        self._listeners.append(listener)

    async def start(self) -> None:
        await self.reload()
        if self._poller is None and self._poll_s > 0:
            self._poller = asyncio.create_task(self._poll(), name="tollway-state-poll")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def reload(self) -> None:
        async with self._engine.connect() as conn:
            version, self._version = self._version, await _read_version(conn)
            overrides = (await conn.execute(select(model_overrides.c.data))).scalars().all()
            rows = (await conn.execute(select(channels).where(channels.c.enabled))).mappings().all()
        self.catalog = Catalog(self._base_models).with_overrides(
            ModelEntry.model_validate(data).to_model() for data in overrides
        )
        self.channels = tuple(
            sorted(
                (
                    Channel(
                        r["id"],
                        r["name"],
                        r["type"],
                        r["base_url"].rstrip("/"),
                        r["api_key"],
                        frozenset(r["models"]),
                        r["priority"],
                    )
                    for r in rows
                ),
                key=lambda c: (-c.priority, c.id),
            )
        )
        self._routes = {}
        self._tokens = {}
        if version != self._version:
            await self._notify()

    async def _notify(self) -> None:
        for listener in self._listeners:
            try:
                await listener()
            except Exception:  # the listener's own upkeep retries; the edit stands
                log.exception("state change listener failed")

    async def changed(self, conn: AsyncConnection) -> None:
        """Call inside the transaction of a management change: bumps the shared
        version so every replica reloads. Reload this process with ``reload``."""
        await conn.execute(update(state_version).values(version=state_version.c.version + 1))

    def channels_for(self, model: Model) -> tuple[Channel, ...]:
        found = self._routes.get(model.id)
        if found is None:
            found = tuple(c for c in self.channels if c.serves(model))
            self._routes[model.id] = found
        return found

    async def token_by_key(self, key: str) -> TokenInfo | None:
        digest = hash_key(key)
        if digest in self._tokens:
            return self._tokens[digest]
        info = await self._load_token(digest)
        if len(self._tokens) >= MAX_CACHED_KEYS:
            self._tokens.clear()
        self._tokens[digest] = info
        return info

    async def _load_token(self, digest: str) -> TokenInfo | None:
        query = (
            select(tokens, accounts.c.enabled.label("account_enabled"))
            .join(accounts, accounts.c.id == tokens.c.account_id)
            .where(tokens.c.key_hash == digest, tokens.c.deleted.is_(False))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return TokenInfo(
            id=row["id"],
            account_id=row["account_id"],
            name=row["name"],
            billing_mode=BillingMode(row["billing_mode"]),
            quota_nano=row["quota_nano"],
            expires_at=aware(row["expires_at"]),
            models=frozenset(row["models"]) if row["models"] else None,
            enabled=row["enabled"],
            account_enabled=row["account_enabled"],
        )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                async with self._engine.connect() as conn:
                    version = await _read_version(conn)
                if version != self._version:
                    await self.reload()
            except Exception:  # a database hiccup must not stop the poller
                log.exception("state poll failed; will retry")


async def _read_version(conn: AsyncConnection) -> int:
    value = (
        await conn.execute(select(state_version.c.version).where(state_version.c.id == 1))
    ).scalar()
    return int(value or 0)
