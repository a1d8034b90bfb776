"""The order a call tries its candidate channels in.

Highest priority first; within a priority, a weighted random order (each
channel's chance to come first is its share of the tier's weight; weight 0
comes after the others), or cheapest first for the ``cheapest`` strategy.
A sticky channel (where the call's prompt cache lives) comes first; channels
cooling down come last, so they are tried only when nothing else is left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random

from tollway.state import Channel

# A channel's upstream cost for the call (lower first); None: unknown (last).
CostOf = Callable[[Channel], int | None]


def ordered(
    candidates: Sequence[Channel],
    rng: Random,
    *,
    cooling: Callable[[Channel], bool] = lambda channel: False,
    sticky: int | None = None,
    cost_of: CostOf | None = None,
) -> list[Channel]:
    """``candidates`` (highest priority first) in the order to try them."""
    if len(candidates) == 1:
        return list(candidates)
    order: list[Channel] = []
    start = 0
    while start < len(candidates):
        end = start
        priority = candidates[start].priority
        while end < len(candidates) and candidates[end].priority == priority:
            end += 1
        tier = weighted_order(candidates[start:end], rng)
        if cost_of is not None:
            tier = cheapest_first(tier, cost_of)
        order += tier
        start = end
    if sticky is not None:
        order.sort(key=lambda channel: channel.id != sticky)  # stable: the rest keep their order
    order.sort(key=cooling)
    return order


def weighted_order(tier: Sequence[Channel], rng: Random) -> list[Channel]:
    """A random order where each channel comes before the rest with its
    weight's share of chance (Efraimidis-Spirakis keys: u ** (1 / weight))."""
    if len(tier) == 1:
        return list(tier)
    keyed = [(rng.random() ** (1.0 / c.weight) if c.weight > 0 else -rng.random(), c) for c in tier]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [channel for _, channel in keyed]


def cheapest_first(tier: list[Channel], cost_of: CostOf) -> list[Channel]:
    """Cheapest upstream first; equal costs keep their weighted order."""
    costs = {channel.id: cost_of(channel) for channel in tier}
    return sorted(tier, key=lambda c: (costs[c.id] is None, costs[c.id] or 0))
