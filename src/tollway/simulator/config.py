"""The simulator's settings, changeable at runtime through ``POST /_sim/config``.

Floats are fine here: these are probabilities and delays, never money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A settings change that names an unknown field or carries a bad value."""


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated provider behaves.

    The running simulator reads this object live on every request, so changing
    an attribute in-process (or through ``POST /_sim/config``) takes effect on
    the next request without a restart.
    """

    api_key: str | None = None
    latency_ms: int = 0
    chunk_delay_ms: int = 0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    # Streams answered 200 whose connection is cut before their first byte.
    empty_stream_rate: float = 0.0
    seed: int = 0
    default_completion_tokens: int = 16
    embedding_dimensions: int = 8
    report_usage: bool = True
    # Video jobs (``videos``): time queued, then time rendering, then done;
    # each new job fails with this probability (drawn from the seeded RNG).
    video_queue_ms: int = 50
    video_render_ms: int = 200
    video_failure_rate: float = 0.0

    def __post_init__(self) -> None:
        # Validate (and normalise) what the constructor got, so a bad CLI flag
        # fails at start, not on the first request.
        self.update(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a validated set of changes in place (all or nothing)."""
        for name, value in validate_changes(changes).items():
            setattr(self, name, value)


# Lower bound of each integer field (None: any integer).
_INT_FIELDS: dict[str, int | None] = {
    "latency_ms": 0,
    "chunk_delay_ms": 0,
    "seed": None,
    "default_completion_tokens": 0,
    "embedding_dimensions": 1,
    "video_queue_ms": 0,
    "video_render_ms": 0,
}
_RATE_FIELDS = frozenset({"error_rate", "drop_rate", "empty_stream_rate", "video_failure_rate"})
FIELD_NAMES = frozenset(f.name for f in fields(SimulatorConfig))


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a mapping of field -> value; return it normalised or raise ConfigError."""
    unknown = set(changes) - FIELD_NAMES
    if unknown:
        raise ConfigError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
    return {name: _check(name, value) for name, value in changes.items()}


def _check(name: str, value: Any) -> Any:
    if name == "api_key":
        if value is not None and not isinstance(value, str):
            raise ConfigError("api_key must be a string or null")
        return value or None  # an empty key means "no key required"
    if name == "report_usage":
        if not isinstance(value, bool):
            raise ConfigError("report_usage must be true or false")
        return value
    if name in _RATE_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{name} must be a number between 0 and 1")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer")
    low = _INT_FIELDS[name]
    if low is not None and value < low:
        raise ConfigError(f"{name} must be at least {low}")
    return value
