"""Settings, read once from TOLLWAY_* environment variables into one object.

The app factory takes a Settings; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tollway.billing.holds import DEFAULT_HOLD_OUTPUT_TOKENS

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    admin_key: str | None = None
    allow_hybrid: bool = False
    hold_output_tokens: int = DEFAULT_HOLD_OUTPUT_TOKENS
    max_body_bytes: int = 32 * 1024 * 1024
    upstream_timeout_s: int = 300
    upstream_connect_timeout_s: int = 10
    # How often a replica checks the shared state version (edits by others).
    state_poll_ms: int = 250
    sqlite_synchronous: str = "NORMAL"
    # Web console: the key that signs session cookies. None: generated once and
    # kept in data_dir/secret_key (0600); no data_dir either: random per process.
    secret_key: str | None = None
    data_dir: Path | None = None
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("TOLLWAY_DATA_DIR", "~/.tollway")).expanduser()
        url = env.get("TOLLWAY_DATABASE_URL") or f"sqlite:///{data_dir / 'tollway.db'}"
        return cls(
            database_url=url,
            admin_key=env.get("TOLLWAY_ADMIN_KEY") or None,
            allow_hybrid=env.get("TOLLWAY_ALLOW_HYBRID", "").lower() in TRUE_WORDS,
            hold_output_tokens=_int(env, "TOLLWAY_HOLD_OUTPUT_TOKENS", DEFAULT_HOLD_OUTPUT_TOKENS),
            max_body_bytes=_int(env, "TOLLWAY_MAX_BODY_BYTES", 32 * 1024 * 1024),
            upstream_timeout_s=_int(env, "TOLLWAY_UPSTREAM_TIMEOUT_S", 300),
            state_poll_ms=_int(env, "TOLLWAY_STATE_POLL_MS", 250),
            sqlite_synchronous=env.get("TOLLWAY_SQLITE_SYNCHRONOUS", "NORMAL").upper(),
            secret_key=env.get("TOLLWAY_SECRET_KEY") or None,
            data_dir=data_dir,
            secure_cookies=env.get("TOLLWAY_SECURE_COOKIES", "").lower() in TRUE_WORDS,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < 0:
        raise SettingsError(f"{name} cannot be negative")
    return value
