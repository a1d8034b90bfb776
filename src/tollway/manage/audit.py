"""The admin audit log: who changed what, and when.

Whoever acts is set once per request (the API's and the console's sign-in,
the CLI's ``run``) in a context variable, so the services record it without
being told; a change is written in the transaction that makes it (``record``)
or, for a ledger step, right after it commits (``record_now``). Only
changes by an admin or the operator's CLI are written (a user's own token
edits are theirs). Keys and passwords never reach the log: their fields are
written as ``"(changed)"``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.db.schema import audit_log
from tollway.gateway import Gateway
from tollway.timeutil import iso, utcnow

SECRET_FIELDS = frozenset({"api_key", "api_keys", "password", "secret", "management_key"})
MAX_LISTED = 500


@dataclass(frozen=True, slots=True)
class Actor:
    account_id: int | None
    name: str
    admin: bool


CLI = Actor(None, "cli", admin=True)
_ACTOR: ContextVar[Actor | None] = ContextVar("tollway_actor", default=None)


def acting(account_id: int | None, name: str, admin: bool) -> None:
    """Who acts in this request (or CLI command) from here on."""
    _ACTOR.set(Actor(account_id, name, admin))


def acting_as_cli() -> None:
    _ACTOR.set(CLI)


def _audited() -> Actor | None:
    actor = _ACTOR.get()
    return actor if actor is not None and actor.admin else None


def _clean(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    return {k: "(changed)" if k in SECRET_FIELDS else _plain(v) for k, v in detail.items()}


def _plain(value: Any) -> Any:
    """JSON-able, all the way down: dates as ISO text, numbers JSON has no
    exact form for (Decimal, Fraction) and anything else as their text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return iso(value) if hasattr(value, "isoformat") else str(value)


def _row(actor: Actor, action: str, target: str, detail: dict[str, Any] | None) -> dict[str, Any]:
    label = f"{actor.name} (admin)" if actor.account_id is not None else actor.name
    return {
        "at": utcnow(),
        "actor_account_id": actor.account_id,
        "actor": label[:200],
        "action": action,
        "target": target[:200],
        "detail": _clean(detail),
    }


async def record(
    conn: AsyncConnection, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Write the change in its own transaction (``conn``), if an admin made it."""
    actor = _audited()
    if actor is not None:
        await conn.execute(insert(audit_log).values(_row(actor, action, target, detail)))


async def record_now(
    gw: Gateway, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Write a change that committed elsewhere (a ledger step)."""
    if _audited() is None:
        return
    async with gw.engine.begin() as conn:
        await record(conn, action, target, detail)


async def list_audit(
    gw: Gateway, limit: int = 100, action: str | None = None, target: str | None = None
) -> list[dict[str, Any]]:
    """The newest entries first (at most MAX_LISTED), filtered by action prefix or target."""
    a = audit_log.c
    query = select(audit_log).order_by(a.id.desc()).limit(max(1, min(limit, MAX_LISTED)))
    if action:
        query = query.where(a.action.startswith(action, autoescape=True))
    if target:
        query = query.where(a.target == target)
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "id": r["id"],
            "at": iso(r["at"]),
            "actor": r["actor"],
            "actor_account_id": r["actor_account_id"],
            "action": r["action"],
            "target": r["target"],
            "detail": r["detail"],
        }
        for r in rows
    ]
