"""Slows password guessing: after a few failures, a (client, username) pair
waits. Per process and in memory; argon2's cost does the rest."""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_FAILURES = 10
WINDOW_S = 15 * 60
MAX_TRACKED = 10_000


class Throttle:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, who: str) -> list[float]:
        cutoff = time.monotonic() - self._window_s
        times = [t for t in self._failures.get(who, []) if t > cutoff]
        if times:
            self._failures[who] = times
        else:
            self._failures.pop(who, None)
        return times

    def blocked(self, who: str) -> bool:
        return len(self._recent(who)) >= self._max

    def failed(self, who: str) -> None:
        times = self._recent(who)
        times.append(time.monotonic())
        self._failures[who] = times
        self._failures.move_to_end(who)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def forget(self, who: str) -> None:
        self._failures.pop(who, None)
