"""The fault run: Tollway as N replicas on one PostgreSQL with Redis for the
rate limits, behind nginx (deploy/nginx/), under mixed load from many small
accounts while things break — then the books are checked to the nano-USD.

    python bench/faults.py [--seconds 60] [--replicas 3] [--workers 12] [--accounts 12]

Faults, in this order during the load: upstream 5xx and cut streams all along
(the simulator's error and drop rates), upstream timeouts all along (calls the
simulator answers past the replicas' 5 s upstream timeout, streams it leaves
hanging mid-way), clients leaving streams mid-way, a
replica SIGKILLed and restarted, PostgreSQL stopped and started, Redis stopped
and started, a replica drained by SIGTERM and restarted. Afterwards the
replicas run on while video jobs end, then stop (SIGTERM: leases returned); a
fresh replica's start-up reconcilers return what the killed process left (its
leases are stale by then), and fault_check.py reads the database.

Exit status 0: every check held; 2: one failed (the table says which); 1: the
run itself could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from fault_check import Verdict, check_database, check_rates
from fault_load import Tally, make_customers, run_load
from fault_services import (
    ADMIN_KEY,
    Postgres,
    Redis,
    Replicas,
    gateway_env,
    start_nginx,
    start_postgres,
    start_simulator,
)
from procs import BenchError, Supervisor, free_port

# After the load: time for video jobs to end (their reconciler polls every 5 s).
SETTLE_AFTER_S = 12.0
RATE_LIMIT = 30  # the requests a minute of every third token (fault_load.py)
MIN_DOWN_S = 3.0
BREAKS = frozenset({"replica SIGKILLed", "PostgreSQL stopped", "Redis stopped"})


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tollway-faults-"))
    sup = Supervisor(workdir)
    pg: Postgres | None = None
    try:
        pg = start_postgres()
        verdict, faults, tally = asyncio.run(_run(sup, pg, args))
    except BenchError as exc:
        print(f"fault run could not be made: {exc}\n(logs in {workdir})", file=sys.stderr)
        return 1
    finally:
        sup.stop_all()
        if pg is not None:
            pg.stop("immediate")
            if not args.keep:
                pg.remove()
    print(_table(verdict, faults, tally))
    if verdict.failures:
        print("FAILED:\n  " + "\n  ".join(verdict.failures), file=sys.stderr)
        print(f"(logs in {workdir})", file=sys.stderr)
        return 2
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60, help="how long the load runs")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--workers", type=int, default=12, help="concurrent clients")
    p.add_argument("--accounts", type=int, default=12)
    p.add_argument("--keep", action="store_true", help="keep logs and data")
    p.add_argument(
        "--direct", action="store_true", help="no nginx: the load goes to the first replica"
    )
    return p.parse_args(argv)


async def _run(
    sup: Supervisor, pg: Postgres, args: argparse.Namespace
) -> tuple[Verdict, Counter[str], Tally]:
    redis = Redis(sup, free_port())
    redis.start()
    sim = start_simulator(sup)
    replicas = Replicas(sup, gateway_env(pg, redis.url, upstream_timeout_s=5))
    replicas.add(1)  # the first migrates and makes the admin alone
    replicas.add(args.replicas - 1)
    base = replicas.replicas[0].base if args.direct else start_nginx(sup, replicas.replicas)
    await _channels(base, sim)
    customers = await make_customers(base, ADMIN_KEY, args.accounts)
    faults: Counter[str] = Counter()
    load = asyncio.create_task(run_load(base, customers, args.seconds, args.workers))
    moments = await _break_things(replicas, pg, redis, args.seconds, faults)
    tally = await load
    await asyncio.sleep(SETTLE_AFTER_S)
    await asyncio.to_thread(replicas.stop_all)  # SIGTERM: each returns its leases
    # A fresh replica's reconcilers run at its start: they return the leases
    # the SIGKILLed process left (stale by now) and end what jobs remain.
    await asyncio.to_thread(replicas.add, 1)
    await asyncio.sleep(3)
    await asyncio.to_thread(replicas.stop_all)
    verdict = check_database(pg.url)
    # Limits pass unchecked while Redis is down, and for the second after
    # (a limiter leaves Redis alone for a second after a failure).
    redis_down = [(moments["Redis stopped"], moments["Redis started"] + 2.0)]
    check_rates(tally, RATE_LIMIT, verdict, redis_down)
    return verdict, faults, tally


async def _channels(base: str, sim: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as c:
        for channel in (
            {"name": "sim", "type": "openai", "base_url": sim + "/v1", "api_key": "k",
             "models": ["*"]},
            {"name": "sim-claude", "type": "anthropic", "base_url": sim, "api_key": "k",
             "models": ["claude-*"], "priority": 10},
        ):  # fmt: skip
            got = await c.post("/api/channels", json=channel)
            if got.status_code != 201:
                raise BenchError(f"channel: {got.status_code} {got.text}")
    async with httpx.AsyncClient(timeout=10) as c:  # upstream faults all along
        await c.post(sim + "/_sim/config", json={"error_rate": 0.03, "drop_rate": 0.03})


async def _break_things(
    replicas: Replicas, pg: Postgres, redis: Redis, seconds: float, faults: Counter[str]
) -> dict[str, float]:
    """Each fault at its moment of the load; returns when each happened (time.time())."""
    start, moments = time.monotonic(), {}
    victim, drained = replicas.replicas[1], replicas.replicas[-1]
    schedule: list[tuple[float, str, Any]] = [
        (0.15, "replica SIGKILLed", lambda: replicas.kill(victim)),
        (0.25, "replica restarted", lambda: replicas.start(victim)),
        (0.35, "PostgreSQL stopped", lambda: pg.stop("fast")),
        (0.42, "PostgreSQL started", pg.start),
        (0.55, "Redis stopped", redis.stop),
        (0.62, "Redis started", redis.start),
        (0.70, "replica drained (SIGTERM)", lambda: replicas.drain(drained)),
        (0.72, "replica restarted", lambda: replicas.start(drained)),
    ]
    earliest = start
    for at, name, act in schedule:
        delay = max(start + at * seconds, earliest) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        moments.setdefault(name, time.time())
        await asyncio.to_thread(act)
        faults[name] += 1
        # What was broken stays broken a while, however late a slow restart
        # ran the schedule.
        earliest = time.monotonic() + (MIN_DOWN_S if name in BREAKS else 0)
        print(f"[{time.monotonic() - start:6.1f}s] {name}", flush=True)
    return moments


def _table(verdict: Verdict, faults: Counter[str], tally: Tally) -> str:
    lines = ["", "fault run", "", "| what | count |", "|---|---|"]
    lines += [f"| calls: {kind} | {n:,} |" for kind, n in sorted(tally.by_kind.items())]
    lines += [f"| answers HTTP {code} | {n:,} |" for code, n in sorted(tally.by_status.items())]
    lines += [f"| connections broken: {name} | {n:,} |" for name, n in sorted(tally.errors.items())]
    lines += [f"| fault: {name} | {n} |" for name, n in faults.items()]
    lines += [f"| {name} | {value:,} |" for name, value in verdict.figures.items()]
    lines.append(f"| verdict | {'PASS' if not verdict.failures else 'FAIL'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
