"""The router one gateway process holds: for each call, the price group it is
billed in and the channels it may try, in order; keys turned round; health
and sticky routes learned from the calls it made."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tollway.errors import ApiError, forbidden
from tollway.routing.costs import reference_cost
from tollway.routing.health import Health
from tollway.routing.plan import CostOf, ordered
from tollway.routing.sticky import StickyRoutes
from tollway.state import AUTO_GROUP, Channel, ChannelKey, Group, State, TokenInfo
from tollway.types import BillingMethod, Model

# A recipe's narrowing of the candidates (a remix: where its source lives);
# an ApiError says why none can serve the call.
Narrowing = Callable[[Sequence[Channel]], Sequence[Channel]]


@dataclass(slots=True)
class Route:
    """Where a call may go: its method, its price group, and the channels to
    try in order."""

    method: BillingMethod
    group: Group
    channels: list[Channel]
    sticky: tuple[str, str, str] | None = None


def no_channel(model: Model) -> ApiError:
    return ApiError(
        503,
        f"No upstream channel serves model '{model.id}' right now.",
        "model_not_available",
        "upstream_error",
    )


class Router:
    def __init__(
        self,
        cooldown_s: float = 30,
        strategy: str = "weighted",
        rng: random.Random | None = None,
        health: Health | None = None,
        sticky: StickyRoutes | None = None,
    ) -> None:
        self.rng = rng or random.Random()
        self.health = health or Health(cooldown_s)
        self.sticky = sticky or StickyRoutes()
        self.strategy = strategy
        self._turns: dict[int, itertools.count[int]] = {}
        self.errors_noted: dict[int, float] = {}  # when each channel's last error was written

    def route(
        self,
        state: State,
        token: TokenInfo,
        model: Model,
        endpoint: str,
        methods: Sequence[BillingMethod],
        sticky_key: str | None = None,
        narrow: Narrowing | None = None,
    ) -> Route:
        """The first of ``methods`` (preferred first) some channel serves in
        the token's group (for ``auto``: the first group of the operator's
        list that has a channel), with its channels in the order to try."""
        best: Route | None = None  # the first that serves, all its channels cooling
        refused: ApiError | None = None  # what narrowing said when it left none
        for group in self.groups_of(state, token):
            for method in methods:
                candidates: Sequence[Channel] = state.candidates(
                    model, endpoint, method, group.name
                )
                if narrow is not None and candidates:
                    try:
                        candidates = narrow(candidates)
                    except ApiError as exc:
                        refused, candidates = exc, ()
                if not candidates:
                    continue
                route = Route(method, group, list(candidates))
                if len(candidates) == 1:  # the usual case: nothing to order
                    if not self.health.cooling(candidates[0].id):
                        return route
                elif not self._all_cooling(candidates):
                    return self._ordered(route, model, sticky_key)
                best = best or route
        if best is not None:
            return self._ordered(best, model, sticky_key)
        raise refused or no_channel(model)

    def groups_of(self, state: State, token: TokenInfo) -> list[Group]:
        """The token's price group, or for ``auto`` the list it walks."""
        if token.group == AUTO_GROUP:
            names = [g for g in state.auto_groups if g in token.account_groups]
            if not names:
                raise forbidden(
                    "This token's group is 'auto', but no group of its account is in the "
                    "operator's auto list.",
                    "group_not_allowed",
                )
            return [state.groups[name] for name in names if name in state.groups]
        group = state.groups.get(token.group)
        if group is None or token.group not in token.account_groups:
            raise forbidden(
                f"This token's price group '{token.group}' is not one its account may use.",
                "group_not_allowed",
            )
        return [group]

    def _all_cooling(self, candidates: Sequence[Channel]) -> bool:
        cooling = self.health.cooling
        return all(cooling(c.id) for c in candidates)

    def _ordered(self, route: Route, model: Model, sticky_key: str | None) -> Route:
        if len(route.channels) > 1:
            sticky = None
            if sticky_key is not None:
                route.sticky = (model.id, route.group.name, sticky_key)
                sticky = self.sticky.get(route.sticky)
            route.channels = ordered(
                route.channels,
                self.rng,
                cooling=lambda c: self.health.cooling(c.id),
                sticky=sticky,
                cost_of=self._cost_of(model, route.method),
            )
        return route

    def _cost_of(self, model: Model, method: BillingMethod) -> CostOf | None:
        if self.strategy != "cheapest":
            return None
        return lambda channel: reference_cost(channel, model, method)

    def key_for(self, channel: Channel) -> ChannelKey:
        """The key to call the channel with: its keys in turn, or at random."""
        keys = channel.keys
        if len(keys) == 1:
            return keys[0]
        if channel.key_strategy == "random":
            return self.rng.choice(keys)
        turns = self._turns.get(channel.id)
        if turns is None:
            turns = self._turns[channel.id] = itertools.count()
        return keys[next(turns) % len(keys)]

    def served(self, route: Route, channel: Channel) -> None:
        """The call was served by ``channel``: its prompt cache lives there now."""
        if route.sticky is not None:
            self.sticky.put(route.sticky, channel.id)
