"""The life of one metered call, the same for every metered endpoint.

    authenticate -> read -> resolve the model -> the billing methods the
    token's mode allows -> shape the request (pure) -> route (the method and
    price group some channel serves, its channels in order) -> bill the hold
    -> hold -> forward through the provider, failing over to the next
    channel (relay/failover.py) -> usage -> bill -> settle and record

``run`` is that lifecycle; an endpoint is a ``Metered`` recipe saying how it
reads its request, what billing reads of it (its shape) and how it forwards
(relay/chat.py, embeddings.py, images.py, videos.py). Each step either
returns what the next needs or raises an ApiError, so a refused call never
reaches the ledger or the upstream. Once held, a ``Call`` must end in
``settle`` or ``release``; a video's hold outlives the request and is handed
to its job, which settles it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request

from tollway.billing.holds import hold_usage
from tollway.billing.modes import methods_in_order, resolve_method
from tollway.billing.pricing import PricingError, UnpricedVariant, bill
from tollway.billing.shapes import CallShape
from tollway.endpoints import MeteredEndpoint, wrong_endpoint
from tollway.errors import (
    ApiError,
    bad_request,
    budget_exceeded,
    database_unavailable,
    forbidden,
    insufficient_quota,
    model_not_found,
)
from tollway.gateway import Gateway
from tollway.keys import new_request_id
from tollway.ledger import InsufficientFunds, LedgerError, UsageRecord, UsageStatus
from tollway.ledger.budgets import next_reset
from tollway.limits import Ticket
from tollway.limits.rules import headers_of, refusal, tokens_of
from tollway.providers import PROVIDERS, Outbound, Provider
from tollway.relay import failover
from tollway.relay.inbound import REQUEST_ID_HEADER, REQUEST_ID_SCOPE, authenticate, read_json
from tollway.routing.costs import upstream_cost
from tollway.routing.router import Route
from tollway.routing.sticky import sticky_key
from tollway.state import Channel, TokenInfo
from tollway.timeutil import utcnow
from tollway.transport import UpstreamAnswer
from tollway.types import MAX_NANO, BillingMethod, Model, Usage, nano_to_usd

log = logging.getLogger(__name__)

BILLING_METHOD_HEADER = "x-tollway-billing-method"
COST_HEADER = "x-tollway-cost-usd"


@dataclass
class Inbound:
    """A metered request as read: its fields, and the body as it goes upstream."""

    payload: dict[str, Any]
    body: bytes
    source: Any = None  # what an endpoint found while reading (a remix's video)
    close: Callable[[], Awaitable[None]] | None = None  # frees uploaded files
    json: bool = True  # the body is the payload as JSON (else the endpoint builds it)
    # A chat call in another protocol than OpenAI's: its name and the body as
    # the client sent it (``payload`` is then its translation to the hub).
    protocol: str = "openai"
    native: dict[str, Any] | None = None
    anthropic_beta: str | None = None  # the client's anthropic-beta header, checked

    def as_sent(self, model: Model) -> None:
        """Name the model by its id, not an alias the upstream may not know."""
        if self.payload.get("model") != model.id:
            self.payload["model"] = model.id
            if self.json:
                self.body = orjson.dumps(self.payload)


Reader = Callable[[Request, Gateway, TokenInfo], Awaitable[Inbound]]
Shaper = Callable[[Inbound, Model], CallShape]
Forwarder = Callable[["Call", Inbound, Request], Awaitable[Any]]
# A recipe's narrowing of a call's candidate channels (an ApiError: none can).
Narrower = Callable[[Inbound, Sequence[Channel]], Sequence[Channel]]


async def read_json_inbound(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    payload, body = await read_json(request, gw.settings.max_body_bytes)
    return Inbound(payload, body)


@dataclass(frozen=True, slots=True)
class Metered:
    """A metered endpoint's recipe for ``run``."""

    endpoint: MeteredEndpoint  # the /v1 route and the model kinds it serves
    upstream: str  # the provider endpoint it forwards to
    shape: Shaper  # what billing reads of the request (pure; 400s for bad values)
    forward: Forwarder
    read: Reader = read_json_inbound
    method: Callable[[TokenInfo, Model], BillingMethod] | None = None  # default: decide
    narrow: Narrower | None = None  # default: every channel serving the call
    outlives_request: bool = False  # a hold handed to a job that settles it later


async def run(metered: Metered, request: Request) -> Any:
    """One metered call, from the request to the answer (settled, or handed on)."""
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    inbound = await metered.read(request, gw, token)
    try:
        model = resolve_model(gw, token, inbound.payload.get("model"), metered.endpoint)
        methods = (metered.method(token, model),) if metered.method else decide(token, model)
        inbound.as_sent(model)
        shape = metered.shape(inbound, model)
        call = await open_call(gw, token, model, methods, metered, inbound, shape)
        request.scope[REQUEST_ID_SCOPE] = call.request_id
        return await metered.forward(call, inbound, request)
    finally:
        if inbound.close is not None:
            await inbound.close()


def resolve_model(gw: Gateway, token: TokenInfo, name: Any, endpoint: MeteredEndpoint) -> Model:
    """The catalog model the call names, if this token may call it on ``endpoint``."""
    if not isinstance(name, str) or not name:
        raise bad_request(
            "You must provide a model parameter.", param="model", code="missing_model"
        )
    model = gw.state.catalog.get(name)
    if model is None:
        close = gw.state.catalog.suggest(name)
        hint = f"Did you mean {', '.join(close)}?" if close else "See GET /v1/models."
        raise model_not_found(name, hint)
    if token.models is not None and not allowed(token, model):
        raise forbidden(
            f"This API key may not call model '{name}'. It is limited to: "
            f"{', '.join(sorted(token.models))}.",
            "model_not_allowed",
        )
    if model.kind not in endpoint.kinds:  # a set membership: this is the hot path
        raise wrong_endpoint(model, endpoint)
    return model


def allowed(token: TokenInfo, model: Model) -> bool:
    if token.models is None:
        return True
    return model.id in token.models or any(a in token.models for a in model.aliases)


def decide(token: TokenInfo, model: Model) -> tuple[BillingMethod, ...]:
    """The methods the token's mode may bill the model by, preferred first."""
    methods = methods_in_order(token.billing_mode, model)
    if not methods:
        refusal = resolve_method(token.billing_mode, model)
        raise forbidden(getattr(refusal, "message", "refused"), "billing_mode_mismatch")
    return methods


@dataclass
class Call:
    """A call that holds money: it must end in settle() or release() (or, for
    a hold that outlives the request, be handed to whatever settles it)."""

    gw: Gateway
    token: TokenInfo
    model: Model
    endpoint: str
    route: Route
    hold_nano: int
    shape: CallShape
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    closed: bool = False
    attempts: int = 0  # channels tried so far (failover.send counts them)
    ticket: Ticket | None = None  # its place in the rate limits, given back at the end
    limit_headers: dict[str, str] | None = None  # x-ratelimit-* for the answer
    method: BillingMethod = field(init=False)  # the route's
    # The channel of the last attempt (the one that served, once one has).
    channel: Channel = field(init=False)
    provider: Provider = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.route.method
        self.channel = self.route.channels[0]
        self.provider = PROVIDERS[self.channel.type]

    def headers(self) -> dict[str, str]:
        headers = {BILLING_METHOD_HEADER: self.method.value, REQUEST_ID_HEADER: self.request_id}
        if self.attempts > 1:
            headers[failover.ATTEMPTS_HEADER] = str(self.attempts)
        if self.limit_headers:
            headers.update(self.limit_headers)
        return headers

    def outbound(self, inbound: Inbound, stream: bool = False) -> Outbound:
        return Outbound(
            self.endpoint,
            inbound.body,
            inbound.payload,
            stream=stream,
            client=inbound.protocol,
            native=inbound.native,
            anthropic_beta=inbound.anthropic_beta,
            held_output_tokens=self.gw.settings.hold_output_tokens,
        )

    def send(self, outbound: Outbound, timeout_s: float | None = None) -> Awaitable[UpstreamAnswer]:
        """Send ``outbound`` on through the call's channels until one serves it."""
        timeout = self.gw.settings.upstream_timeout_s if timeout_s is None else timeout_s
        return failover.send(self, outbound, timeout)

    def record(
        self,
        usage: Usage,
        cost_nano: int,
        unit_prices: dict[str, str],
        status: UsageStatus,
        detail: str | None = None,
        upstream_cost_nano: int | None = None,
    ) -> UsageRecord:
        group = self.route.group
        return UsageRecord(
            request_id=self.request_id,
            account_id=self.token.account_id,
            token_id=self.token.id,
            model=self.model.id,
            endpoint=self.endpoint,
            billing_mode=self.token.billing_mode.value,
            method=self.method.value,
            usage=usage,
            unit_prices=unit_prices,
            cost_nano=cost_nano,
            status=status,
            channel_id=self.channel.id,
            duration_ms=int((time.perf_counter() - self.started) * 1000),
            detail=detail,
            attempts=max(self.attempts, 1),
            group_name=group.name,
            multiplier=group.text,
            upstream_cost_nano=upstream_cost_nano,
        )

    async def settle(
        self, usage: Usage, status: UsageStatus = UsageStatus.OK, detail: str | None = None
    ) -> int:
        """Charge the real cost (once), in full even beyond the hold (then the
        record is flagged); returns it in nano-USD."""
        cost = bill(self.model, self.method, usage, self.route.group.multiplier)
        prices = {line.name: nano_to_usd(line.unit_price_nano) for line in cost.lines}
        self.closed = True
        cost_nano = cost.total_nano
        if cost_nano > MAX_NANO:  # past any balance and a 64-bit column: the most there is
            cost_nano, detail = MAX_NANO, f"reported cost ${nano_to_usd(cost.total_nano)}"
        paid = upstream_cost(self.channel, self.model, self.method, usage)
        if paid is not None:
            paid = min(paid, MAX_NANO)
        record = self.record(usage, cost_nano, prices, status, detail, paid)
        record.exceeded_hold = cost_nano > self.hold_nano
        if self.ticket is not None:
            self.end_limits(tokens_of(usage))
        # No shield needed: the step is queued before the first await, and the
        # writer applies it whether or not this caller is still waiting.
        try:
            settlement = await self.gw.ledger.settle(record)
        except LedgerError:  # not written: the hold stays open until reconciled (no charge)
            log.warning("settlement of %s not written: database unavailable", self.request_id)
            raise database_unavailable() from None
        return settlement.cost_nano

    async def release(self, status: UsageStatus, detail: str) -> None:
        """Give the hold back in full (the upstream failed; nothing to pay)."""
        if self.closed:
            return
        self.closed = True
        if self.ticket is not None:
            self.end_limits(0)
        record = self.record(Usage(items=0), 0, {}, status, detail)
        try:
            await self.gw.ledger.release(record)
        except LedgerError:  # not written: the reconciler gives the hold back later
            log.warning("release of %s not written: database unavailable", self.request_id)

    def hand_over(self) -> None:
        """The hold now belongs to a job that settles or releases it."""
        self.closed = True
        if self.ticket is not None:
            self.end_limits(self.ticket.tokens)

    def end_limits(self, used_tokens: int) -> None:
        """The call no longer runs: its tokens are what it used (off the answer's path)."""
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            self.gw.limits.end(ticket, used_tokens)  # sent, if need be, by its own batch


async def open_call(
    gw: Gateway,
    token: TokenInfo,
    model: Model,
    methods: Sequence[BillingMethod],
    metered: Metered,
    inbound: Inbound,
    shape: CallShape,
) -> Call:
    """Route the call, bill its hold, and hold (or refuse with a 402)."""
    narrow = None
    if metered.narrow is not None:
        narrow = functools.partial(metered.narrow, inbound)
    route = gw.router.route(
        gw.state,
        token,
        model,
        metered.upstream,
        methods,
        sticky_key(inbound.payload, inbound.native),
        narrow,
    )
    amount, usage = _hold_amount(gw, model, route, shape)
    call = Call(gw, token, model, metered.upstream, route, amount, shape)
    if token.limited_by:
        await _admit(call, tokens_of(usage))
    try:
        if metered.outlives_request:
            short = await gw.ledger.hold(
                call.request_id, token.account_id, token.id, amount, outlives_request=True
            )
        elif gw.ledger.hold_now(call.request_id, token.account_id, token.id, amount):
            return call  # the usual case: held in memory against this process's lease
        else:
            short = await _hold_leased(call)
    except LedgerError:  # the database is down or restarting: nothing held
        call.end_limits(0)
        raise database_unavailable() from None
    except BaseException:
        call.end_limits(0)
        raise
    if isinstance(short, InsufficientFunds):
        call.end_limits(0)
        raise _no_funds(short, model, shape)
    return call


async def _admit(call: Call, tokens: int) -> None:
    """Count the call against its token's and account's rate limits (a 429 when over)."""
    admission = await call.gw.limits.admit(call.request_id, call.token.limited_by, tokens)
    if admission.refused_by:
        raise refusal(admission, tokens)
    call.ticket = admission.ticket
    call.limit_headers = headers_of(admission)


async def _hold_leased(call: Call) -> InsufficientFunds | None:
    """Hold through the ledger (the lease grows); a client that leaves meanwhile
    gets the hold given back in the background."""
    gw, token = call.gw, call.token
    held = asyncio.ensure_future(
        gw.ledger.hold(call.request_id, token.account_id, token.id, call.hold_nano, leased=True)
    )
    try:
        return await asyncio.shield(held)
    except asyncio.CancelledError:  # the client left while the hold was being made
        gw.spawn(_give_back(call, held))
        raise


def _hold_amount(gw: Gateway, model: Model, route: Route, shape: CallShape) -> tuple[int, Usage]:
    """The hold: the bill of the most the call can use, and that use."""
    try:
        usage = hold_usage(shape, model, gw.settings.hold_output_tokens)
        hold = bill(model, route.method, usage, route.group.multiplier)
    except UnpricedVariant as exc:  # a size or quality the model's price table lacks
        raise bad_request(str(exc), param=exc.param) from None
    except PricingError as exc:
        raise bad_request(str(exc), param="model") from None
    return hold.total_nano, usage


async def _give_back(call: Call, held: asyncio.Future[InsufficientFunds | None]) -> None:
    """Release a hold whose call was never forwarded."""
    with contextlib.suppress(Exception):
        if await held is None:
            await call.release(
                UsageStatus.CLIENT_DISCONNECTED, "the client left before the call was sent"
            )


def _no_funds(short: InsufficientFunds, model: Model, shape: CallShape) -> ApiError:
    cost = f"${nano_to_usd(short.needed_nano)}, {short.more_than()}"
    if short.budget and short.period is not None:
        now = utcnow()
        resets = next_reset(short.period, now)
        return budget_exceeded(f"This call may cost up to {cost}.", short.period, resets, now)
    return insufficient_quota(shape.short_of_funds(model.id, cost))
