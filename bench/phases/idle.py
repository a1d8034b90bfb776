"""Idle memory: a fresh gateway's resident memory before any traffic, after
the bootstrap through /api, and after a restart on the existing database."""

from __future__ import annotations

import time
from typing import Any

from procfs import group_rss_kib, rss_kib
from progress import log
from stack import Bench, Gateway, restart_gateway
from upstreams import Upstream


def idle_memory(bench: Bench, dbs: list[str], settle_s: float) -> dict[str, Any]:
    """Per database: a fresh gateway's RSS once it answers /health (no other
    request yet: the first start ran the migrations, in the CLI process before
    it exec'd the server), after the bootstrap (account, credit, channels, key
    through /api), and after a restart on that now existing database."""
    # Channels need a base URL only; nothing is ever sent to it here.
    stub = Upstream("none", None, 9, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for db in dbs:
        readings = _readings(bench, db, stub, settle_s)
        out[db] = readings
        log(
            f"idle memory {db}: fresh {_mib(readings['fresh'])} MiB, after bootstrap "
            f"{_mib(readings['bootstrapped'])} MiB, restarted {_mib(readings['restart'])} MiB"
        )
    return out


def _readings(bench: Bench, db: str, stub: Upstream, settle_s: float) -> dict[str, Any]:
    """One database's gateway: fresh, bootstrapped, restarted (``settle_s`` after each)."""
    readings: dict[str, Any] = {}

    def fresh(gw: Gateway) -> None:
        time.sleep(settle_s)
        readings["fresh"] = _mem(gw)

    t0 = time.monotonic()
    gw = bench.start_gateway(db, stub, before_bootstrap=fresh)
    try:
        readings["start_s"] = round(time.monotonic() - t0, 2)
        time.sleep(settle_s)
        readings["bootstrapped"] = _mem(gw)
        t1 = time.monotonic()
        restart_gateway(bench.sup, gw)
        readings["restart_s"] = round(time.monotonic() - t1, 2)
        time.sleep(settle_s)
        readings["restart"] = _mem(gw)
    finally:
        bench.stop_gateway(gw)
    return readings


def _mem(gw: Gateway) -> dict[str, Any]:
    group = group_rss_kib(gw.pid)
    single = rss_kib(gw.pid)
    return {"VmRSS": group["VmRSS"], "VmHWM": single.get("VmHWM"), "processes": group["processes"]}


def _mib(reading: dict[str, Any]) -> str:
    return f"{reading['VmRSS'] / 1024:.1f}"
