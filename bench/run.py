#!/usr/bin/env python3
"""Tollway benchmark: the gateway versus its upstream called directly.

    python bench/run.py            # full run (~18 min): both databases, both upstreams, all phases
    python bench/run.py --quick    # ~2 min smoke run
    python bench/run.py --db sqlite --upstream nginx --duration 5 --repeats 5
    python bench/run.py --quick --profile 10   # also py-spy the gateway under load

For each upstream (the tollway simulator, and nginx serving fixed answers) it
starts the upstream and one fresh gateway per database, then, for the
upstream itself ("direct") and each gateway, interleaved and repeated:

  - latency at concurrency 1 (wrk -t1 -c1: p50, p99)
  - throughput at concurrency 16 and 64 (wrk -t2 -cN: requests/s)
  - streaming time to first byte (Python client, sequential: p50, p99)

after a warm-up, and quotes the median of the repeats. Then (phases.py):

  - open streams: --streams N (1000) slow streams at once through each gateway
    in front of the simulator: memory per open stream, chunk forwarding
    (inter-chunk gaps at the client), every stream complete, billing exact;
  - worker scaling: wrk -c64 against `tollway serve --workers 1` and `2`,
    and against 2 independent one-worker gateways at once (the machine's
    ceiling), with the CPU of each party (gateway workers, wrk, upstream,
    other work);
  - idle memory: fresh gateway before any traffic, and after a restart.

After every gateway run it checks that billing stayed exact (see billing.py).
It prints tables and writes everything to bench/results/latest.json. Loopback
only; everything it starts is stopped at the end, Ctrl+C included. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import phases
import profile_summary
from billing import Audit
from load import burst, median, run_wrk, stream_ttfb
from procs import (
    BENCH_DIR,
    BenchError,
    Supervisor,
    ensure_tool,
    install_signal_handlers,
    raise_fd_limit,
    rss_kib,
    tool_version,
)
from report import render_tables
from stack import (
    CREATED_DATABASES,
    Gateway,
    Upstream,
    pg_available,
    pg_drop,
    start_gateway,
    start_nginx,
    start_simulator,
    stop_gateway,
)

DEFAULT_PG_URL = "postgresql://127.0.0.1:5432/test"
PHASES = ("main", "streams", "scaling", "idle")
QUIET_CORES = 0.25
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}")


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


@dataclass
class Target:
    """What load is sent to: the upstream itself, or a gateway in front of it."""

    name: str
    chat_url: str
    stream_url: str
    auth: str
    gateway: Gateway | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the Tollway gateway against its upstream called directly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short run (~2 min): 1 repeat of 2 s")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--upstream", choices=["simulator", "nginx", "both"], default="both")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 8; quick 2)")
    p.add_argument("--repeats", type=int, help="repeats per measurement (default 3; quick 1)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per target (default 3; quick 1)")
    p.add_argument("--connections", default="16,64", help="throughput concurrencies")
    p.add_argument("--stream-requests", type=int, help="streams per TTFB run (300; quick 100)")
    p.add_argument("--burst", type=int, help="exact-count billing burst size (2000; quick 200)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk -t for throughput runs")
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
        "--profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="py-spy each gateway for SECONDS under wrk -c16 load at the end",
    )
    p.add_argument(
        "--no-install", action="store_true", help="do not apt-get install wrk/nginx when missing"
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    p.add_argument("--keep-temp", action="store_true", help="keep logs and data (tmp dir)")
    p.add_argument(
        "--show", type=Path, metavar="JSON", help="only print the tables of an earlier results file"
    )
    return p.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print(render_tables(json.loads(args.show.read_text())))
        return 0
    plan = make_plan(args)
    install_signal_handlers()
    raise_fd_limit(max(4096, 3 * plan.streams + 1024))  # inherited by every child
    extra_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    workdir = Path(tempfile.mkdtemp(prefix="tollway-bench-"))
    sup = Supervisor(workdir)
    started = time.monotonic()
    results: dict[str, Any] = {}
    gateways: list[Gateway] = []
    code = 1
    try:
        wrk = ensure_tool("wrk", "wrk", not args.no_install)
        if wrk is None:
            raise BenchError("wrk is missing: apt-get install wrk")
        upstreams = ["simulator", "nginx"] if args.upstream == "both" else [args.upstream]
        notes: list[str] = []
        nginx = None
        if "nginx" in upstreams:
            nginx = ensure_tool("nginx", "nginx-light", not args.no_install)
            if nginx is None:
                if args.upstream == "nginx":
                    raise BenchError("nginx is missing: apt-get install nginx-light")
                upstreams.remove("nginx")
                notes.append("nginx not available: simulator only")
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        if "postgres" in dbs:
            why = pg_available(args.pg_url)
            if why is not None:
                if args.db == "postgres":
                    raise BenchError(f"PostgreSQL not reachable: {why}")
                if not plan.quick:  # the full run's tables carry PostgreSQL rows
                    raise BenchError(
                        f"PostgreSQL not reachable at {args.pg_url} ({why}); the full run "
                        "reports it beside SQLite: start it, set --pg-url, or pass --db sqlite"
                    )
                dbs.remove("postgres")
                notes.append(f"PostgreSQL not reachable at {args.pg_url}: SQLite only")
        if "streams" in plan.phases and "simulator" not in upstreams:
            notes.append("open streams need the simulator upstream: skipped")
        results = {
            "meta": environment(wrk, nginx, args, plan, extra_env),
            "notes": notes,
            "runs": [],
        }
        for note in notes:
            print(f"note: {note}")
        if args.wait_quiet > 0:
            results["meta"]["waited_for_quiet_s"] = wait_quiet(args.wait_quiet)
        results["meta"]["background_cores_before"] = background_load()
        results["meta"]["loadavg_before"] = loadavg()
        log(
            f"machine: {results['meta']['background_cores_before']} cores busy with other work, "
            f"load average {results['meta']['loadavg_before']}"
        )
        if "idle" in plan.phases:
            log("== idle memory ==")
            idle_dbs = [db for db in plan.idle_dbs if db in dbs]
            results["idle_memory"] = phases.idle_memory(
                sup, idle_dbs, args.pg_url, extra_env, plan.idle_settle_s, log
            )
        # Scaling needs the upstream with the most headroom: nginx if it is measured.
        scaling_on = "nginx" if "nginx" in upstreams else upstreams[-1]
        stack_dbs = dbs if {"main", "streams"} & set(plan.phases) else []
        stacks = start_stacks(sup, upstreams, nginx, stack_dbs, args, extra_env, gateways)
        for upstream, gws in stacks:
            log(f"== upstream: {upstream.kind} ==")
            results["runs"].append(measure(sup, upstream, gws, wrk, plan))
            for gw in gws:  # free the cores for the next upstream's runs
                stop_gateway(sup, gw)
                gateways.remove(gw)
            if "scaling" in plan.phases and upstream.kind == scaling_on:
                log(f"== worker scaling (upstream {upstream.kind}) ==")
                results["scaling"] = phases.worker_scaling(
                    sup, upstream, [db for db in plan.scaling_dbs if db in dbs],
                    list(plan.scaling_workers), list(plan.scaling_placements), wrk,
                    max(plan.connections), plan.scaling_duration_s, plan.warmup_s,
                    plan.repeats, plan.wrk_threads, plan.burst_requests, args.pg_url,
                    extra_env, gateways, log,
                )  # fmt: skip
            sup.stop(upstream.child)
        results["meta"]["background_cores_after"] = background_load()
        results["meta"]["loadavg_after"] = loadavg()
        # Others may commit or edit while a long run goes on: gateways started
        # later then ran other code than the first ones.
        after = tree_state(BENCH_DIR.parent)
        before_state = (results["meta"]["commit"], results["meta"]["dirty_files"])
        results["meta"]["tree_changed_during_run"] = after != before_state
        results["meta"]["commit_after"], results["meta"]["dirty_files_after"] = after
        results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print()
        print(render_tables(results))
        print(f"\nresults: {args.out}   ({results['meta']['elapsed_s']} s)")
        billing_ok = all(r["billing_pass"] for r in results["runs"])
        if "scaling" in results:
            billing_ok = billing_ok and results["scaling"]["billing_pass"]
        code = 0 if billing_ok else 2
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        code = 130
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        print(f"logs: {workdir}", file=sys.stderr)
        args.keep_temp = True
    finally:
        sup.close()
        for gw in gateways:  # stops it and drops its PostgreSQL database
            with contextlib.suppress(Exception):
                stop_gateway(sup, gw)
        sup.stop_all()
        for db in list(CREATED_DATABASES):
            with contextlib.suppress(Exception):
                pg_drop(db)
        if args.keep_temp:
            print(f"temp dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


# --------------------------------------------------------------------------


def start_stacks(
    sup: Supervisor,
    kinds: list[str],
    nginx: str | None,
    dbs: list[str],
    args: argparse.Namespace,
    extra_env: dict[str, str],
    started: list[Gateway],
) -> list[tuple[Upstream, list[Gateway]]]:
    """Every upstream and one fresh gateway per database in front of each, started
    side by side (start-up is mostly waiting); the idle ones cost next to nothing."""
    log(f"starting upstreams {', '.join(kinds)} and gateways on {', '.join(dbs)} ...")
    with ThreadPoolExecutor(max_workers=8) as pool:

        def upstream(kind: str) -> Upstream:
            if kind == "simulator":
                return start_simulator(sup)
            return start_nginx(sup, nginx or "nginx")

        ups = list(pool.map(upstream, kinds))
        jobs = [
            (up, pool.submit(start_gateway, sup, db, up, args.pg_url, extra_env))
            for up in ups
            for db in dbs
        ]
        stacks: dict[str, list[Gateway]] = {up.kind: [] for up in ups}
        failure: BaseException | None = None
        for up, job in jobs:
            try:
                gw = job.result()
            except BaseException as exc:  # keep collecting, so every started one is stopped
                failure = failure or exc
                continue
            started.append(gw)
            stacks[up.kind].append(gw)
    if failure is not None:
        raise failure
    return [(up, stacks[up.kind]) for up in ups]


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def wait_quiet(max_s: float) -> float:
    """Wait (bounded) until other work uses < QUIET_CORES; returns seconds waited."""
    t0 = time.monotonic()
    while True:
        busy = background_load(2.0)
        waited = time.monotonic() - t0
        if busy < QUIET_CORES or waited >= max_s:
            log(f"machine: {busy} cores busy with other work after waiting {waited:.0f} s")
            return round(waited, 1)
        log(f"machine busy ({busy} cores, load {loadavg()}): waiting ...")
        time.sleep(min(15.0, max(0.0, max_s - waited)))


def background_load(seconds: float = 1.0) -> float:
    """Cores busy with something else (other tests, builds) before/after the run."""

    def busy() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    cores = os.cpu_count() or 1
    return round(cores * (b1 - b0) / max(1, t1 - t0), 2)


def measure(
    sup: Supervisor, upstream: Upstream, gateways: list[Gateway], wrk: str, plan: Plan
) -> dict[str, Any]:
    targets = [Target("direct", upstream.chat_url, upstream.stream_url, "")]
    targets += [Target(gw.name, gw.chat_url, gw.stream_url, gw.token, gw) for gw in gateways]
    audits = {gw.name: Audit.begin(gw) for gw in gateways}
    memory: dict[str, dict[str, Any]] = {gw.name: {"idle": rss_kib(gw.pid)} for gw in gateways}
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {} for t in targets}

    def audit(target: Target, phase: str, answered_ok: int, in_flight: int = 0) -> None:
        if target.gateway is None:
            return
        check = audits[target.name].check(phase, answered_ok, in_flight)
        if not check["pass"]:
            log(f"  BILLING FAIL {target.name} {phase}: {check}")

    if "main" in plan.phases:
        # Warm-up: connections, caches, the JIT-less interpreter's first paths.
        for t in targets:
            log(f"warm-up {t.name}")
            w = run_wrk(sup, wrk, t.chat_url, 16, plan.warmup_s, t.auth, plan.wrk_threads)
            audit(t, "warm-up", w["ok"], 16)
            s = stream_ttfb(t.stream_url, t.auth, 20)
            audit(t, "warm-up stream", s.ok)

        scenarios = ["c1", *(f"c{c}" for c in plan.connections), "stream"]
        for rep in range(plan.repeats):
            for scenario in scenarios:
                for t in targets:  # interleaved, so drift hits direct and gateway alike
                    label = f"{scenario} #{rep + 1}"
                    if scenario == "stream":
                        s = stream_ttfb(t.stream_url, t.auth, plan.stream_requests)
                        row = s.summary()
                        audit(t, label, s.ok)
                    else:
                        conns = int(scenario[1:])
                        threads = 1 if conns == 1 else plan.wrk_threads
                        duration = plan.latency_duration_s if conns == 1 else plan.duration_s
                        meter = phases.Meter(
                            t.gateway.pid if t.gateway else None,
                            upstream.child.pid,
                            t.gateway.pg.name if t.gateway and t.gateway.pg else None,
                        )
                        row = run_wrk(sup, wrk, t.chat_url, conns, duration, t.auth, threads)
                        row.update(_cpu_use(meter.stop(row["requests"])))
                        audit(t, label, row["ok"], conns)
                    samples[t.name].setdefault(scenario, []).append(row)
                    log(f"{label:10s} {t.name:17s} {_brief(scenario, row)}")

        for gw in gateways:
            t = next(t for t in targets if t.gateway is gw)
            b = burst(gw.chat_url, gw.token, plan.burst_requests, plan.burst_concurrency)
            audit(t, f"exact burst {plan.burst_requests}@c{plan.burst_concurrency}", b["ok"])
            log(f"exact burst {gw.name}: {b['ok']}/{b['requests']} ok in {b['seconds']} s")
            samples[gw.name]["burst"] = [b]
            memory[gw.name]["after_load"] = rss_kib(gw.pid)

    streams = None
    if "streams" in plan.phases and upstream.kind == "simulator":
        streams = phases.open_streams(
            sup, upstream, gateways, audits, plan.streams, plan.stream_tokens,
            plan.stream_chunk_delay_ms, plan.stream_ramp_s, log,
        )  # fmt: skip
        for gw in gateways:
            memory[gw.name]["after_streams"] = rss_kib(gw.pid)

    profiles = {}
    if plan.profile_s > 0:
        for gw in gateways:
            t = next(t for t in targets if t.gateway is gw)
            profiles[gw.name] = profile(sup, wrk, gw, plan, upstream.kind)
            w = profiles[gw.name].pop("wrk")
            audit(t, "profile load", w["ok"], 16)

    summary = summarise(targets, samples, plan) if "main" in plan.phases else None
    billing = {name: a.summary() for name, a in audits.items()}
    log_issues = {gw.name: log_problems(gw.child.log) for gw in gateways}
    for name, lines in log_issues.items():
        if lines:
            log(f"{name} logged {len(lines)} warning/error line(s), e.g. {lines[0]!r}")
    return {
        "upstream": upstream.kind,
        "targets": [t.name for t in targets],
        "summary": summary,
        "memory_kib": memory,
        "billing": billing,
        "billing_pass": all(b["pass"] or b["checks"] == 0 for b in billing.values()),
        "gateway_log_problems": log_issues,
        "profiles": profiles,
        "streams": streams,
        "samples": samples,
    }


def python_speed_us() -> float:
    """How fast this machine runs plain Python: the best of 5 timings of
    ``sum(range(1000))``, in microseconds (lower is faster). The same CPU
    name can hide machines ~3x apart; this makes runs on different days
    comparable (a gateway's CPU per request scales with it)."""
    import timeit

    timer = timeit.Timer("sum(range(1000))")
    loops = 2_000
    return round(min(timer.repeat(5, loops)) / loops * 1e6, 2)


def log_problems(path: Path, keep: int = 20) -> list[str]:
    """Warning, error and traceback lines a gateway wrote while under load."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    words = ("Traceback", "ERROR", "Error", "WARNING", "Exception", "exception")
    return [line for line in lines if any(w in line for w in words)][:keep]


def _cpu_use(cpu: dict[str, Any]) -> dict[str, Any]:
    """A Meter reading in the main run's terms (cores = CPU seconds ÷ wall seconds)."""
    return {
        "gateway_cpu_util": cpu["gateway_cores"],
        "upstream_cpu_util": cpu["upstream_cores"],
        "gateway_cpu_ms_per_req": cpu.get("gateway_cpu_ms_per_req"),
        "wrk_cpu_util": cpu["client_cores"],
        "database_cpu_util": cpu["database_cores"],
        "other_cpu_util": cpu["other_cores"],
        "cpu": cpu,
    }


def _brief(scenario: str, row: dict[str, Any]) -> str:
    if scenario == "stream":
        return (
            f"ttfb p50 {row['ttfb_p50_ms']:.3f} ms  p99 {row['ttfb_p99_ms']:.3f} ms  "
            f"({row['ok']}/{row['requests']} ok)"
        )
    extra = f"  non-2xx {row['non_2xx']}" if row["non_2xx"] else ""
    return f"{row['rps']:9.0f} req/s  p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms{extra}"


def summarise(
    targets: list[Target], samples: dict[str, dict[str, list[dict[str, Any]]]], plan: Plan
) -> dict[str, Any]:
    """Medians over the repeats, and the gateway-vs-direct comparisons."""
    out: dict[str, Any] = {}
    for t in targets:
        s = samples[t.name]
        m: dict[str, Any] = {
            "lat_c1_p50_ms": median([r["p50_ms"] for r in s["c1"]]),
            "lat_c1_p99_ms": median([r["p99_ms"] for r in s["c1"]]),
            "stream_ttfb_p50_ms": median([r["ttfb_p50_ms"] for r in s["stream"]]),
            "stream_ttfb_p99_ms": median([r["ttfb_p99_ms"] for r in s["stream"]]),
            "stream_total_p50_ms": median([r["total_p50_ms"] for r in s["stream"]]),
            "non_2xx": sum(r.get("non_2xx", 0) for rows in s.values() for r in rows),
        }
        for c in plan.connections:
            rows = s[f"c{c}"]
            m[f"rps_c{c}"] = median([r["rps"] for r in rows])
            m[f"lat_c{c}_p50_ms"] = median([r["p50_ms"] for r in rows])
            m[f"lat_c{c}_p99_ms"] = median([r["p99_ms"] for r in rows])
            m[f"gateway_cpu_util_c{c}"] = median([r.get("gateway_cpu_util") for r in rows])
            m[f"upstream_cpu_util_c{c}"] = median([r.get("upstream_cpu_util") for r in rows])
            m[f"wrk_cpu_util_c{c}"] = median([r.get("wrk_cpu_util") for r in rows])
            m[f"database_cpu_util_c{c}"] = median([r.get("database_cpu_util") for r in rows])
            m[f"other_cpu_util_c{c}"] = median([r.get("other_cpu_util") for r in rows])
            m[f"gateway_cpu_ms_per_req_c{c}"] = median(
                [r.get("gateway_cpu_ms_per_req") for r in rows]
            )
        out[t.name] = m
    direct = out["direct"]
    ceiling = max(direct[f"rps_c{c}"] for c in plan.connections)
    for t in targets:
        if t.gateway is None:
            continue
        m = out[t.name]
        m["added_c1_p50_ms"] = m["lat_c1_p50_ms"] - direct["lat_c1_p50_ms"]
        m["added_c1_p99_ms"] = m["lat_c1_p99_ms"] - direct["lat_c1_p99_ms"]
        m["added_ttfb_p50_ms"] = m["stream_ttfb_p50_ms"] - direct["stream_ttfb_p50_ms"]
        for c in plan.connections:
            m[f"rps_ratio_c{c}"] = m[f"rps_c{c}"] / direct[f"rps_c{c}"]
        best = max(m[f"rps_c{c}"] for c in plan.connections)
        m["upstream_headroom"] = ceiling / best if best else None
    out["upstream_ceiling_rps"] = ceiling
    return out


def profile(sup: Supervisor, wrk: str, gw: Gateway, plan: Plan, upstream: str) -> dict[str, Any]:
    """py-spy the gateway while wrk keeps it busy at concurrency 16, twice:

    - "gil": only the thread holding the GIL, i.e. where the interpreter's
      time goes (robust on a busy machine: at most one sample per tick);
    - "active": every thread py-spy sees as not idle (includes the aiosqlite
      worker threads while in SQLite's C code; on an oversubscribed machine a
      runnable thread waiting for a core also counts as active).
    """
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        raise BenchError("py-spy is missing: pip install py-spy")
    seconds = max(1, round(plan.profile_s))
    log(f"profiling {gw.name} for 2×{seconds} s (py-spy --gil, then all active threads; wrk -c16)")
    load: dict[str, Any] = {}

    def drive() -> None:
        load["wrk"] = run_wrk(
            sup, wrk, gw.chat_url, 16, 2 * seconds + 4, gw.token, plan.wrk_threads
        )

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    time.sleep(1.0)  # let the load ramp up first
    out: dict[str, Any] = {}
    for mode, extra in (("gil", ["--gil"]), ("active", [])):
        raw_path = BENCH_DIR / "results" / f"profile-{upstream}-{gw.db}-{mode}.txt"
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [pyspy, "record", "--pid", str(gw.pid), "--duration", str(seconds),
                "--rate", "200", "--threads", "--format", "raw", "--output", str(raw_path),
                *extra]  # fmt: skip
        sup.run("py-spy", argv, dict(os.environ), timeout=seconds + 60)
        summary = profile_summary.summarise(raw_path.read_text(), top=12)
        print(f"\n--- py-spy {mode}: {gw.name}, upstream {upstream} ---")
        print(profile_summary.render(summary))
        out[mode] = {"raw": str(raw_path.relative_to(BENCH_DIR.parent)), "summary": summary}
    driver.join(2 * seconds + 120)
    if "wrk" not in load:
        raise BenchError("the profiling load did not finish")
    out["wrk"] = load["wrk"]
    out["rps_under_profiler"] = round(load["wrk"]["rps"], 1)
    return out


def environment(
    wrk: str, nginx: str | None, args: argparse.Namespace, plan: Plan, extra_env: dict[str, str]
) -> dict[str, Any]:
    repo = BENCH_DIR.parent
    commit, changed = tree_state(repo)
    dirty = bool(changed)
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version

        tollway_version = version("tollway")
    except Exception:
        tollway_version = "?"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "dirty": dirty,
        "dirty_files": changed,
        "tollway": tollway_version,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python_speed_us": python_speed_us(),
        "kernel": platform.release(),
        "wrk": tool_version([wrk, "-v"]),
        "nginx": tool_version([nginx, "-v"]) if nginx else None,
        "plan": plan.__dict__,
        "gateway_env": extra_env,
        "pg_url": args.pg_url,
    }


def tree_state(repo: Path) -> tuple[str, list[str]]:
    """HEAD and the tracked files with uncommitted changes (bench/ included)."""
    changed = [
        line.split(maxsplit=1)[-1]
        for line in _git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
        if line.strip()
    ]
    return _git(repo, "rev-parse", "HEAD"), changed


def _git(repo: Path, *argv: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, timeout=10)
    except OSError:
        return ""
    return done.stdout.decode().strip()


if __name__ == "__main__":
    sys.exit(main())
