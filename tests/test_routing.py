"""Routing's pure parts: the order candidates are tried in (priority, weights,
cheapest, sticky, cooling last), the breaker with a fake clock, key turns,
sticky routes, and which failures move a call on."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from typing import ClassVar

import pytest

from tollway.routing import Health, StickyRoutes, key_rejected, ordered, retryable
from tollway.routing.failures import reason_of
from tollway.routing.plan import weighted_order
from tollway.routing.router import Router
from tollway.routing.sticky import MAX_KEY_CHARS, sticky_key
from tollway.state import Channel, ChannelKey


def channel(
    id_: int, priority: int = 0, weight: int = 1, keys: int = 1, **extra: object
) -> Channel:
    return Channel(
        id=id_,
        name=f"c{id_}",
        type="openai",
        base_url="http://127.0.0.1:1/v1",
        keys=tuple(ChannelKey(i, f"k{id_}-{i}") for i in range(keys)),
        models=frozenset({"*"}),
        priority=priority,
        weight=weight,
        **extra,  # type: ignore[arg-type]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_weighted_choice_follows_the_weights() -> None:
    rng = random.Random(7)
    tier = [channel(1, weight=1), channel(2, weight=3), channel(3, weight=6)]
    firsts = Counter(weighted_order(tier, rng)[0].id for _ in range(20_000))
    for id_, share in ((1, 0.1), (2, 0.3), (3, 0.6)):
        assert abs(firsts[id_] / 20_000 - share) < 0.02, firsts


def test_weight_zero_comes_after_the_others_in_its_tier() -> None:
    rng = random.Random(1)
    tier = [channel(1, weight=0), channel(2, weight=1), channel(3, weight=1)]
    for _ in range(200):
        assert weighted_order(tier, rng)[-1].id == 1


def test_priorities_fall_through_and_every_channel_comes_once() -> None:
    rng = random.Random(3)
    candidates = [channel(1, 10), channel(2, 10), channel(3, 5), channel(4, 0)]
    for _ in range(100):
        order = ordered(candidates, rng)
        assert sorted(c.id for c in order) == [1, 2, 3, 4]
        assert {c.id for c in order[:2]} == {1, 2}
        assert [c.id for c in order[2:]] == [3, 4]


def test_a_sticky_channel_comes_first_and_cooling_ones_last() -> None:
    rng = random.Random(5)
    candidates = [channel(1, 10), channel(2, 10), channel(3, 0)]
    order = ordered(candidates, rng, sticky=3)
    assert order[0].id == 3
    order = ordered(candidates, rng, cooling=lambda c: c.id == 1)
    assert order[-1].id == 1 and {c.id for c in order[:2]} == {2, 3}


def test_cheapest_first_within_a_priority_only() -> None:
    rng = random.Random(9)
    costs = {1: 50, 2: 10, 3: None, 4: 1}
    candidates = [channel(1, 1), channel(2, 1), channel(3, 1), channel(4, 0)]
    order = ordered(candidates, rng, cost_of=lambda c: costs[c.id])
    assert [c.id for c in order] == [2, 1, 3, 4]  # unknown cost last in its tier


def test_breaker_trips_after_failures_in_a_row_and_a_trial_decides() -> None:
    clock = Clock()
    health = Health(cooldown_s=30, clock=clock)
    for _ in range(2):
        health.failure(1, 0.01)
    assert not health.cooling(1)
    health.failure(1, 0.01)
    assert health.cooling(1)
    clock.now += 29
    assert health.cooling(1)
    clock.now += 2  # the cooldown is over: one trial
    assert not health.cooling(1)
    health.begin(1)
    assert health.cooling(1), "while the trial is out, others are preferred"
    health.failure(1, 0.01)  # the trial failed: another cooldown
    assert health.cooling(1)
    clock.now += 31
    health.begin(1)
    health.success(1, 0.02)
    assert not health.cooling(1)
    assert health.view(1)["breaker"] == "closed"


def test_breaker_trips_on_a_high_error_rate() -> None:
    clock = Clock()
    health = Health(cooldown_s=10, clock=clock)
    for ok in (True, False, True, False, False, True, False):
        (health.success if ok else health.failure)(2, 0.1)
        clock.now += 1
    assert health.cooling(2)
    view = health.view(2)
    assert view["recent_calls"] == 7 and view["error_rate"] == round(4 / 7, 3)
    assert view["latency_p50_ms"] == 100.0


def test_a_dead_key_trips_at_once_and_a_test_forgets() -> None:
    health = Health(cooldown_s=30, clock=Clock())
    health.failure(3, 0.0, trip=True)
    assert health.cooling(3)
    health.forget(3)
    assert not health.cooling(3)


def test_keys_turn_round_robin_or_at_random() -> None:
    router = Router(rng=random.Random(2))
    three = channel(1, keys=3)
    assert [router.key_for(three).index for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    randomly = channel(2, keys=3, key_strategy="random")
    assert {router.key_for(randomly).index for _ in range(200)} == {0, 1, 2}


def test_sticky_routes_expire_and_stay_bounded() -> None:
    clock = Clock()
    routes = StickyRoutes(max_routes=3, ttl_s=60, clock=clock)
    for i in range(5):
        routes.put(("m", "default", f"user{i}"), i)
    assert len(routes) == 3 and routes.get(("m", "default", "user0")) is None
    assert routes.get(("m", "default", "user4")) == 4
    clock.now += 61
    assert routes.get(("m", "default", "user4")) is None


def test_sticky_key_reads_the_cache_key_user_or_anthropic_user_id() -> None:
    assert sticky_key({"prompt_cache_key": "p", "user": "u"}, None) == "p"
    assert sticky_key({"user": "u"}, None) == "u"
    assert sticky_key({}, {"metadata": {"user_id": "a"}}) == "a"
    assert sticky_key({"user": 5}, {"metadata": "x"}) is None
    assert len(sticky_key({"user": "x" * 10_000}, None) or "") <= MAX_KEY_CHARS


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (401, True),
        (403, True),
        (408, True),
        (429, True),
        (500, True),
        (529, True),
        (400, False),
        (404, False),
        (413, False),
        (422, False),
    ],
)
def test_which_statuses_move_a_call_on(status: int, retried: bool) -> None:
    assert retryable(status) is retried


def test_dead_keys_are_known_by_status_or_by_the_upstreams_words() -> None:
    assert key_rejected(401, b"{}")
    anthropic = b'{"type":"error","error":{"type":"invalid_request_error",'
    anthropic += b'"message":"Your credit balance is too low to access the Anthropic API."}}'
    assert key_rejected(400, anthropic)
    openai = b'{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}'
    assert key_rejected(429, openai)
    gemini = b'[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key."}}]'
    assert key_rejected(400, gemini)
    assert not key_rejected(429, b'{"error":{"message":"Rate limit reached"}}')
    assert not key_rejected(400, b'{"error":{"message":"max_tokens is too large"}}')
    assert reason_of(400, gemini) == "HTTP 400: API key not valid. Please pass a valid API key."
    assert reason_of(502, b"<html>bad gateway</html>") == "HTTP 502: <html>bad gateway</html>"


def test_group_multiplier_is_a_fraction_of_the_decimal_written() -> None:
    from tollway.state import multiplier_of

    assert multiplier_of("0.8") == Fraction(4, 5)
    assert multiplier_of("1.333333333") == Fraction(1333333333, 10**9)


def test_auto_takes_the_first_group_with_a_channel_not_cooling() -> None:
    from tollway.routing.router import Router
    from tollway.state import Group, TokenInfo
    from tollway.types import BillingMethod, BillingMode, Model, ModelKind

    vip, default = channel(1, groups=frozenset({"vip"})), channel(2)
    by_group = {"vip": (vip,), "default": (default,)}

    class Groups:
        groups: ClassVar[dict[str, Group]] = {
            "vip": Group("vip", Fraction(9, 10), "0.9"),
            "default": Group("default", Fraction(1), "1"),
        }
        auto_groups = ("vip", "default")

        def candidates(
            self, model: object, endpoint: str, method: object, group: str
        ) -> tuple[Channel, ...]:
            return by_group[group]

    token = TokenInfo(1, 1, "t", BillingMode.PAY_PER_USE, None, None, None, True, True,
                      group="auto", account_groups=frozenset({"vip", "default"}))  # fmt: skip
    model = Model("m", ModelKind.TEXT, "openai")
    clock = Clock()
    router = Router(health=Health(30, clock=clock))
    state: object = Groups()
    route = router.route(state, token, model, "chat/completions", (BillingMethod.PER_USE,))  # type: ignore[arg-type]
    assert route.group.name == "vip" and route.channels == [vip]
    for _ in range(3):
        router.health.failure(vip.id, 0.1)
    route = router.route(state, token, model, "chat/completions", (BillingMethod.PER_USE,))  # type: ignore[arg-type]
    assert route.group.name == "default" and route.channels == [default]
    clock.now += 31  # the vip channel's cooldown is over: its trial may come
    route = router.route(state, token, model, "chat/completions", (BillingMethod.PER_USE,))  # type: ignore[arg-type]
    assert route.group.name == "vip"


def test_a_channels_cost_by_its_multiplier_or_its_own_prices() -> None:
    from tollway.catalog import load_catalog_files
    from tollway.routing.costs import upstream_cost
    from tollway.state import with_prices
    from tollway.types import BillingMethod, Usage

    model = next(m for m in load_catalog_files() if m.id == "gpt-4o-mini")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert upstream_cost(channel(1), model, BillingMethod.PER_USE, usage) is None
    half = channel(2, cost_multiplier=Fraction(1, 2))
    list_price = model.per_use.input_mtok + model.per_use.output_mtok  # type: ignore[union-attr]
    assert upstream_cost(half, model, BillingMethod.PER_USE, usage) == list_price // 2
    own = with_prices(model, {"per_use": {"input_mtok": "0.1", "output_mtok": "0.2"},
                              "per_call": {"price": "0.001"}})  # fmt: skip
    priced = channel(3, cost_models={model.id: own})
    assert upstream_cost(priced, model, BillingMethod.PER_USE, usage) == 300_000_000
    one_call = Usage(items=2)
    assert upstream_cost(priced, model, BillingMethod.PER_CALL, one_call) == 2_000_000
    per_use_only = channel(4, cost_models={model.id: with_prices(model, {"per_use": {
        "input_mtok": "1", "output_mtok": "1"}})})  # fmt: skip
    assert upstream_cost(per_use_only, model, BillingMethod.PER_CALL, one_call) is None
