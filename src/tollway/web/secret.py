"""The key that signs session cookies.

The server's secret (``tollway.key_vault.stable_secret``, which channel keys
are encrypted under too): ``TOLLWAY_SECRET_KEY`` when set (required when
replicas run on several hosts); otherwise one generated at first start and
kept in the data directory (``$TOLLWAY_DATA_DIR/secret_key``, mode 0600), so
sessions survive restarts and are shared by every worker on the host. Without
a data directory (tests, embedded use) a random per-process key is used.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from tollway.key_vault import MIN_SECRET_CHARS, SecretKeyError, stable_secret

__all__ = ["MIN_SECRET_CHARS", "SecretKeyError", "session_secret"]


def session_secret(secret_key: str | None, data_dir: Path | None = None) -> str:
    return stable_secret(secret_key, data_dir) or secrets.token_urlsafe(48)
