"""The services one running gateway holds, built once by the app factory and
handed to every endpoint (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

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
