"""Web console sessions, held in the database so that a sign-out binds every
process and replica at once.

A session is a random id the browser keeps in its (signed) cookie; the
database keeps only the id's SHA-256, so a copy of the table signs no one in.
Signing in adds a row (and sweeps the expired ones), signing out deletes it,
and a password change or a disabled account deletes all of the account's
(tollway.manage.accounts). A request finds its account with one query by
primary key, joined to the account row it reads anyway. A session in use is
renewed now and then (one UPDATE at most every RENEW_EVERY_S), so a console
in use stays signed in and one left idle for its lifetime is signed out.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from tollway.db.schema import accounts, web_sessions
from tollway.gateway import Gateway
from tollway.manage.accounts import Account
from tollway.timeutil import aware, utcnow

SESSION_ID_BYTES = 32
RENEW_EVERY_S = 3600


def stored_id(session_id: str) -> str:
    """What the table keeps of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(gw: Gateway, account_id: int, lifetime_s: int) -> str:
    """A new session for the account: its id, for the cookie only."""
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    now = utcnow()
    row = {
        "id": stored_id(session_id),
        "account_id": account_id,
        "created_at": now,
        "expires_at": now + timedelta(seconds=lifetime_s),
    }
    async with gw.engine.begin() as conn:
        # Sign-ins are rare and the sweep is one indexed range delete.
        await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
        await conn.execute(insert(web_sessions).values(row))
    return session_id


async def end(gw: Gateway, session_id: str) -> None:
    async with gw.engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.id == stored_id(session_id)))


_SIGNED_IN = select(
    accounts.c.id,
    accounts.c.username,
    accounts.c.role,
    accounts.c.enabled,
    web_sessions.c.expires_at,
).join_from(web_sessions, accounts, web_sessions.c.account_id == accounts.c.id)


async def account_of(gw: Gateway, session_id: str, lifetime_s: int) -> Account | None:
    """The enabled account a live session signs in, or None."""
    now, key = utcnow(), stored_id(session_id)
    query = _SIGNED_IN.where(web_sessions.c.id == key, web_sessions.c.expires_at > now)
    async with gw.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None or not row["enabled"]:
        return None
    renewed = now + timedelta(seconds=lifetime_s)
    expires_at = aware(row["expires_at"])
    assert expires_at is not None
    if renewed - expires_at >= timedelta(seconds=min(RENEW_EVERY_S, lifetime_s / 2)):
        # By id only: a session deleted meanwhile (signed out) stays deleted.
        async with gw.engine.begin() as conn:
            await conn.execute(
                update(web_sessions).where(web_sessions.c.id == key).values(expires_at=renewed)
            )
    return Account(row["id"], row["username"], row["role"], row["enabled"])
