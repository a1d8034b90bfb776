"""Progress lines on stdout, each stamped with the seconds since the run began."""

from __future__ import annotations

import time
from collections.abc import Callable

Log = Callable[[str], None]
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}")
