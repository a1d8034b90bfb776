"""Testing a channel: one small call to its upstream with each of its keys
(``POST /api/channels/{id}/test``, and the periodic probe of auto-disabled
channels). A test that passes enables the channel again if the upstream had
auto-disabled it; one that fails says what the upstream said."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from sqlalchemy import select

from tollway.db.schema import channels
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.key_vault import KeyUnreadable
from tollway.manage import checks
from tollway.manage.channels import channel_row
from tollway.providers import PROVIDERS, Outbound
from tollway.routing.failures import reason_of
from tollway.routing.status import AUTO_DISABLED, enable_again
from tollway.types import MAX_NANO, Model, ModelKind
from tollway.upstream import UpstreamError

log = logging.getLogger(__name__)

TEST_TIMEOUT_S = 15
# The catalog's provider name for the models a channel type's upstream makes.
FAMILY = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
CHAT_KINDS = (ModelKind.TEXT, ModelKind.MULTIMODAL)


async def test_channel(gw: Gateway, channel_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """``{ok, status_code, latency_ms, model, error?}``: the channel's answer to
    one small call (each key tried until one passes)."""
    unknown = set(fields) - {"model"}
    if unknown:
        raise bad_request(f"Unknown test fields: {', '.join(sorted(unknown))[:200]}.")
    row = await channel_row(gw, channel_id)
    model = _test_model(gw, row, fields.get("model"))
    result: dict[str, Any] = {}
    for key in row["api_keys"]:
        try:
            plain = gw.state.key_vault.open(key["key"])
        except KeyUnreadable as exc:
            result = {"ok": False, "status_code": None, "model": model.id, "error": str(exc)}
            result["latency_ms"] = 0.0
            continue
        result = await _try(gw, row, model, plain)
        if result["ok"]:
            break
    if result["ok"] and (row["status"] == AUTO_DISABLED or _some_key_off(row)):
        result["enabled_again"] = await enable_again(gw, channel_id)
    return result


def _some_key_off(row: Any) -> bool:
    return any(not k.get("enabled", True) for k in row["api_keys"])


def _test_model(gw: Gateway, row: Any, name: Any) -> Model:
    """The model asked for, else the first chat (or embedding) model the channel serves."""
    catalog = gw.state.catalog
    if name is not None:
        model = catalog.get(checks.text(name, "model"))
        if model is None:
            raise bad_request(f"No model {str(name)[:100]!r} in the catalog.", param="model")
        if model.kind not in (*CHAT_KINDS, ModelKind.EMBEDDING):
            raise bad_request("A test calls a chat or embedding model.", param="model")
        return model
    served = set(row["models"])
    endpoints = PROVIDERS[row["type"]].endpoints
    for kinds in (CHAT_KINDS, (ModelKind.EMBEDDING,)):
        testable = [
            m
            for m in catalog
            if m.kind in kinds and ("*" in served or m.id in served) and _endpoint(m) in endpoints
        ]
        if testable:  # the upstream's own family first, then the cheapest
            family = FAMILY.get(row["type"])
            return min(testable, key=lambda m: (m.provider != family, _input_price(m), m.id))
    raise bad_request("The channel serves no chat or embedding model to test with.", param="model")


def _input_price(model: Model) -> int:
    price = model.per_use.input_mtok if model.per_use is not None else None
    return MAX_NANO if price is None else price


def _endpoint(model: Model) -> str:
    return "embeddings" if model.kind is ModelKind.EMBEDDING else "chat/completions"


async def _try(gw: Gateway, row: Any, model: Model, key: str) -> dict[str, Any]:
    name = (row["model_mapping"] or {}).get(model.id, model.id)
    endpoint = _endpoint(model)
    if endpoint == "embeddings":
        payload: dict[str, Any] = {"model": name, "input": "ping"}
    else:
        payload = {"model": name, "messages": [{"role": "user", "content": "ping"}]}
        payload["max_tokens"] = 1
    outbound = Outbound(endpoint, orjson.dumps(payload), payload, held_output_tokens=1)
    provider = PROVIDERS[row["type"]]
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": False, "status_code": None, "model": model.id}
    try:
        request = provider.request(row["base_url"].rstrip("/"), key, outbound)
        resp = await gw.upstream.send(request, TEST_TIMEOUT_S)
        try:
            data = await resp.read()
        finally:
            resp.close()
    except (UpstreamError, OSError) as exc:
        result["error"] = f"The upstream could not be reached: {exc!r}"[:500]
    else:
        result["status_code"] = resp.status
        result["ok"] = resp.status == 200
        if not result["ok"]:
            result["error"] = reason_of(resp.status, data)
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


async def probe_forever(gw: Gateway, every_s: float) -> None:
    """Test each auto-disabled channel every ``every_s`` (TOLLWAY_CHANNEL_PROBE_S)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            for channel_id in await _auto_disabled(gw):
                result = await test_channel(gw, channel_id, {})
                if result.get("enabled_again"):
                    log.info("channel %s passed its probe and is enabled again", channel_id)
        except Exception:  # a database hiccup, a channel deleted meanwhile: next round
            log.exception("probing auto-disabled channels failed; will retry")


async def _auto_disabled(gw: Gateway) -> list[int]:
    async with gw.engine.connect() as conn:
        rows = await conn.execute(select(channels.c.id).where(channels.c.status == AUTO_DISABLED))
        return [r[0] for r in rows]
