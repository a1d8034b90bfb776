"""Each channel's recent health, as this process saw it, and its breaker.

A channel whose calls keep failing (``TRIP_AFTER`` failures in a row, or
more than half of at least ``MIN_CALLS`` calls within ``WINDOW_S``) cools
down for ``cooldown_s``: routing skips it while other channels remain. When
the cooldown is over, one trial call decides: a success closes the breaker,
a failure starts another cooldown. The clock is injected (tests use a fake).

Health is per process: each replica learns from its own calls (what every
replica must see, a dead key, is written down by ``status.py``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 60.0
MAX_SAMPLES = 128
TRIP_AFTER = 3  # failures in a row
MIN_CALLS = 5
TRIP_RATE = 0.5


@dataclass(slots=True)
class Sample:
    at: float
    ok: bool
    latency_s: float


@dataclass(slots=True)
class ChannelHealth:
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    failures_in_row: int = 0
    open: bool = False  # the breaker tripped: cooling until ``until``, then one trial
    until: float = 0.0
    trial_out: bool = False


class Health:
    def __init__(
        self,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_cooldown: Callable[[int], None] | None = None,
    ) -> None:
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.on_cooldown = on_cooldown  # told each time a channel starts a cooldown
        self._channels: dict[int, ChannelHealth] = {}

    def _of(self, channel_id: int) -> ChannelHealth:
        found = self._channels.get(channel_id)
        if found is None:
            found = self._channels[channel_id] = ChannelHealth()
        return found

    def cooling(self, channel_id: int) -> bool:
        """Whether routing should skip the channel while others remain."""
        health = self._channels.get(channel_id)
        if health is None or not health.open:
            return False
        return health.trial_out or self.clock() < health.until

    def begin(self, channel_id: int) -> None:
        """A call is about to try the channel: past its cooldown, it is the trial."""
        health = self._channels.get(channel_id)
        if health is not None and health.open and self.clock() >= health.until:
            health.trial_out = True

    def success(self, channel_id: int, latency_s: float) -> None:
        health = self._of(channel_id)
        health.samples.append(Sample(self.clock(), True, latency_s))
        health.failures_in_row = 0
        health.open = health.trial_out = False

    def failure(self, channel_id: int, latency_s: float, trip: bool = False) -> None:
        """An attempt failed; ``trip`` cools the channel at once (a dead key)."""
        health = self._of(channel_id)
        now = self.clock()
        health.samples.append(Sample(now, False, latency_s))
        health.failures_in_row += 1
        if trip or health.open or self._tripped(health, now):
            health.open, health.trial_out = True, False
            health.until = now + self.cooldown_s
            if self.on_cooldown is not None:
                self.on_cooldown(channel_id)

    def _tripped(self, health: ChannelHealth, now: float) -> bool:
        if health.failures_in_row >= TRIP_AFTER:
            return True
        recent = [s for s in health.samples if now - s.at <= WINDOW_S]
        failed = sum(1 for s in recent if not s.ok)
        return len(recent) >= MIN_CALLS and failed > TRIP_RATE * len(recent)

    def forget(self, channel_id: int) -> None:
        """A passing test or an edit: the channel starts afresh."""
        self._channels.pop(channel_id, None)

    def view(self, channel_id: int) -> dict[str, Any]:
        """Recent calls, their error rate and p50 latency, and any cooldown left."""
        health = self._channels.get(channel_id)
        now = self.clock()
        recent = [s for s in health.samples if now - s.at <= WINDOW_S] if health else []
        latencies = sorted(s.latency_s for s in recent)
        failed = sum(1 for s in recent if not s.ok)
        cooling_s = max(health.until - now, 0.0) if health is not None and health.open else 0.0
        return {
            "recent_calls": len(recent),
            "error_rate": round(failed / len(recent), 3) if recent else 0.0,
            "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if recent else None,
            "cooling_down_s": round(cooling_s, 1),
            "breaker": "open" if health is not None and health.open else "closed",
        }
