#!/usr/bin/env python3
"""Tollway benchmark: the gateway versus its upstream called directly.

    python bench/run.py            # full run (~8-10 min): both databases, both upstreams
    python bench/run.py --quick    # ~1 min smoke run
    python bench/run.py --db sqlite --upstream nginx --duration 5 --repeats 5
    python bench/run.py --quick --profile 10   # also py-spy the gateway under load

For each upstream (the tollway simulator, and nginx serving fixed answers) it
starts the upstream and one fresh gateway per database, then, for the
upstream itself ("direct") and each gateway, interleaved and repeated:

  - latency at concurrency 1 (wrk -t1 -c1: p50, p99)
  - throughput at concurrency 16 and 64 (wrk -t2 -cN: requests/s)
  - streaming time to first byte (Python client, sequential: p50, p99)

after a warm-up, and quotes the median of the repeats. After every gateway
run it checks that billing stayed exact (see billing.py). It reports the
gateway's resident memory idle and after load, prints a table and writes
everything to bench/results/latest.json. Loopback only; everything it starts
is stopped at the end, Ctrl+C included. See bench/README.md.
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

import profile_summary
from billing import Audit
from load import burst, median, run_wrk, stream_ttfb
from procs import (
    BENCH_DIR,
    BenchError,
    Supervisor,
    cpu_seconds,
    ensure_tool,
    group_cpu_seconds,
    install_signal_handlers,
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
    p.add_argument("--quick", action="store_true", help="short run (~1 min): 1 repeat of 2 s")
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
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print(render_tables(json.loads(args.show.read_text())))
        return 0
    plan = make_plan(args)
    install_signal_handlers()
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
                dbs.remove("postgres")
                notes.append(f"PostgreSQL not reachable at {args.pg_url}: SQLite only")
        results = {
            "meta": environment(wrk, nginx, args, plan, extra_env),
            "notes": notes,
            "runs": [],
        }
        for note in notes:
            print(f"note: {note}")
        results["meta"]["background_cores_before"] = background_load()
        stacks = start_stacks(sup, upstreams, nginx, dbs, args, extra_env, gateways)
        for upstream, gws in stacks:
            log(f"== upstream: {upstream.kind} ==")
            results["runs"].append(measure(sup, upstream, gws, wrk, plan))
            for gw in gws:  # free the cores for the next upstream's runs
                stop_gateway(sup, gw)
                gateways.remove(gw)
            sup.stop(upstream.child)
        results["meta"]["background_cores_after"] = background_load()
        results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print()
        print(render_tables(results))
        print(f"\nresults: {args.out}   ({results['meta']['elapsed_s']} s)")
        code = 0 if all(r["billing_pass"] for r in results["runs"]) else 2
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
                    cpu_before = _cpu(upstream, t)
                    row = run_wrk(sup, wrk, t.chat_url, conns, duration, t.auth, threads)
                    row.update(_cpu_use(cpu_before, _cpu(upstream, t), row))
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

    profiles = {}
    if plan.profile_s > 0:
        for gw in gateways:
            t = next(t for t in targets if t.gateway is gw)
            profiles[gw.name] = profile(sup, wrk, gw, plan, upstream.kind)
            w = profiles[gw.name].pop("wrk")
            audit(t, "profile load", w["ok"], 16)

    summary = summarise(targets, samples, plan)
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
        "billing_pass": all(b["pass"] for b in billing.values()),
        "gateway_log_problems": log_issues,
        "profiles": profiles,
        "samples": samples,
    }


def log_problems(path: Path, keep: int = 20) -> list[str]:
    """Warning, error and traceback lines a gateway wrote while under load."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    words = ("Traceback", "ERROR", "Error", "WARNING", "Exception", "exception")
    return [line for line in lines if any(w in line for w in words)][:keep]


def _cpu(upstream: Upstream, t: Target) -> tuple[float, float, float]:
    gw = cpu_seconds(t.gateway.pid) if t.gateway else 0.0
    return time.monotonic(), gw, group_cpu_seconds(upstream.child.pid)


def _cpu_use(
    before: tuple[float, float, float], after: tuple[float, float, float], row: dict[str, Any]
) -> dict[str, Any]:
    wall = after[0] - before[0]
    gw_cpu, up_cpu = after[1] - before[1], after[2] - before[2]
    return {
        "gateway_cpu_util": round(gw_cpu / wall, 3) if wall else None,
        "upstream_cpu_util": round(up_cpu / wall, 3) if wall else None,
        "gateway_cpu_ms_per_req": round(1000 * gw_cpu / row["requests"], 4)
        if row["requests"] and gw_cpu
        else None,
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
    commit = _git(repo, "rev-parse", "HEAD")
    dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
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
        "tollway": tollway_version,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "wrk": tool_version([wrk, "-v"]),
        "nginx": tool_version([nginx, "-v"]) if nginx else None,
        "plan": plan.__dict__,
        "gateway_env": extra_env,
        "pg_url": args.pg_url,
    }


def _git(repo: Path, *argv: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, timeout=10)
    except OSError:
        return ""
    return done.stdout.decode().strip()


if __name__ == "__main__":
    sys.exit(main())
