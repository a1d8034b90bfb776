"""What every endpoint shares: state, stats, errors, JSON and call preamble."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from .config import SimulatorConfig
from .directives import Directives

JSON_TYPE = "application/json"
SYSTEM_FINGERPRINT = "fp_tollway_sim"
RECENT_MAX = 32  # request bodies kept for GET /_sim/requests

# (type, code, default message) of the OpenAI error object, by status.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (simulated)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "permission_denied", "Access denied (simulated)."),
    404: ("invalid_request_error", "not_found", "Not found (simulated)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (simulated)."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request (simulated).",
    ),
    503: ("server_error", None, "The engine is currently overloaded (simulated)."),
}


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=JSON_TYPE)


def error_body(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for ``status``; unknown statuses map by class."""
    default = _ERROR_KINDS.get(status) or (
        ("invalid_request_error", None, "Request failed (simulated).")
        if status < 500
        else ("server_error", None, "Upstream failure (simulated).")
    )
    kind, default_code, default_message = default
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


class ApiError(Exception):
    """Raised by handlers; the middleware turns it into an OpenAI-shaped error."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message  # None: each protocol words its own default
        self.body = error_body(status, message, param=param, code=code)

    def response(self) -> web.Response:
        return json_response(self.body, self.status)


@dataclass(frozen=True, slots=True)
class Dialect:
    """A provider protocol other than OpenAI's, served on paths it owns.

    The middleware asks it whether a path is its own, lets it check the api
    key (each provider takes the key in its own header) and lets it word the
    errors in its own shape.
    """

    owns: Callable[[str], bool]
    check_key: Callable[[web.Request, str], None]  # raises ApiError on a wrong key
    error_response: Callable[[web.Request, ApiError], web.Response]


@dataclass(slots=True)
class SimStats:
    """What reached the simulator: lets a test prove a request never went upstream.

    ``/_sim/*`` control calls are not counted.
    """

    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # responses with a status >= 400
    dropped: int = 0  # connections cut on purpose (drop_after / drop_rate)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_MAX))

    def count(self, path: str) -> None:
        self.requests += 1
        self.by_path[path] = self.by_path.get(path, 0) + 1

    def reset(self) -> None:
        self.requests = self.errors = self.dropped = 0
        self.by_path.clear()
        self.recent.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "errors": self.errors,
            "dropped": self.dropped,
        }


class SimState:
    """Per-app mutable state: the live config, stats, the seeded RNG and ids."""

    __slots__ = ("_ids", "_run", "config", "rng", "stats")

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self.rng = random.Random(config.seed)
        # A random run prefix plus a counter: ids are unique across restarts
        # (a gateway may store them) at the cost of one increment per request.
        self._run = secrets.token_hex(4)
        self._ids = itertools.count(1)

    def new_id(self, prefix: str, sep: str = "-") -> str:
        return f"{prefix}{sep}sim{self._run}{next(self._ids):x}"

    def reseed(self) -> None:
        self.rng.seed(self.config.seed)

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``; draws from the RNG only when rate > 0,
        so runs without injected faults are unaffected by the seed."""
        return rate > 0 and self.rng.random() < rate


STATE = web.AppKey("tollway_simulator_state", SimState)


async def read_json(request: web.Request, *, record: bool = True) -> dict[str, Any]:
    """The request's JSON object body, or a 400. Recorded for /_sim/requests."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"We could not parse the JSON body of your request: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if record:
        entry = {"method": request.method, "path": request.path, "body": body}
        beta = request.headers.get("anthropic-beta")
        if beta is not None:
            entry["anthropic_beta"] = beta
        request.app[STATE].stats.recent.append(entry)
    return body


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    return model


def int_param(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    """An optional integer parameter within [low, high], or a 400."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            400, f"{name} must be an integer between {low} and {high}, got {value!r}", param=name
        )
    return value


async def begin_call(state: SimState, directives: Directives) -> None:
    """The preamble of every generation call: latency, then forced or random errors.

    Errors come after the latency because a real provider also takes time to
    fail; the RNG is drawn only when error_rate > 0.
    """
    latency = directives.latency_ms
    if latency is None:
        latency = state.config.latency_ms
    if latency:
        await asyncio.sleep(latency / 1000)
    if directives.error is not None:
        raise ApiError(directives.error)
    if state.roll(state.config.error_rate):
        raise ApiError(500)


def usage_wanted(state: SimState, directives: Directives) -> bool:
    return state.config.report_usage and not directives.no_usage


def abort_connection(request: web.Request) -> None:
    """Cut the TCP connection like a crashed upstream.

    ``close()`` (not ``abort()``) so the bytes already written still reach the
    client first; aiohttp then fails to finish the response and drops it
    quietly (it treats the ConnectionError as a client disconnect).
    """
    request.app[STATE].stats.dropped += 1
    if request.transport is not None:
        request.transport.close()


def chunk_delay(state: SimState, directives: Directives) -> float:
    """Seconds to wait before each stream chunk: the directive, else the config."""
    delay = directives.chunk_delay_ms
    if delay is None:
        delay = state.config.chunk_delay_ms
    return delay / 1000


def output_tokens(directives: Directives, max_tokens: int | None, default: int) -> tuple[int, bool]:
    """The chat rule for visible output tokens, and whether max_tokens capped them.

    ``[sim:tokens=N]`` wins; else min(max_tokens, default), capped only when
    max_tokens is the smaller one.
    """
    if directives.tokens is not None:
        return directives.tokens, False
    if max_tokens is not None and max_tokens < default:
        return max_tokens, True
    return default, False


def body_seed(obj: Any) -> bytes:
    """A digest of the conversation, so the same request gets the same words.

    Sorted keys: a gateway that re-serialises the body in another key order
    still gets the same answer.
    """
    return hashlib.blake2b(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
