"""The gateway's Prometheus metrics, one ``Metrics`` per app (its own
CollectorRegistry: tests build many apps in one process).

A call is recorded once, from its finished UsageRecord, where the ledger
settles or releases it; label children are cached by label values, so a call
whose labels were seen before costs a dict lookup per metric.

Under ``tollway serve --workers N`` the server gives its workers one
PROMETHEUS_MULTIPROC_DIR: each worker writes its values there and /metrics,
whichever worker answers it, reads them all (docs/observability.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from tollway.ledger.records import UsageRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CALL_LABELS = ("endpoint", "model", "billing_mode", "method", "status")
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COMMIT_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

CallKey = tuple[str, str, str, str, str]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        reg = self.registry
        self.requests = Counter(
            "tollway_requests", "Metered calls, by how they ended.", CALL_LABELS, registry=reg
        )
        self.latency = Histogram(
            "tollway_request_duration_seconds",
            "Metered calls' time in the gateway, arrival to settlement.",
            CALL_LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.spend = Counter(
            "tollway_spend_nano_usd",
            "What calls were charged, in nano-USD.",
            ("model", "billing_mode"),
            registry=reg,
        )
        self.refusals = Counter(
            "tollway_refusals", "Error answers, by code.", ("code", "status"), registry=reg
        )
        self.attempts = Counter(
            "tollway_upstream_attempts", "Attempts sent upstream.", ("channel_id",), registry=reg
        )
        self.failures = Counter(
            "tollway_upstream_failures",
            "Attempts that failed (the channel's fault).",
            ("channel_id",),
            registry=reg,
        )
        self.cooldowns = Counter(
            "tollway_channel_cooldowns",
            "Times a channel's breaker opened (it cooled down).",
            ("channel_id",),
            registry=reg,
        )
        self.batch_steps = Histogram(
            "tollway_ledger_batch_steps",
            "Steps per ledger transaction.",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.commit_seconds = Histogram(
            "tollway_ledger_commit_seconds",
            "Time to run and commit one ledger batch.",
            buckets=COMMIT_BUCKETS_S,
            registry=reg,
        )
        self.open_holds = Gauge(
            "tollway_open_holds",
            "Calls holding money against a lease, in this process (summed over workers).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.leases = Gauge(
            "tollway_leases",
            "Leases this process holds (summed over workers).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._calls: dict[CallKey, tuple[Any, Any]] = {}
        self._spend: dict[tuple[str, str], Any] = {}
        self._refusals: dict[tuple[str, int], Any] = {}
        self._by_channel: dict[int, tuple[Any, Any, Any]] = {}
        self.refresh: Callable[[], None] | None = None  # gauges read at scrape time

    def call(self, record: UsageRecord) -> None:
        """A call settled or released: counted, timed, and its cost added."""
        key = (record.endpoint, record.model, record.billing_mode, record.method, record.status)
        children = self._calls.get(key)
        if children is None:
            children = self._calls[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        if record.duration_ms is not None:
            children[1].observe(record.duration_ms / 1000)
        if record.cost_nano:
            spend_key = (record.model, record.billing_mode)
            spend = self._spend.get(spend_key)
            if spend is None:
                spend = self._spend[spend_key] = self.spend.labels(*spend_key)
            spend.inc(record.cost_nano)

    def refusal(self, code: str, status: int) -> None:
        child = self._refusals.get((code, status))
        if child is None:
            child = self._refusals[code, status] = self.refusals.labels(code, str(status))
        child.inc()

    def _channel(self, channel_id: int) -> tuple[Any, Any, Any]:
        found = self._by_channel.get(channel_id)
        if found is None:
            label = str(channel_id)
            found = self._by_channel[channel_id] = (
                self.attempts.labels(label),
                self.failures.labels(label),
                self.cooldowns.labels(label),
            )
        return found

    def attempt(self, channel_id: int) -> None:
        (self._by_channel.get(channel_id) or self._channel(channel_id))[0].inc()

    def failure(self, channel_id: int) -> None:
        (self._by_channel.get(channel_id) or self._channel(channel_id))[1].inc()

    def cooldown(self, channel_id: int) -> None:
        (self._by_channel.get(channel_id) or self._channel(channel_id))[2].inc()

    def batch(self, steps: int, commit_s: float) -> None:
        """One ledger batch committed (called from the writer's thread or loop)."""
        self.batch_steps.observe(steps)
        self.commit_seconds.observe(commit_s)

    def exposition(self) -> tuple[bytes, str]:
        """The text /metrics answers: every worker's values in multiprocess mode."""
        if self.refresh is not None:
            self.refresh()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, self.multiprocess_dir)
        return generate_latest(merged), CONTENT_TYPE_LATEST


GAUGES_EVERY_S = 5.0


async def keep_gauges(metrics: Metrics, every_s: float = GAUGES_EVERY_S) -> None:
    """Set the gauges now and then, so a worker's values are fresh in the
    multiprocess files even when another worker answers the scrape."""
    while True:
        if metrics.refresh is not None:
            metrics.refresh()
        await asyncio.sleep(every_s)
