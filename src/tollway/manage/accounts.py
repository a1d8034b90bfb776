"""Accounts: who owns balances and tokens, and who may manage what."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tollway.db.schema import accounts, leases, ledger, web_sessions
from tollway.errors import ApiError, bad_request, invalid_api_key, not_found
from tollway.gateway import Gateway
from tollway.keys import MANAGEMENT_KEY_PREFIX, display_prefix, hash_key, new_key
from tollway.ledger import BalanceOutOfRange
from tollway.manage import audit, checks
from tollway.manage.budgets import budget_fields
from tollway.manage.groups import check_member_groups
from tollway.state import DEFAULT_GROUP
from tollway.timeutil import iso, utcnow
from tollway.types import MAX_NANO, MAX_USD, nano_to_usd

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from sqlalchemy.ext.asyncio import AsyncConnection

ROLES = ("admin", "user")
MAX_USERNAME_CHARS = 100
# Where a signed-in console session puts its Account in the ASGI scope; the
# management API takes it as the caller (see tollway.api.deps).
SESSION_ACCOUNT = "tollway.account"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    role: str
    enabled: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _account(row: Any) -> Account:
    return Account(row["id"], row["username"], row["role"], row["enabled"])


async def create_account(
    gw: Gateway,
    username: str,
    password: str | None = None,
    role: str = "user",
    management_key: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new account and its management key (shown once)."""
    username = checks.text(username, "username", MAX_USERNAME_CHARS)
    if role not in ROLES:
        raise bad_request(f"'role' must be one of {', '.join(ROLES)}.", param="role")
    key = management_key or new_key(MANAGEMENT_KEY_PREFIX)
    values = {
        "username": username,
        "password_hash": await _hash_password(password) if password else None,
        "role": role,
        "management_key_hash": hash_key(key),
        "management_key_prefix": display_prefix(key),
        "balance_nano": 0,
        "held_nano": 0,
        "enabled": True,
        "created_at": utcnow(),
    }
    try:
        async with gw.engine.begin() as conn:
            new_id = (
                await conn.execute(insert(accounts).values(values).returning(accounts.c.id))
            ).scalar_one()
            detail = {"username": username, "role": role}
            await audit.record(conn, "account.create", f"account:{new_id}", detail)
    except IntegrityError as exc:
        raise ApiError(409, f"The username '{username}' is taken.", "username_taken") from exc
    return {"id": new_id, "username": username, "role": role}, key


async def ensure_bootstrap_admin(gw: Gateway, admin_key: str) -> None:
    """TOLLWAY_ADMIN_KEY at first start: the first admin's management key.
    Several workers may start at once; the one that loses the race to create
    the account finds it made, which is all it wanted."""
    async with gw.engine.connect() as conn:
        known = await conn.execute(
            select(accounts.c.id).where(accounts.c.management_key_hash == hash_key(admin_key))
        )
        admins = await conn.execute(select(func.count()).where(accounts.c.role == "admin"))
        if known.first() is not None or admins.scalar():
            return
    try:
        await create_account(gw, "admin", role="admin", management_key=admin_key)
    except ApiError as exc:
        if exc.code != "username_taken":
            raise


async def by_management_key(gw: Gateway, key: str) -> Account:
    async with gw.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(accounts).where(accounts.c.management_key_hash == hash_key(key))
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise invalid_api_key("Incorrect management key provided.")
    if not row["enabled"]:
        raise ApiError(403, "This account is disabled.", "account_disabled", "permission_error")
    return _account(row)


async def by_password(gw: Gateway, username: str, password: str) -> Account | None:
    async with gw.engine.connect() as conn:
        row = (
            (await conn.execute(select(accounts).where(accounts.c.username == username)))
            .mappings()
            .first()
        )
    if row is None or not row["password_hash"] or not row["enabled"]:
        await _hash_password(password)  # same work either way: no timing hint that the name exists
        return None
    if not await _password_matches(row["password_hash"], password):
        return None
    return _account(row)


async def set_password(gw: Gateway, account_id: int, password: str) -> None:
    """Set the password and sign out every console session of the account, in
    one transaction (a browser that should stay signed in starts a new one)."""
    if len(password) < 8:
        raise bad_request("A password needs at least 8 characters.", param="password")
    password_hash = await _hash_password(password)
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash)
        )
        await audit.record(conn, "account.password", f"account:{account_id}", {"password": True})
        await end_sessions(conn, account_id)


async def end_sessions(conn: AsyncConnection, account_id: int) -> None:
    """Sign out all the account's console sessions (tollway.manage.sessions)."""
    await conn.execute(delete(web_sessions).where(web_sessions.c.account_id == account_id))


# Passwords: argon2 (imported on first use: only the console's sign-in and
# password changes need it). Hashing takes tens of milliseconds of CPU by
# design, so it runs on a thread (argon2's C code lets go of the GIL) and
# calls in flight are not held up meanwhile.


@functools.cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


async def _hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def _password_matches(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return await asyncio.to_thread(_hasher().verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# What the account's leases have spent and not yet folded into balance_nano
# (tollway.leases): part of the balance already, and of what is held.
_LEASE_SPENT = (
    select(func.coalesce(func.sum(leases.c.spent_nano), 0))
    .where(leases.c.account_id == accounts.c.id)
    .scalar_subquery()
    .label("lease_spent")
)


async def account_view(gw: Gateway, account_id: int) -> dict[str, Any]:
    if not checks.can_exist(account_id):
        raise not_found(f"No account {account_id}.", "account_not_found")
    async with gw.engine.connect() as conn:
        row = (
            (await conn.execute(select(accounts, _LEASE_SPENT).where(accounts.c.id == account_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise not_found(f"No account {account_id}.", "account_not_found")
    return _view(row)


def _view(row: Any) -> dict[str, Any]:
    spent = int(row["lease_spent"])
    return {
        "id": row["id"],
        "username": row["username"],
        "role": row["role"],
        "balance_usd": nano_to_usd(row["balance_nano"] - spent),
        # held: calls in flight, and the reserve busy gateway processes keep
        "held_usd": nano_to_usd(row["held_nano"] - spent),
        "available_usd": nano_to_usd(row["balance_nano"] - row["held_nano"]),
        "enabled": row["enabled"],
        "groups": row["groups"] or [DEFAULT_GROUP],  # the price groups its tokens may use
        **{name: row[name] for name in checks.LIMIT_FIELDS},  # binding all its tokens
        **budget_fields(row, spent),
        "created_at": iso(row["created_at"]),
    }


async def list_accounts(gw: Gateway) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        query = select(accounts, _LEASE_SPENT).order_by(accounts.c.id)
        rows = (await conn.execute(query)).mappings().all()
    return [_view(row) for row in rows]


async def set_enabled(gw: Gateway, account_id: int, enabled: bool) -> dict[str, Any]:
    await account_view(gw, account_id)  # 404 for an account that does not exist
    async with gw.engine.begin() as conn:
        done = await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(enabled=enabled)
        )
        if done.rowcount != 1:
            raise not_found(f"No account {account_id}.", "account_not_found")
        if not enabled:  # re-enabling must not bring old sessions back
            await end_sessions(conn, account_id)
        action = "account.enable" if enabled else "account.disable"
        await audit.record(conn, action, f"account:{account_id}")
        await gw.state.changed(conn)
    if not enabled:  # binds the next call on every process
        await gw.spending_lowered(account_id)
    else:
        await gw.state.reload()
    return await account_view(gw, account_id)


async def set_groups(gw: Gateway, account_id: int, names: Any) -> dict[str, Any]:
    """Set the price groups the account's tokens may use (checked by
    ``check_member_groups``). A token left in a group its account no longer
    has is refused (403 ``group_not_allowed``) until moved; the edit answers
    once every process has taken it in."""
    names = check_member_groups(gw, names)
    await account_view(gw, account_id)  # 404 for an account that does not exist
    async with gw.engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == account_id).values(groups=names))
        await audit.record(conn, "account.groups", f"account:{account_id}", {"groups": names})
        await gw.state.changed(conn)
    await gw.state.reload()
    await gw.state.until_seen()
    return await account_view(gw, account_id)


async def set_limits(gw: Gateway, account_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Set any of the account's rate limits (rpm_limit, tpm_limit,
    max_concurrent) and its budget (budget_nano, budget_period); None lifts
    one. Every token of the account counts against them. A budget edit
    answers once every process has taken it in (as a quota's)."""
    values = checks.limits(changes)
    account = await account_view(gw, account_id)  # 404 for an account that does not exist
    values.update(checks.budget(changes, account["budget_period"]))
    if values:
        async with gw.engine.begin() as conn:
            await conn.execute(update(accounts).where(accounts.c.id == account_id).values(values))
            await audit.record(conn, "account.limits", f"account:{account_id}", values)
            await gw.state.changed(conn)
        if values.keys() & {"budget_nano", "budget_period"}:
            await gw.spending_lowered(account_id)
        else:
            await gw.state.reload()
    return await account_view(gw, account_id)


async def credit(gw: Gateway, account_id: int, amount_nano: int, reason: str) -> dict[str, Any]:
    """Credit (or, negative, debit) an account through the ledger. The amount
    and the balance it leaves are each at most ``MAX_USD`` either way."""
    if not isinstance(reason, str) or not reason.strip():
        raise bad_request("A credit or debit needs a reason.", param="reason")
    reason = checks.text(reason, "reason", checks.MAX_TEXT_CHARS)
    if isinstance(amount_nano, bool) or not isinstance(amount_nano, int):
        raise bad_request("'amount_usd' must be an amount in USD.", param="amount_usd")
    if abs(amount_nano) > MAX_NANO:
        raise bad_request(
            f"'amount_usd' is beyond the maximum of {MAX_USD} USD.", param="amount_usd"
        )
    await account_view(gw, account_id)  # 404 for an unknown account
    try:
        balance = await gw.ledger.credit(account_id, amount_nano, reason)
    except BalanceOutOfRange as exc:
        raise bad_request(f"{exc}; nothing was applied.", param="amount_usd") from None
    action = "account.credit" if amount_nano >= 0 else "account.debit"
    detail = {"amount_usd": nano_to_usd(amount_nano), "reason": reason}
    await audit.record_now(gw, action, f"account:{account_id}", detail)
    if amount_nano < 0:  # the ledger returned the leases: wait until all know
        await gw.state.until_seen()
    return {"account_id": account_id, "balance_usd": nano_to_usd(balance)}


async def credits_of(gw: Gateway, account_id: int, limit: int = 50) -> list[dict[str, Any]]:
    query = (
        select(ledger)
        .where(ledger.c.account_id == account_id, ledger.c.kind.in_(("credit", "debit")))
        .order_by(ledger.c.id.desc())
        .limit(limit)
    )
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "amount_usd": nano_to_usd(r["amount_nano"]),
            "reason": r["reason"],
            "created_at": iso(r["created_at"]),
        }
        for r in rows
    ]
