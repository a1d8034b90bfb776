"""Slows password guessing: a (client, username) pair gets a few attempts per
window, then waits. Per process and in memory; argon2's cost does the rest.

An attempt is counted when it starts, before the (slow) hash: counted only
once it had failed, a burst of concurrent guesses would all pass the check
while the first ones were still hashing. A success clears the count.
"""

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
        self._attempts: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, who: str) -> list[float]:
        cutoff = time.monotonic() - self._window_s
        times = [t for t in self._attempts.get(who, []) if t > cutoff]
        if times:
            self._attempts[who] = times
        else:
            self._attempts.pop(who, None)
        return times

    def attempt(self, who: str) -> bool:
        """Count an attempt about to check a password; False (and not counted)
        once ``who`` has used up the window's attempts. No await in here: the
        check and the count are one step for the event loop."""
        times = self._recent(who)
        if len(times) >= self._max:
            return False
        times.append(time.monotonic())
        self._attempts[who] = times
        self._attempts.move_to_end(who)
        while len(self._attempts) > MAX_TRACKED:
            self._attempts.popitem(last=False)
        return True

    def forget(self, who: str) -> None:
        """The password was right: its earlier failures no longer count."""
        self._attempts.pop(who, None)
