"""What the hot path reads per request, kept in memory: tokens by key hash,
the catalog (shipped files + admin overrides) and the channels.

Every management change bumps one shared version row; each replica polls it
(every ``state_poll_ms``) and drops what it cached when it moves, so an edit
made anywhere takes effect everywhere within a poll interval. Changes made
through this process apply at once. Whoever else keeps something an edit can
invalidate (the ledger's balance leases: a debit or a lowered quota returns
them, and bumps the version) registers with ``on_change`` to look again.

Each polling process keeps a row in ``processes`` saying which version it has
taken in (its caches dropped, its listeners run), renewed every few seconds.
An edit that lowers what may be spent waits (``until_seen``) until every live
process has taken the edit in, so when its answer comes no call anywhere can
still be admitted under the old limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.billing.pricing import ONE
from tollway.catalog import Catalog
from tollway.catalog.schema import ModelEntry, PerCallEntry, PerUseEntry
from tollway.db.schema import (
    accounts,
    channels,
    groups,
    model_overrides,
    processes,
    state_version,
    tokens,
)
from tollway.errors import database_unavailable
from tollway.key_vault import KeyUnreadable, KeyVault
from tollway.keys import hash_key
from tollway.limits.rules import LIMIT_FIELDS, Subject, limits_of
from tollway.providers import PROVIDERS
from tollway.timeutil import aware, utcnow
from tollway.types import BillingMethod, BillingMode, Model

log = logging.getLogger(__name__)

# Bound on cached keys, so a flood of random keys cannot grow memory forever.
MAX_CACHED_KEYS = 100_000
DEFAULT_GROUP = "default"
AUTO_GROUP = "auto"  # a token's group that walks the operator's ordered list
ALL_METHODS = frozenset(BillingMethod)
# A channel none of whose enabled keys can be decrypted (a wrong secret).
KEYS_UNREADABLE = "keys_unreadable"


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
    group: str = DEFAULT_GROUP  # a price group's name, or AUTO_GROUP
    account_groups: frozenset[str] = frozenset({DEFAULT_GROUP})  # what its tokens may use
    # The rate limits its calls count against: its own, its account's (none: ()).
    limited_by: tuple[Subject, ...] = ()

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class ChannelKey:
    index: int  # its place in the channel's list of keys
    key: str


@dataclass(frozen=True, slots=True)
class Channel:
    """An enabled upstream account, as routing reads it."""

    id: int
    name: str
    type: str
    base_url: str
    keys: tuple[ChannelKey, ...]  # the enabled ones
    models: frozenset[str]
    priority: int = 0
    weight: int = 1
    groups: frozenset[str] = frozenset({DEFAULT_GROUP})
    methods: frozenset[BillingMethod] = ALL_METHODS
    model_mapping: dict[str, str] = field(default_factory=dict, compare=False)
    key_strategy: str = "round_robin"
    status: str = "enabled"
    # What the upstream charges the operator: a multiplier on catalog prices,
    # or its own prices per model id (None: not recorded).
    cost_multiplier: Fraction | None = None
    cost_models: dict[str, Model] = field(default_factory=dict, compare=False)

    def serves(self, model: Model) -> bool:
        return (
            "*" in self.models or model.id in self.models or bool(self.models & set(model.aliases))
        )

    @property
    def enabled(self) -> bool:
        return self.status == "enabled" and bool(self.keys)


@dataclass(frozen=True, slots=True)
class Group:
    """A price group: its tokens see and pay catalog prices x ``multiplier``."""

    name: str
    multiplier: Fraction
    text: str  # the multiplier as the operator wrote it ("0.8")


def multiplier_of(text: str) -> Fraction:
    """A multiplier as written ("0.8"), exactly (x1 is billing's ONE itself)."""
    value = Fraction(Decimal(text))
    return ONE if value == ONE else value


# A process renews its row this often, and one not heard from for LIVE_S is gone.
BEAT_S = 5.0
LIVE_S = 3 * BEAT_S
FORGET_S = 3600.0  # a row this old (its process was killed) is deleted at a start
# The longest an edit waits for every process to take it in (a stalled one).
SEEN_WAIT_S = 5.0
SEEN_ASK_S = 0.02  # how often it asks meanwhile


class State:
    def __init__(
        self,
        engine: AsyncEngine,
        base_models: list[Model],
        poll_ms: int = 500,
        key_vault: KeyVault | None = None,
    ) -> None:
        self._engine = engine
        # Opens the channel keys stored encrypted (None: keys kept in clear).
        self.key_vault = key_vault or KeyVault()
        self.process_id = uuid.uuid4().hex
        self._beat_at = -BEAT_S
        self._base_models = base_models
        self._poll_s = poll_ms / 1000
        self._version = -1
        self._tokens: dict[str, TokenInfo | None] = {}
        self._routes: dict[tuple[str, str, BillingMethod, str], tuple[Channel, ...]] = {}
        self.catalog = Catalog(base_models)
        self.channels: tuple[Channel, ...] = ()  # the enabled ones, highest priority first
        self.all_channels: dict[int, Channel] = {}  # enabled or not (a job's channel)
        self.groups: dict[str, Group] = {DEFAULT_GROUP: Group(DEFAULT_GROUP, ONE, "1")}
        self.auto_groups: tuple[str, ...] = ()  # what AUTO_GROUP walks, in order
        self._poller: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call ``listener`` after every reload that finds the version moved."""
        self._listeners.append(listener)

    async def start(self) -> None:
        await self.reload()
        if self._poller is None and self._poll_s > 0:
            await self._report_seen()
            self._poller = asyncio.create_task(self._poll(), name="tollway-state-poll")
            async with self._engine.begin() as conn:  # rows of processes killed long ago
                long_gone = utcnow() - timedelta(seconds=FORGET_S)
                await conn.execute(delete(processes).where(processes.c.seen_at < long_gone))

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
            with contextlib.suppress(Exception):  # (else it is gone after LIVE_S)
                async with self._engine.begin() as conn:
                    await conn.execute(delete(processes).where(processes.c.id == self.process_id))

    async def reload(self) -> None:
        async with self._engine.connect() as conn:
            version, self._version = self._version, await _read_version(conn)
            overrides = (await conn.execute(select(model_overrides.c.data))).scalars().all()
            rows = (await conn.execute(select(channels))).mappings().all()
            group_rows = (await conn.execute(select(groups))).mappings().all()
        self.catalog = Catalog(self._base_models).with_overrides(
            ModelEntry.model_validate(data).to_model() for data in overrides
        )
        every = sorted(
            (channel_of(r, self.catalog, self.key_vault) for r in rows),
            key=lambda c: (-c.priority, c.id),
        )
        self.all_channels = {c.id: c for c in every}
        self.channels = tuple(c for c in every if c.enabled)
        self.groups = {DEFAULT_GROUP: Group(DEFAULT_GROUP, ONE, "1")}
        for r in group_rows:
            self.groups[r["name"]] = Group(
                r["name"], multiplier_of(r["multiplier"]), r["multiplier"]
            )
        ranked = sorted(
            (r["auto_rank"], r["name"]) for r in group_rows if r["auto_rank"] is not None
        )
        self.auto_groups = tuple(name for _, name in ranked)
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

    def candidates(
        self, model: Model, endpoint: str, method: BillingMethod, group: str
    ) -> tuple[Channel, ...]:
        """The enabled channels that serve ``model`` on ``endpoint``, by
        ``method``, to ``group``: highest priority first (kept until an edit)."""
        key = (model.id, endpoint, method, group)
        found = self._routes.get(key)
        if found is None:
            found = tuple(
                c
                for c in self.channels
                if method in c.methods
                and group in c.groups
                and c.serves(model)
                and endpoint in PROVIDERS[c.type].endpoints
            )
            self._routes[key] = found
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
            select(
                tokens,
                accounts.c.enabled.label("account_enabled"),
                accounts.c.groups.label("account_groups"),
                *(accounts.c[name].label(f"account_{name}") for name in LIMIT_FIELDS),
            )
            .join(accounts, accounts.c.id == tokens.c.account_id)
            .where(tokens.c.key_hash == digest, tokens.c.deleted.is_(False))
        )
        try:
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).mappings().first()
        except (DBAPIError, OSError) as exc:  # the database is down or restarting
            log.warning("token lookup failed: %r", exc)
            raise database_unavailable() from None
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
            group=row["group_name"],
            account_groups=frozenset(row["account_groups"] or (DEFAULT_GROUP,)),
            limited_by=_limited_by(row),
        )

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                async with self._engine.connect() as conn:
                    version = await _read_version(conn)
                if version != self._version:
                    await self.reload()
                    await self._report_seen()
                elif loop.time() - self._beat_at > BEAT_S:
                    await self._report_seen()
            except Exception:  # a database hiccup must not stop the poller
                log.exception("state poll failed; will retry")

    async def _report_seen(self) -> None:
        """Say that this process is alive and has taken in ``self._version``."""
        values = {"seen_version": self._version, "seen_at": utcnow()}
        async with self._engine.begin() as conn:
            mine = processes.c.id == self.process_id
            found = await conn.execute(update(processes).where(mine).values(values))
            if found.rowcount == 0:
                await conn.execute(insert(processes).values(id=self.process_id, **values))
        self._beat_at = asyncio.get_running_loop().time()

    async def until_seen(self) -> bool:
        """Wait until every other live process has taken in the state as it is
        now. Call after an edit that lowers what may be spent: its answer then
        binds the next call on every process. False if one (stalled) did not
        within SEEN_WAIT_S; the edit stands, that process learns it later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEEN_WAIT_S
        async with self._engine.connect() as conn:
            version = await _read_version(conn)
        behind = select(func.count()).where(
            processes.c.id != self.process_id, processes.c.seen_version < version
        )
        while True:
            alive = processes.c.seen_at >= utcnow() - timedelta(seconds=LIVE_S)
            async with self._engine.connect() as conn:
                waiting = (await conn.execute(behind.where(alive))).scalar()
            if not waiting:
                return True
            if loop.time() > deadline:
                log.warning("%s processes did not take in version %d in time", waiting, version)
                return False
            await asyncio.sleep(SEEN_ASK_S)


async def _read_version(conn: AsyncConnection) -> int:
    value = (
        await conn.execute(select(state_version.c.version).where(state_version.c.id == 1))
    ).scalar()
    return int(value or 0)


def channel_of(row: Any, catalog: Catalog, vault: KeyVault | None = None) -> Channel:
    """A channel row as routing reads it (its keys decrypted, once)."""
    cost = row["cost"] or {}
    multiplier = cost.get("multiplier")
    keys, unreadable = open_keys(row, vault or KeyVault())
    status = row["status"]
    if unreadable:
        log.warning(
            "channel %s (%s): %d of its keys cannot be decrypted with TOLLWAY_SECRET_KEY "
            "or TOLLWAY_SECRET_KEY_PREVIOUS; they are skipped (docs/security.md)",
            row["id"],
            row["name"],
            unreadable,
        )
        if not keys and status == "enabled":
            status = KEYS_UNREADABLE
    return Channel(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        base_url=row["base_url"].rstrip("/"),
        keys=keys,
        models=frozenset(row["models"]),
        priority=row["priority"],
        weight=row["weight"],
        groups=frozenset(row["groups"]),
        methods=frozenset(BillingMethod(m) for m in row["methods"]),
        model_mapping=dict(row["model_mapping"] or {}),
        key_strategy=row["key_strategy"],
        status=status,
        cost_multiplier=multiplier_of(multiplier) if multiplier is not None else None,
        cost_models=cost_models(cost.get("prices") or {}, catalog),
    )


def open_keys(row: Any, vault: KeyVault) -> tuple[tuple[ChannelKey, ...], int]:
    """A channel's enabled keys in clear, and how many no secret opens."""
    keys, unreadable = [], 0
    for i, k in enumerate(row["api_keys"]):
        if not k.get("enabled", True):
            continue
        try:
            keys.append(ChannelKey(i, vault.open(k["key"])))
        except KeyUnreadable:
            unreadable += 1
    return tuple(keys), unreadable


def cost_models(prices: dict[str, Any], catalog: Catalog) -> dict[str, Model]:
    """A channel's own prices per model id (the catalog's price shapes), as
    models to bill the upstream's cost by."""
    found: dict[str, Model] = {}
    for model_id, entry in prices.items():
        model = catalog.get(model_id)
        if model is not None:
            found[model.id] = with_prices(model, entry)
    return found


def with_prices(model: Model, entry: dict[str, Any]) -> Model:
    per_use, per_call = entry.get("per_use"), entry.get("per_call")
    return dataclasses.replace(
        model,
        per_use=PerUseEntry.model_validate(per_use).to_price() if per_use else None,
        per_call=PerCallEntry.model_validate(per_call).to_price(model.kind) if per_call else None,
    )


def _limited_by(row: Any) -> tuple[Subject, ...]:
    """A token's rate limits, then its account's."""
    subjects = []
    own, account = limits_of(row), limits_of(row, "account_")
    if own is not None:
        subjects.append(Subject("token", row["id"], own))
    if account is not None:
        subjects.append(Subject("account", row["account_id"], account))
    return tuple(subjects)
