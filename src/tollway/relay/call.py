"""One metered call, from the request to the settled charge.

The relay endpoints run the same steps: authenticate, read the body, resolve
the model and the billing method, hold, forward, settle (or release). Each
step either returns what the next needs or raises an ApiError, so a refused
call never reaches the ledger or the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from tollway.billing.holds import CallShape, hold_nano
from tollway.billing.modes import Refusal, resolve_method
from tollway.billing.pricing import price_call
from tollway.errors import (
    ApiError,
    bad_request,
    forbidden,
    insufficient_quota,
    invalid_api_key,
    model_not_found,
    request_too_large,
    upstream_error,
)
from tollway.gateway import Gateway
from tollway.keys import new_request_id
from tollway.ledger import InsufficientFunds, UsageRecord
from tollway.providers import PROVIDERS
from tollway.relay.endpoints import MeteredEndpoint, wrong_endpoint
from tollway.state import Channel, TokenInfo
from tollway.types import (
    MAX_NANO,
    BillingMethod,
    Model,
    Provider,
    Usage,
    nano_to_usd,
    parse_count,
)

BILLING_METHOD_HEADER = "x-tollway-billing-method"
COST_HEADER = "x-tollway-cost-usd"
REQUEST_ID_HEADER = "x-request-id"


async def authenticate(gw: Gateway, request: Request) -> TokenInfo:
    header = request.headers.get("authorization")
    if header is None or header[:7].lower() != "bearer ":
        raise invalid_api_key(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-...'."
        )
    token = await gw.state.token_by_key(header[7:].strip())
    if token is None:
        raise invalid_api_key()
    if not token.enabled:
        raise ApiError(401, "This API key is disabled.", "token_disabled", "authentication_error")
    if token.expired(datetime.now(UTC)):
        raise ApiError(401, "This API key has expired.", "token_expired", "authentication_error")
    if not token.account_enabled:
        raise forbidden("The account that owns this API key is disabled.", "account_disabled")
    return token


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to be too large."""
    declared = parse_count(request.headers.get("content-length"))
    if declared is not None and declared > max_bytes:
        raise request_too_large(max_bytes)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise request_too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    body = await read_body(request, max_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return payload, body


def resolve_model(
    gw: Gateway, token: TokenInfo, payload: dict[str, Any], endpoint: MeteredEndpoint
) -> Model:
    """The catalog model the call names, if this token may call it on ``endpoint``."""
    name = payload.get("model")
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


def decide(token: TokenInfo, model: Model) -> BillingMethod:
    decision = resolve_method(token.billing_mode, model)
    if isinstance(decision, Refusal):
        raise forbidden(decision.message, "billing_mode_mismatch")
    return decision


def route(gw: Gateway, model: Model) -> tuple[Channel, Provider]:
    for channel in gw.state.channels_for(model):
        provider = PROVIDERS.get(channel.type)
        if provider is not None:
            return channel, provider
    raise ApiError(
        503,
        f"No upstream channel serves model '{model.id}' right now.",
        "model_not_available",
        "upstream_error",
    )


@dataclass
class Call:
    """A call that holds money: it must end in settle() or release()."""

    gw: Gateway
    token: TokenInfo
    model: Model
    method: BillingMethod
    endpoint: str
    channel: Channel
    provider: Provider
    hold_nano: int
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    closed: bool = False

    def headers(self) -> dict[str, str]:
        return {BILLING_METHOD_HEADER: self.method.value, REQUEST_ID_HEADER: self.request_id}

    def upstream_url(self) -> str:
        return self.provider.url(self.channel.base_url, self.endpoint)

    def upstream_headers(self) -> dict[str, str]:
        return self.provider.headers(self.channel.api_key)

    def record(
        self,
        usage: Usage,
        cost_nano: int,
        unit_prices: dict[str, str],
        status: str,
        detail: str | None = None,
    ) -> UsageRecord:
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
        )

    async def settle(self, usage: Usage, status: str = "ok", detail: str | None = None) -> int:
        """Charge the real cost (once), in full even beyond the hold (then the
        record is flagged); returns it in nano-USD."""
        cost = price_call(self.model, self.method, usage)
        prices = {line.name: nano_to_usd(line.unit_price_nano) for line in cost.lines}
        self.closed = True
        cost_nano = cost.total_nano
        if cost_nano > MAX_NANO:  # past any balance and a 64-bit column: the most there is
            cost_nano, detail = MAX_NANO, f"reported cost ${nano_to_usd(cost.total_nano)}"
        record = self.record(usage, cost_nano, prices, status, detail)
        record.exceeded_hold = cost_nano > self.hold_nano
        # No shield needed: the step is queued before the first await, and the
        # writer applies it whether or not this caller is still waiting.
        settlement = await self.gw.ledger.settle(record)
        return settlement.cost_nano

    async def release(self, status: str, detail: str) -> None:
        """Give the hold back in full (the upstream failed; nothing to pay)."""
        if self.closed:
            return
        self.closed = True
        record = self.record(Usage(items=0), 0, {}, status, detail)
        await self.gw.ledger.release(record)


async def open_call(
    gw: Gateway,
    token: TokenInfo,
    model: Model,
    method: BillingMethod,
    endpoint: str,
    shape: CallShape,
) -> Call:
    channel, provider = route(gw, model)
    amount = hold_nano(model, method, shape, gw.settings.hold_output_tokens)
    call = Call(gw, token, model, method, endpoint, channel, provider, amount)
    if gw.ledger.hold_now(call.request_id, token.account_id, token.id, amount):
        return call
    held = asyncio.ensure_future(
        gw.ledger.hold(call.request_id, token.account_id, token.id, amount, leased=True)
    )
    try:
        short = await asyncio.shield(held)
    except asyncio.CancelledError:  # the client left while the hold was being made
        _background(gw, _give_back(call, held))
        raise
    if isinstance(short, InsufficientFunds):
        raise _no_funds(short)
    return call


async def _give_back(call: Call, held: asyncio.Future[InsufficientFunds | None]) -> None:
    """Release a hold whose call was never forwarded."""
    with contextlib.suppress(Exception):
        if await held is None:
            await call.release("client_disconnected", "the client left before the call was sent")


def _background(gw: Gateway, work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    gw.background.add(task)
    task.add_done_callback(gw.background.discard)


def _no_funds(short: InsufficientFunds) -> ApiError:
    return insufficient_quota(
        f"This call may cost up to ${nano_to_usd(short.needed_nano)}, {short.more_than()}. "
        "Add credit, raise the quota, or lower max_tokens."
    )


def upstream_failure(status: int, data: bytes) -> ApiError:
    """Map an upstream's error answer to what the client gets."""
    message = _upstream_message(data) or f"The upstream answered HTTP {status}."
    if status in (400, 404, 409, 413, 422):
        return ApiError(status, message, "upstream_rejected_request")
    if status == 429:
        return ApiError(429, message, "rate_limit_exceeded", "rate_limit_error")
    if status in (401, 403):
        return upstream_error("The upstream refused the gateway's credentials for this model.")
    return upstream_error(f"The upstream failed: {message}")


def _upstream_message(data: bytes) -> str | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None
