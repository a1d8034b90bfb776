"""The billing-mode advisor: replay a token's recent calls under each billing
mode at today's prices, and recommend the mode that fits how the token is used.
Today's prices are the token's: its price group's multiplier applies (for a
token of group ``auto``, that of the group each call went to).

``advise_token`` reads the token's usage records; the rest is pure: usage
records and a model lookup in, outcomes and advice out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tollway.billing.modes import MODE_INFO, MODE_ORDER, Refusal, resolve_method
from tollway.billing.pricing import ONE, PricingError
from tollway.errors import ApiError
from tollway.gateway import Gateway
from tollway.manage.groups import token_info
from tollway.manage.models import call_cost_nano
from tollway.manage.tokens import get_token
from tollway.manage.usage import MAX_PAGE, cost_nano, list_usage
from tollway.state import AUTO_GROUP, Group, TokenInfo
from tollway.types import (
    TOKEN_CLASSES,
    UNIT_CLASSES,
    BillingMethod,
    BillingMode,
    Model,
    ModelKind,
    Usage,
    nano_to_usd,
)

MEDIA_KINDS = frozenset({ModelKind.IMAGE, ModelKind.VIDEO})
# How many of a token's latest calls are replayed: enough to show its use,
# few enough to replay while the page loads.
MAX_CALLS = 5 * MAX_PAGE
Lookup = Callable[[str], Model | None]
# What a usage record's call is priced at, x the catalog: its group's multiplier.
MultiplierOf = Callable[[dict[str, Any]], Fraction]


def _at_catalog_prices(_: dict[str, Any]) -> Fraction:
    return ONE


@dataclass
class Outcome:
    mode: BillingMode
    cost_nano: int = 0
    per_use_calls: int = 0
    per_call_calls: int = 0
    refused_calls: int = 0
    refused_models: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return MODE_INFO[self.mode].name


@dataclass(frozen=True)
class Profile:
    calls: int
    text_calls: int  # text, multimodal, embedding, audio models
    media_calls: int  # image and video models
    dual_priced_calls: int  # models sold both per use and per call
    unknown_models: tuple[str, ...]


@dataclass(frozen=True)
class Advice:
    mode: BillingMode
    headline: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """A token's recent calls replayed, and the advice drawn from them."""

    token: dict[str, Any]
    calls: int
    first_at: str | None  # the oldest replayed call's time (ISO 8601)
    profile: Profile
    billed_nano: int  # what the calls were actually billed
    outcomes: list[Outcome]
    advice: Advice


async def advise_token(gw: Gateway, account_id: int, token_id: int) -> Report:
    """Replay the account's token's latest calls (404 unless the token is theirs)."""
    token = await get_token(gw, account_id, token_id)
    records = await recent_calls(gw, account_id, token_id)
    lookup = gw.state.catalog.get
    outcomes = replay(records, lookup, multipliers(gw, await token_info(gw, token)))
    shape = profile(records, lookup)
    return Report(
        token=token,
        calls=len(records),
        first_at=records[-1]["created_at"] if records else None,
        profile=shape,
        billed_nano=sum(cost_nano(r) for r in records),
        outcomes=outcomes,
        advice=advise(shape, outcomes),
    )


async def recent_calls(gw: Gateway, account_id: int, token_id: int) -> list[dict[str, Any]]:
    """The token's latest billed calls, newest first, at most MAX_CALLS read."""
    records: list[dict[str, Any]] = []
    cursor: int | None = None
    while len(records) < MAX_CALLS:
        page = await list_usage(gw, account_id, token_id=token_id, limit=MAX_PAGE, cursor=cursor)
        records.extend(page["data"])
        if not page["next_cursor"]:
            break
        cursor = int(page["next_cursor"])
    return billed(records)


def usage_of(record: dict[str, Any]) -> Usage:
    usage = Usage(items=max(1, int(record["items"] or 0)))
    for name in TOKEN_CLASSES:
        setattr(usage, name, int(record["tokens"][name] or 0))
    for name in UNIT_CLASSES:  # speech's characters, transcription's audio ms
        setattr(usage, name, int(record.get(name) or 0))
    # A per-call line is named "<unit>:<size>/<quality>" when a price table
    # was used, and a video's record says "<seconds> s at <size>".
    for line in record.get("unit_prices_usd") or {}:
        if ":" in line:
            usage.variant = line.split(":", 1)[1]
    seconds = re.search(r"(\d+) s at ", record.get("detail") or "")
    if seconds:
        usage.seconds = int(seconds.group(1))
    return usage


def billed(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls that reached a model (failed upstream calls cost nothing anywhere)."""
    return [r for r in records if r["status"] != "upstream_error"]


def multipliers(gw: Gateway, token: TokenInfo) -> MultiplierOf:
    """Today's multiplier of the group each of the token's calls is priced in:
    the token's group; for ``auto``, the group the call went to, else the
    first of the list the token walks."""
    state = gw.state
    try:
        walked: list[Group] = gw.router.groups_of(state, token)
    except ApiError:  # its group is not its account's now: its own group's price
        walked = [state.groups[token.group]] if token.group in state.groups else []
    fallback = walked[0].multiplier if walked else ONE

    def multiplier_of(record: dict[str, Any]) -> Fraction:
        went_to = state.groups.get(record.get("group") or "")
        if token.group == AUTO_GROUP and went_to is not None:
            return went_to.multiplier
        return fallback

    return multiplier_of


def replay(
    records: list[dict[str, Any]],
    lookup: Lookup,
    multiplier_of: MultiplierOf = _at_catalog_prices,
) -> list[Outcome]:
    outcomes = [Outcome(mode) for mode in MODE_ORDER]
    for record in records:
        model = lookup(record["model"])
        if model is None:
            continue
        usage = usage_of(record)
        multiplier = multiplier_of(record)
        for outcome in outcomes:
            _replay_one(outcome, model, usage, multiplier)
    return outcomes


def _replay_one(outcome: Outcome, model: Model, usage: Usage, multiplier: Fraction) -> None:
    decision = resolve_method(outcome.mode, model)
    if isinstance(decision, Refusal):
        outcome.refused_calls += 1
        outcome.refused_models[model.id] += 1
        return
    try:
        outcome.cost_nano += call_cost_nano(model, decision, usage, multiplier)
    except PricingError:
        outcome.refused_calls += 1
        outcome.refused_models[model.id] += 1
        return
    if decision is BillingMethod.PER_USE:
        outcome.per_use_calls += 1
    else:
        outcome.per_call_calls += 1


def profile(records: list[dict[str, Any]], lookup: Lookup) -> Profile:
    text = media = dual = 0
    unknown: list[str] = []
    for record in records:
        model = lookup(record["model"])
        if model is None:
            unknown.append(record["model"])
            continue
        if model.kind in MEDIA_KINDS:
            media += 1
        else:
            text += 1
        if len(model.methods) == 2:
            dual += 1
    return Profile(text + media, text, media, dual, tuple(sorted(set(unknown))))


def _scenario(p: Profile) -> tuple[str, BillingMode]:
    """Which mode suits how the token is used: text only, media only, or mainly one."""
    if p.calls == 0:
        return "No calls yet → Pay-per-Use Priority (the default; reaches every model)", (
            BillingMode.PAY_PER_USE_PRIORITY
        )
    if p.media_calls == 0:
        return "Pure text → Pay-per-Use Priority or Pay-per-Use (same effect)", (
            BillingMode.PAY_PER_USE_PRIORITY
        )
    if p.text_calls == 0:
        return "Pure image/video → Pay-per-Call", BillingMode.PAY_PER_CALL
    if p.media_calls > p.text_calls:
        return "Mainly images/videos, occasionally text → Pay-per-Call Priority", (
            BillingMode.PAY_PER_CALL_PRIORITY
        )
    return "Mainly text, occasionally images/videos → Pay-per-Use Priority", (
        BillingMode.PAY_PER_USE_PRIORITY
    )


def advise(p: Profile, outcomes: list[Outcome]) -> Advice:
    headline, mode = _scenario(p)
    by_mode = {o.mode: o for o in outcomes}
    reasons: list[str] = []
    if by_mode[mode].refused_calls:
        fallback = BillingMode.PAY_PER_CALL_PRIORITY
        if mode is BillingMode.PAY_PER_CALL_PRIORITY or by_mode[fallback].refused_calls:
            fallback = BillingMode.PAY_PER_USE_PRIORITY
        reasons.append(
            f"{MODE_INFO[mode].name} would have refused {by_mode[mode].refused_calls} of these "
            f"calls, so {MODE_INFO[fallback].name} instead: it reaches every model."
        )
        mode = fallback
    chosen = by_mode[mode]
    if mode is BillingMode.PAY_PER_CALL_PRIORITY:
        other = by_mode[BillingMode.PAY_PER_USE_PRIORITY]
        if other.cost_nano <= chosen.cost_nano:
            mode, chosen = other.mode, other
            reasons.append(
                "Pay-per-Use Priority would not have cost more here, and it is the recommended "
                "mode unless you need fixed per-call costs."
            )
    reasons.extend(_cost_notes(chosen, outcomes))
    return Advice(mode, headline, tuple(reasons))


def _cost_notes(chosen: Outcome, outcomes: list[Outcome]) -> list[str]:
    notes = []
    working = [o for o in outcomes if not o.refused_calls and MODE_INFO[o.mode].applicable]
    cheaper = [o for o in working if o.cost_nano < chosen.cost_nano]
    if cheaper:
        best = min(cheaper, key=lambda o: o.cost_nano)
        notes.append(
            f"{best.name} would have cost ${nano_to_usd(chosen.cost_nano - best.cost_nano)} "
            "less for these calls: it bills the models sold both ways by the other method."
        )
    if not chosen.refused_calls:
        notes.append(f"{chosen.name} would have served every one of these calls.")
    return notes
