"""The alerts' background loop in every gateway process: scan for due
events, send them, sleep ``every_s``."""

from __future__ import annotations

import asyncio
import logging

import httpx

from tollway.alerts.delivery import deliver_due
from tollway.alerts.scanner import scan
from tollway.gateway import Gateway

log = logging.getLogger(__name__)


async def run_alerts(gw: Gateway, every_s: float) -> None:
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await scan(gw)
                await deliver_due(gw, client)
            except Exception:  # a database hiccup must not stop the alerts
                log.exception("alerts: scan or delivery failed; will retry")
            await asyncio.sleep(every_s)
