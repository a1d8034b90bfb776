"""The key that signs session cookies.

``TOLLWAY_SECRET_KEY`` when set (required when replicas run on several hosts);
otherwise one is generated at first start and kept in the data directory
(``$TOLLWAY_DATA_DIR/secret_key``, mode 0600), so sessions survive restarts
and are shared by every worker on the host. Without a data directory (tests,
embedded use) a random per-process key is used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

MIN_SECRET_CHARS = 32
FILE_NAME = "secret_key"


class SecretKeyError(ValueError):
    pass


def session_secret(secret_key: str | None, data_dir: Path | None = None) -> str:
    if secret_key:
        if len(secret_key) < MIN_SECRET_CHARS:
            raise SecretKeyError(
                f"TOLLWAY_SECRET_KEY must be at least {MIN_SECRET_CHARS} characters"
            )
        return secret_key
    if data_dir is None:
        return secrets.token_urlsafe(48)
    return _persisted(data_dir / FILE_NAME)


def _persisted(path: Path) -> str:
    """Read the key, or create it; exclusive create, so concurrent workers
    starting together agree on one key."""
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
