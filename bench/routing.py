"""Microbenchmark of routing's own work per call: ``Router.route`` (the
candidates, the group, the order) and the key pick, for 1, 3 and 10
candidate channels, with and without a sticky key; in-process, no I/O.

    python bench/routing.py [--calls 200000]

Prints µs per call (best of 5 runs of ``--calls``); the one-channel case is
what a deployment with one channel per model pays on every call.
"""

from __future__ import annotations

import argparse
import random
import time
from fractions import Fraction
from typing import Any

from tollway.catalog import load_catalog_files
from tollway.routing import Router
from tollway.state import DEFAULT_GROUP, Channel, ChannelKey, Group, TokenInfo
from tollway.types import BillingMethod, BillingMode

MODEL = "gpt-4o-mini"


class FakeState:
    """What the router reads of ``State``: candidates and groups."""

    def __init__(self, channels: tuple[Channel, ...]) -> None:
        self._channels = channels
        self.groups = {DEFAULT_GROUP: Group(DEFAULT_GROUP, Fraction(1), "1")}
        self.auto_groups: tuple[str, ...] = ()

    def candidates(self, *_: Any) -> tuple[Channel, ...]:
        return self._channels


def channels(count: int) -> tuple[Channel, ...]:
    return tuple(
        Channel(i, f"c{i}", "openai", "http://x/v1", (ChannelKey(0, "k"), ChannelKey(1, "k2")),
                frozenset({"*"}), priority=i % 2, weight=1 + i % 3)
        for i in range(count)
    )  # fmt: skip


def per_call_us(count: int, sticky: str | None, calls: int) -> float:
    model = next(m for m in load_catalog_files() if m.id == MODEL)
    token = TokenInfo(1, 1, "t", BillingMode.PAY_PER_USE_PRIORITY, None, None, None, True, True)
    state: Any = FakeState(channels(count))
    router = Router(rng=random.Random(1))
    methods = (BillingMethod.PER_USE,)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            route = router.route(state, token, model, "chat/completions", methods, sticky)
            router.key_for(route.channels[0])
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    print(f"{'candidates':>10} {'sticky':>7} {'µs/call':>8}")
    for count in (1, 3, 10):
        for sticky in (None, "user-1"):
            print(f"{count:>10} {'yes' if sticky else 'no':>7} "
                  f"{per_call_us(count, sticky, args.calls):8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
