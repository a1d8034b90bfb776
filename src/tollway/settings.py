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
    # Old secrets, still tried to decrypt channel keys while rotating (docs/security.md).
    secret_key_previous: tuple[str, ...] = ()
    data_dir: Path | None = None
    secure_cookies: bool = False
    # Routing across channels: the most channels one call tries; how long a
    # failing channel is skipped; how often auto-disabled channels are probed
    # (0: never); how candidates within a priority are ordered.
    max_attempts: int = 3
    channel_cooldown_s: int = 30
    channel_probe_s: int = 0
    routing_strategy: str = "weighted"
    # Limits (requests, tokens a minute, calls at once) shared across replicas
    # through Redis when set, else counted per process; with Redis down, calls
    # pass ("open") or get a 503 ("closed").
    redis_url: str | None = None
    redis_prefix: str = "tollway"  # keys' prefix: deployments sharing one Redis set their own
    limits_on_redis_down: str = "open"
    # How often each process looks for due alerts and sends them (webhooks).
    alerts_every_s: float = 30.0
    # Logs: "text" (the default) or "json", one object a line.
    log_format: str = "text"

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
            secret_key_previous=tuple(
                s.strip()
                for s in env.get("TOLLWAY_SECRET_KEY_PREVIOUS", "").split(",")
                if s.strip()
            ),
            data_dir=data_dir,
            secure_cookies=env.get("TOLLWAY_SECURE_COOKIES", "").lower() in TRUE_WORDS,
            max_attempts=max(1, _int(env, "TOLLWAY_MAX_ATTEMPTS", 3)),
            channel_cooldown_s=_int(env, "TOLLWAY_CHANNEL_COOLDOWN_S", 30),
            channel_probe_s=_int(env, "TOLLWAY_CHANNEL_PROBE_S", 0),
            routing_strategy=_strategy(env.get("TOLLWAY_ROUTING_STRATEGY", "weighted")),
            redis_url=env.get("TOLLWAY_REDIS_URL") or None,
            redis_prefix=env.get("TOLLWAY_REDIS_PREFIX") or "tollway",
            limits_on_redis_down=_choice(env, "TOLLWAY_LIMITS_ON_REDIS_DOWN", ("open", "closed")),
            log_format=_choice(env, "TOLLWAY_LOG_FORMAT", ("text", "json")),
            alerts_every_s=max(_int(env, "TOLLWAY_ALERTS_EVERY_S", 30), 1),
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


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when unset)."""
    raw = env.get(name, "")
    value = raw.strip().lower() or choices[0]
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


ROUTING_STRATEGIES = ("weighted", "cheapest")


def _strategy(raw: str) -> str:
    value = raw.strip().lower() or "weighted"
    if value not in ROUTING_STRATEGIES:
        raise SettingsError(
            f"TOLLWAY_ROUTING_STRATEGY must be one of {', '.join(ROUTING_STRATEGIES)}, got {raw!r}"
        )
    return value
