"""The services one running gateway holds, built once by the app factory and
handed to every endpoint (no globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.counting import TokenCounter
from tollway.ledger import Ledger
from tollway.settings import Settings
from tollway.state import State


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    state: State
    ledger: Ledger
    http: aiohttp.ClientSession
    counter: TokenCounter
    # Strong references to fire-and-forget tasks, so none is collected mid-way.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    @cached_property
    def unary_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.settings.upstream_timeout_s)

    @cached_property
    def stream_timeout(self) -> aiohttp.ClientTimeout:
        # A stream may run long; what must not stall is the gap between chunks.
        return aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.settings.upstream_connect_timeout_s,
            sock_read=self.settings.upstream_timeout_s,
        )
