"""The load: wrk for latency and throughput, a small Python client for
streaming time-to-first-byte, and an exact-count burst for the billing check.

Every loop here is bounded in time or count and sends to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from procs import BENCH_DIR, BenchError, Supervisor

CHAT_BODY = json.dumps(
    {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Say hello in five words"}],
        "max_tokens": 16,
    },
    separators=(",", ":"),
)
STREAM_BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello in five words"}],
        "max_tokens": 16,
        "stream": True,
    },
    separators=(",", ":"),
)
WRK_SCRIPT = BENCH_DIR / "chat.lua"


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise BenchError(f"refusing to send load to {host!r}: loopback only")


# --------------------------------------------------------------------------
# wrk


def run_wrk(
    sup: Supervisor,
    wrk: str,
    url: str,
    connections: int,
    duration_s: float,
    auth: str = "",
    threads: int = 2,
    body: str = CHAT_BODY,
) -> dict[str, Any]:
    """One wrk run; returns its counters, latency percentiles (ms) and req/s."""
    _loopback_only(url)
    threads = max(1, min(threads, connections))
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth}
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    out = sup.run(f"wrk-c{connections}", argv, env, timeout=duration_s + 60)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return _wrk_row(json.loads(line[len("BENCH_JSON ") :]), connections, threads)
    raise BenchError(f"wrk printed no summary:\n{out[-2000:]}")


def _wrk_row(raw: dict[str, Any], connections: int, threads: int) -> dict[str, Any]:
    """chat.lua's summary line (exact counters, latency in µs) as a result row."""
    seconds = raw["duration_us"] / 1e6
    errors = raw["err_connect"] + raw["err_read"] + raw["err_write"] + raw["err_timeout"]
    return {
        "connections": connections,
        "threads": threads,
        "duration_s": round(seconds, 3),
        "requests": raw["requests"],  # complete responses, any status
        "non_2xx": raw["err_status"],
        "ok": raw["requests"] - raw["err_status"],
        "socket_errors": errors,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "ok_rps": (raw["requests"] - raw["err_status"]) / seconds if seconds else 0.0,
        "p50_ms": raw["lat_p50_us"] / 1000,
        "p90_ms": raw["lat_p90_us"] / 1000,
        "p99_ms": raw["lat_p99_us"] / 1000,
        "p999_ms": raw["lat_p999_us"] / 1000,
        "mean_ms": raw["lat_mean_us"] / 1000,
        "max_ms": raw["lat_max_us"] / 1000,
        "raw": raw,
    }


# --------------------------------------------------------------------------
# Streaming time to first byte: one keep-alive connection, sequential


@dataclass
class StreamResult:
    ok: int
    failed: int
    ttfb_ms: list[float]  # request sent -> first body bytes (first SSE event)
    total_ms: list[float]  # request sent -> end of stream
    saw_done: int  # streams that ended with data: [DONE]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.ok + self.failed,
            "ok": self.ok,
            "failed": self.failed,
            "complete_streams": self.saw_done,
            "ttfb_p50_ms": _pct(self.ttfb_ms, 50),
            "ttfb_p99_ms": _pct(self.ttfb_ms, 99),
            "total_p50_ms": _pct(self.total_ms, 50),
            "total_p99_ms": _pct(self.total_ms, 99),
        }


def stream_ttfb(url: str, auth: str, count: int, body: str = STREAM_BODY) -> StreamResult:
    _loopback_only(url)
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    payload = body.encode()
    result = StreamResult(0, 0, [], [], 0)
    conn = http.client.HTTPConnection(host, parts.port, timeout=30)
    try:
        for _ in range(count):
            t0 = time.perf_counter_ns()
            try:
                conn.request("POST", parts.path, payload, headers)
                resp = conn.getresponse()
                first = resp.read1(65536)
                t1 = time.perf_counter_ns()
                rest = resp.read()
                t2 = time.perf_counter_ns()
            except (OSError, http.client.HTTPException):
                result.failed += 1
                conn.close()
                conn = http.client.HTTPConnection(host, parts.port, timeout=30)
                continue
            if resp.status != 200 or not first:
                result.failed += 1
                continue
            result.ok += 1
            result.ttfb_ms.append((t1 - t0) / 1e6)
            result.total_ms.append((t2 - t0) / 1e6)
            if b"data: [DONE]" in first + rest:
                result.saw_done += 1
    finally:
        conn.close()
    return result


# --------------------------------------------------------------------------
# Exact-count burst: N requests at concurrency C, every answer awaited


def burst(
    url: str, auth: str, count: int, concurrency: int, body: str = CHAT_BODY
) -> dict[str, Any]:
    """Unlike wrk (which drops what is in flight at its deadline), this knows
    exactly how many requests were answered and how."""
    _loopback_only(url)
    return asyncio.run(_burst(url, auth, count, concurrency, body.encode()))


async def _burst(url: str, auth: str, count: int, concurrency: int, body: bytes) -> dict[str, Any]:
    import aiohttp  # a dependency of tollway

    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    statuses: dict[int, int] = {}
    failures = 0
    remaining = count

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                failures += 1

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.wait_for(
            asyncio.gather(*(worker(session) for _ in range(concurrency))), timeout=600
        )
    elapsed = time.perf_counter() - started
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "requests": count,
        "concurrency": concurrency,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "transport_failures": failures,
        "seconds": round(elapsed, 3),
    }


def _pct(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
