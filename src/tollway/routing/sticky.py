"""Sticky routes: calls that share a prompt-cache key go to the channel that
served the last one, so the upstream's prompt cache hits. Bounded (least
recently used first out) and each entry lives ``ttl_s``."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

MAX_ROUTES = 10_000
TTL_S = 3600.0
MAX_KEY_CHARS = 256  # longer keys are kept by their digest


def sticky_key(payload: dict[str, Any], native: dict[str, Any] | None) -> str | None:
    """What ties a call to its predecessors: ``prompt_cache_key``, ``user``,
    or Anthropic's ``metadata.user_id`` (None: nothing)."""
    for name in ("prompt_cache_key", "user"):
        value = payload.get(name)
        if isinstance(value, str) and value:
            return _bounded(value)
    metadata = native.get("metadata") if native is not None else None
    if isinstance(metadata, dict):
        user = metadata.get("user_id")
        if isinstance(user, str) and user:
            return _bounded(user)
    return None


def _bounded(value: str) -> str:
    if len(value) <= MAX_KEY_CHARS:
        return value
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class StickyRoutes:
    def __init__(
        self,
        max_routes: int = MAX_ROUTES,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_routes = max_routes
        self.ttl_s = ttl_s
        self.clock = clock
        self._routes: OrderedDict[tuple[str, str, str], tuple[int, float]] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> int | None:
        """The channel that served the last call with this key, if recent."""
        found = self._routes.get(key)
        if found is None:
            return None
        channel_id, expires = found
        if self.clock() >= expires:
            del self._routes[key]
            return None
        return channel_id

    def put(self, key: tuple[str, str, str], channel_id: int) -> None:
        self._routes[key] = (channel_id, self.clock() + self.ttl_s)
        self._routes.move_to_end(key)
        while len(self._routes) > self.max_routes:
            self._routes.popitem(last=False)

    def __len__(self) -> int:
        return len(self._routes)
