"""Upstream channel keys encrypted at rest (docs/security.md).

A key is stored as ``enc:v1:<base64 of nonce + AES-GCM ciphertext>``, under
an AES-256 key derived by HKDF-SHA256 from the server's secret (the one that
signs console cookies: ``TOLLWAY_SECRET_KEY``, else the one kept in the data
directory). A stored value without the prefix is a key written before
encryption, read as it is until ``seal_plaintext_keys`` encrypts it.

Rotation: the old secrets (``TOLLWAY_SECRET_KEY_PREVIOUS``) are tried when
the current one cannot open a key, and ``rekey`` seals every key again under
the current one. Keys are opened once, when the state loads channels.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.schema import channels
from tollway.settings import Settings

PREFIX = "enc:v1:"
# Changing the derivation means a new info string and a new prefix (v2).
HKDF_INFO = b"tollway channel keys v1"
NONCE_BYTES = 12
AAD = b"tollway channel key"
MIN_SECRET_CHARS = 32
SECRET_FILE_NAME = "secret_key"


class SecretKeyError(ValueError):
    pass


class KeyUnreadable(ValueError):
    """A sealed key no configured secret opens (a wrong or missing secret)."""


def stable_secret(secret_key: str | None, data_dir: Path | None) -> str | None:
    """The server's secret, the same in every process: ``secret_key``
    (TOLLWAY_SECRET_KEY) when set, else the one kept in ``data_dir`` (created
    at first start). None with neither: no secret other processes share."""
    if secret_key:
        if len(secret_key) < MIN_SECRET_CHARS:
            raise SecretKeyError(
                f"TOLLWAY_SECRET_KEY must be at least {MIN_SECRET_CHARS} characters"
            )
        return secret_key
    if data_dir is None:
        return None
    return _persisted(data_dir / SECRET_FILE_NAME)


def _persisted(path: Path) -> str:
    """Read the secret, or create it; exclusive create, so concurrent workers
    starting together agree on one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(48)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(fresh)
            out.flush()
            os.fsync(out.fileno())
        return fresh
    for _ in range(50):  # another worker may be writing it right now
        key = path.read_text().strip()
        if len(key) >= MIN_SECRET_CHARS:
            return key
        time.sleep(0.02)
    raise SecretKeyError(f"{path} holds no usable secret key; delete it to make a new one")


def _cipher(secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return AESGCM(hkdf.derive(secret.encode()))


@dataclass(frozen=True)
class KeyVault:
    """Seals channel keys under the current secret; opens them with it or a
    previous one. Without a current secret (no TOLLWAY_SECRET_KEY and no
    data directory) keys are kept as given: nothing other processes could
    open them with would exist."""

    current: AESGCM | None = None
    previous: tuple[AESGCM, ...] = ()

    @classmethod
    def of(cls, secret: str | None, previous: tuple[str, ...] = ()) -> KeyVault:
        return cls(_cipher(secret) if secret else None, tuple(_cipher(p) for p in previous if p))

    @property
    def seals(self) -> bool:
        return self.current is not None

    def seal(self, plain: str) -> str:
        if self.current is None:
            return plain
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.current.encrypt(nonce, plain.encode(), AAD)
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        """The key itself; KeyUnreadable when no secret opens it."""
        if not is_sealed(stored):
            return stored  # written before encryption
        try:
            blob = base64.b64decode(stored[len(PREFIX) :], validate=True)
        except binascii.Error:
            raise KeyUnreadable("a stored channel key is damaged") from None
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        for cipher in (self.current, *self.previous):
            if cipher is None:
                continue
            with contextlib.suppress(InvalidTag):
                return cipher.decrypt(nonce, sealed, AAD).decode()
        raise KeyUnreadable(
            "a channel key cannot be decrypted with TOLLWAY_SECRET_KEY "
            "(or TOLLWAY_SECRET_KEY_PREVIOUS)"
        )

    def opens_with_current(self, stored: str) -> bool:
        if self.current is None or not is_sealed(stored):
            return False
        try:
            blob = base64.b64decode(stored[len(PREFIX) :], validate=True)
            self.current.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], AAD)
        except (binascii.Error, InvalidTag):
            return False
        return True


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def vault_of(settings: Settings) -> KeyVault:
    """The vault every process of a deployment builds alike from its settings."""
    secret = stable_secret(settings.secret_key, settings.data_dir)
    return KeyVault.of(secret, settings.secret_key_previous)


# The data steps: sealing keys kept in clear runs at every start, after the
# migrations; `tollway channel rekey` runs the other. Each channel needing it
# is rewritten in its own transaction, its row read again under a lock
# (PostgreSQL), so a key disabled meanwhile by a serving replica is kept so.


async def seal_plaintext_keys(engine: AsyncEngine, vault: KeyVault) -> int:
    """Encrypt every key still stored in clear (idempotent). The number sealed."""
    if not vault.seals:
        return 0
    return await _rewrite(engine, vault, lambda stored: not is_sealed(stored))


async def rekey(engine: AsyncEngine, vault: KeyVault) -> tuple[int, int]:
    """Seal every key under the current secret: (keys rewritten, keys no
    secret opens, left as they are)."""
    if not vault.seals:
        raise SecretKeyError(
            "no secret to encrypt with: set TOLLWAY_SECRET_KEY (or TOLLWAY_DATA_DIR)"
        )

    def stale(stored: str) -> bool:
        return not vault.opens_with_current(stored) and _readable(vault, stored)

    rewritten = await _rewrite(engine, vault, stale)
    unreadable = sum(
        1 for keys in (await _all_keys(engine)).values() for k in keys
        if not _readable(vault, k["key"])
    )  # fmt: skip
    return rewritten, unreadable


def _readable(vault: KeyVault, stored: str) -> bool:
    try:
        vault.open(stored)
    except KeyUnreadable:
        return False
    return True


async def _all_keys(engine: AsyncEngine) -> dict[int, list[dict[str, Any]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(channels.c.id, channels.c.api_keys))
        return {channel_id: keys or [] for channel_id, keys in rows}


async def _rewrite(engine: AsyncEngine, vault: KeyVault, stale: Callable[[str], bool]) -> int:
    """Seal again the keys ``stale`` picks; the number rewritten. Only the
    channels holding one are locked and written."""
    found = await _all_keys(engine)
    rewritten = 0
    for channel_id in [i for i, keys in found.items() if any(stale(k["key"]) for k in keys)]:
        async with engine.begin() as conn:
            query = select(channels.c.api_keys).where(channels.c.id == channel_id)
            keys = (await conn.execute(query.with_for_update())).scalar() or []
            fresh = [
                {**k, "key": vault.seal(vault.open(k["key"]))} if stale(k["key"]) else k
                for k in keys
            ]
            changed = sum(1 for old, new in zip(keys, fresh, strict=True) if old is not new)
            if changed:
                where = channels.c.id == channel_id
                await conn.execute(update(channels).where(where).values(api_keys=fresh))
                rewritten += changed
    return rewritten
