"""The command line, and the Plan it makes: what a run measures, how long
and how often (``--quick`` shortens the defaults)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from procs import BENCH_DIR

DEFAULT_PG_URL = "postgresql://127.0.0.1:5432/test"
PHASES = ("main", "streams", "scaling", "idle")


@dataclass(frozen=True)
class Plan:
    quick: bool
    duration_s: float
    latency_duration_s: float
    repeats: int
    warmup_s: float
    connections: tuple[int, ...]
    stream_requests: int
    burst_requests: int
    burst_concurrency: int
    wrk_threads: int
    profile_s: float
    profile_connections: int
    phases: tuple[str, ...]
    streams: int
    stream_tokens: int
    stream_chunk_delay_ms: int
    stream_ramp_s: float
    scaling_workers: tuple[int, ...]
    scaling_dbs: tuple[str, ...]
    scaling_placements: tuple[str, ...]
    scaling_duration_s: float
    idle_dbs: tuple[str, ...]
    idle_settle_s: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the Tollway gateway against its upstream called directly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _measurement_options(p)
    _phase_options(p)
    _run_options(p)
    return p.parse_args(argv)


def _measurement_options(p: argparse.ArgumentParser) -> None:
    """What is measured against what, and how long: the main phase."""
    p.add_argument("--quick", action="store_true", help="short run (~3 min): 1 repeat of 2 s")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--upstream", choices=["simulator", "nginx", "both"], default="both")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 8; quick 2)")
    p.add_argument("--repeats", type=int, help="repeats per measurement (default 3; quick 1)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per target (default 3; quick 1)")
    p.add_argument("--connections", default="16,64", help="throughput concurrencies")
    p.add_argument("--stream-requests", type=int, help="streams per TTFB run (300; quick 100)")
    p.add_argument("--burst", type=int, help="exact-count billing burst size (2000; quick 200)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk -t for throughput runs")


def _phase_options(p: argparse.ArgumentParser) -> None:
    """Which phases run, and the open-streams and worker-scaling settings."""
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="which phases to run, comma-separated, of: " + ", ".join(PHASES),
    )
    p.add_argument("--streams", type=int, default=1000, help="concurrent open streams")
    p.add_argument(
        "--stream-tokens", type=int, help="content chunks per open stream (50; quick 30)"
    )
    p.add_argument(
        "--stream-chunk-delay-ms", type=int, default=100, help="upstream delay before each chunk"
    )
    p.add_argument(
        "--stream-ramp", type=float, default=1.0, help="seconds over which the N streams connect"
    )
    p.add_argument("--scaling-workers", default="1,2", help="gateway --workers values to compare")
    p.add_argument(
        "--scaling-db",
        choices=["sqlite", "postgres", "both"],
        help="databases for the scaling phase (both; quick sqlite)",
    )
    p.add_argument(
        "--scaling-pin",
        choices=["none", "pinned", "both"],
        help="scaling placement: workers float (none), one per core via taskset (pinned), "
        "or both (default both; quick none)",
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    """The machine, the gateways' settings, tools, where results go."""
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be quiet (other work < 0.25 cores)",
    )
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL where a scratch database is created and dropped",
    )
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra TOLLWAY_* setting for the gateways (repeatable)",
    )
    p.add_argument(
        "--token-field",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="a field of the benchmark's API key, e.g. rpm_limit=1000000000 (repeatable): "
        "with --gateway-env TOLLWAY_REDIS_URL=... every call goes through the shared limits",
    )
    p.add_argument(
        "--profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="py-spy each gateway for SECONDS under wrk load at the end",
    )
    p.add_argument(
        "--profile-connections",
        type=int,
        default=16,
        metavar="N",
        help="the profiled load's wrk connections (default 16)",
    )
    p.add_argument(
        "--no-install", action="store_true", help="do not apt-get install wrk/nginx when missing"
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    p.add_argument("--keep-temp", action="store_true", help="keep logs and data (tmp dir)")
    p.add_argument(
        "--show", type=Path, metavar="JSON", help="only print the tables of an earlier results file"
    )


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    duration = args.duration or (2.0 if quick else 8.0)
    chosen = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = set(chosen) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {PHASES}")
    both = ("sqlite", "postgres")
    scaling_db = args.scaling_db or ("sqlite" if quick else "both")
    pin = args.scaling_pin or ("none" if quick else "both")
    return Plan(
        quick=quick,
        duration_s=duration,
        latency_duration_s=duration,
        repeats=args.repeats or (1 if quick else 3),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if quick else 3.0),
        connections=tuple(int(c) for c in args.connections.split(",") if c.strip()),
        stream_requests=args.stream_requests or (100 if quick else 300),
        burst_requests=args.burst or (200 if quick else 2000),
        burst_concurrency=max(int(c) for c in args.connections.split(",") if c.strip()),
        wrk_threads=args.wrk_threads,
        profile_s=args.profile,
        profile_connections=args.profile_connections,
        phases=chosen,
        streams=args.streams,
        stream_tokens=args.stream_tokens or (30 if quick else 50),
        stream_chunk_delay_ms=args.stream_chunk_delay_ms,
        stream_ramp_s=args.stream_ramp,
        scaling_workers=tuple(int(w) for w in args.scaling_workers.split(",") if w.strip()),
        scaling_dbs=both if scaling_db == "both" else (scaling_db,),
        scaling_placements={"none": ("os",), "pinned": ("pinned",), "both": ("os", "pinned")}[pin],
        scaling_duration_s=duration,
        idle_dbs=both,
        idle_settle_s=2.0,
    )
