"""The Redis rate limiter's own cost: admit + finish pairs in a loop against a
window already busy for a minute, on a real Redis (database 13 by default).

    PYTHONPATH=<tree>/src python bench/limits.py [--calls 3000] [--redis redis://127.0.0.1:6379/13]

Prints the wall time per pair and this process's CPU per pair (the client's
share: redis-py's connection, packing and parsing).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

from tollway.limits import Limits, Subject
from tollway.limits.shared import SharedLimiter

START_MS = 1_000_000_000_000


async def measure(url: str, calls: int) -> tuple[float, float]:
    limiter = SharedLimiter(url, prefix="bench-" + secrets.token_hex(3))
    subject = (Subject("token", 1, Limits(rpm=10**9, tpm=10**9, concurrent=10**6)),)
    try:
        for i in range(60):  # a minute of busy seconds first
            limiter.now_ms = START_MS + i * 1000
            await _pair(limiter, subject, f"w{i}")
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            limiter.now_ms = START_MS + 60_000 + i * 20  # 50 calls a second
            await _pair(limiter, subject, f"r{i}")
        return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls
    finally:
        await limiter.close()


async def _pair(limiter: SharedLimiter, subject: tuple[Subject, ...], request_id: str) -> None:
    admission = await limiter.admit(request_id, subject, 100)
    assert admission.ticket is not None, admission
    await limiter.finish(admission.ticket, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    wall, cpu = asyncio.run(measure(args.redis, args.calls))
    print(f"admit + finish: {wall * 1e6:.0f} µs wall, {cpu * 1e6:.0f} µs of this process's CPU")


if __name__ == "__main__":
    main()
