#!/usr/bin/env python3
"""Tollway benchmark: the gateway versus its upstream called directly.

    python bench/run.py            # full run: both databases, both upstreams, all phases
    python bench/run.py --quick    # short smoke run
    python bench/run.py --db sqlite --upstream nginx --duration 5 --repeats 5
    python bench/run.py --quick --profile 10   # also py-spy the gateway under load

For each upstream (the tollway simulator, and nginx serving fixed answers) it
starts the upstream and one fresh gateway per database, then, for the
upstream itself ("direct") and each gateway, interleaved and repeated:

  - latency at concurrency 1 (wrk -t1 -c1: p50, p99)
  - throughput at concurrency 16 and 64 (wrk -t2 -cN: requests/s)
  - streaming time to first byte (Python client, sequential: p50, p99)

after a warm-up, and quotes the median of the repeats. Then (phases/):

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
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import background_load, environment, loadavg, tree_state, wait_quiet
from phases.idle import idle_memory
from phases.main_phase import measure
from phases.scaling import worker_scaling
from phases.scaling_runs import ScalingLoad
from plan import Plan, make_plan, parse_args
from procs import BENCH_DIR, BenchError, Supervisor, install_signal_handlers, raise_fd_limit
from progress import log
from report import render_tables
from scratch_pg import CREATED_DATABASES, pg_available, pg_drop
from stack import Bench, start_stacks
from tools import ensure_tool


@dataclass
class Setup:
    """The tools found, and the upstreams and databases this run can measure."""

    wrk: str
    nginx: str | None
    upstreams: list[str]
    dbs: list[str]
    notes: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print(render_tables(json.loads(args.show.read_text())))
        return 0
    plan = make_plan(args)
    install_signal_handlers()
    raise_fd_limit(max(4096, 3 * plan.streams + 1024))  # inherited by every child
    extra_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    token_fields = {k: int(v) for k, v in (kv.split("=", 1) for kv in args.token_field)}
    workdir = Path(tempfile.mkdtemp(prefix="tollway-bench-"))
    bench = Bench(Supervisor(workdir), args.pg_url, extra_env, token_fields)
    code = 1
    try:
        code = run(bench, args, plan)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        code = 130
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        print(f"logs: {workdir}", file=sys.stderr)
        args.keep_temp = True
    finally:
        clean_up(bench)
        if args.keep_temp:
            print(f"temp dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


def run(bench: Bench, args: argparse.Namespace, plan: Plan) -> int:
    """Every phase of the plan; the results written and printed. Returns the
    exit code: 0 billing exact, 2 a billing check failed."""
    started = time.monotonic()
    setup = prepare(args, plan)
    results: dict[str, Any] = {
        "meta": environment(setup.wrk, setup.nginx, args.pg_url, plan, bench.extra_env),
        "notes": setup.notes,
        "runs": [],
    }
    for note in setup.notes:
        print(f"note: {note}")
    meta = results["meta"]
    if args.wait_quiet > 0:
        meta["waited_for_quiet_s"] = wait_quiet(args.wait_quiet)
    meta["background_cores_before"] = background_load()
    meta["loadavg_before"] = loadavg()
    log(
        f"machine: {meta['background_cores_before']} cores busy with other work, "
        f"load average {meta['loadavg_before']}"
    )
    run_phases(bench, setup, plan, results)
    finish(results, started, args.out)
    billing_ok = all(r["billing_pass"] for r in results["runs"])
    if "scaling" in results:
        billing_ok = billing_ok and results["scaling"]["billing_pass"]
    return 0 if billing_ok else 2


def prepare(args: argparse.Namespace, plan: Plan) -> Setup:
    """wrk (required), nginx and PostgreSQL (optional in some runs): what is
    missing either stops the run or narrows it, with a note."""
    wrk = ensure_tool("wrk", "wrk", not args.no_install)
    if wrk is None:
        raise BenchError("wrk is missing: apt-get install wrk")
    upstreams = ["simulator", "nginx"] if args.upstream == "both" else [args.upstream]
    setup = Setup(wrk, None, upstreams, ["sqlite", "postgres"] if args.db == "both" else [args.db])
    if "nginx" in upstreams:
        setup.nginx = ensure_tool("nginx", "nginx-light", not args.no_install)
        if setup.nginx is None:
            if args.upstream == "nginx":
                raise BenchError("nginx is missing: apt-get install nginx-light")
            upstreams.remove("nginx")
            setup.notes.append("nginx not available: simulator only")
    if "postgres" in setup.dbs:
        why = pg_available(args.pg_url)
        if why is not None:
            if args.db == "postgres":
                raise BenchError(f"PostgreSQL not reachable: {why}")
            if not plan.quick:  # the full run's tables carry PostgreSQL rows
                raise BenchError(
                    f"PostgreSQL not reachable at {args.pg_url} ({why}); the full run "
                    "reports it beside SQLite: start it, set --pg-url, or pass --db sqlite"
                )
            setup.dbs.remove("postgres")
            setup.notes.append(f"PostgreSQL not reachable at {args.pg_url}: SQLite only")
    if "streams" in plan.phases and "simulator" not in upstreams:
        setup.notes.append("open streams need the simulator upstream: skipped")
    return setup


def run_phases(bench: Bench, setup: Setup, plan: Plan, results: dict[str, Any]) -> None:
    """Idle memory first (the quietest machine), then per upstream the main
    phase and open streams, and worker scaling once its own gateways are stopped."""
    dbs = setup.dbs
    if "idle" in plan.phases:
        log("== idle memory ==")
        idle_dbs = [db for db in plan.idle_dbs if db in dbs]
        results["idle_memory"] = idle_memory(bench, idle_dbs, plan.idle_settle_s)
    # Scaling needs the upstream with the most headroom: nginx if it is measured.
    scaling_on = "nginx" if "nginx" in setup.upstreams else setup.upstreams[-1]
    stack_dbs = dbs if {"main", "streams"} & set(plan.phases) else []
    for upstream, gws in start_stacks(bench, setup.upstreams, setup.nginx, stack_dbs):
        log(f"== upstream: {upstream.kind} ==")
        results["runs"].append(measure(bench.sup, upstream, gws, setup.wrk, plan))
        for gw in gws:  # free the cores for the next upstream's runs
            bench.stop_gateway(gw)
        if "scaling" in plan.phases and upstream.kind == scaling_on:
            log(f"== worker scaling (upstream {upstream.kind}) ==")
            load = ScalingLoad(
                setup.wrk, max(plan.connections), plan.scaling_duration_s, plan.warmup_s,
                plan.repeats, plan.wrk_threads, plan.burst_requests,
            )  # fmt: skip
            results["scaling"] = worker_scaling(
                bench, upstream, [db for db in plan.scaling_dbs if db in dbs],
                list(plan.scaling_workers), list(plan.scaling_placements), load,
            )  # fmt: skip
        bench.sup.stop(upstream.child)


def finish(results: dict[str, Any], started: float, out: Path) -> None:
    """The machine and source tree after the run into the results; written, printed."""
    meta = results["meta"]
    meta["background_cores_after"] = background_load()
    meta["loadavg_after"] = loadavg()
    # Others may commit or edit while a long run goes on: gateways started
    # later then ran other code than the first ones.
    after = tree_state(BENCH_DIR.parent)
    meta["tree_changed_during_run"] = after != (meta["commit"], meta["dirty_files"])
    meta["commit_after"], meta["dirty_files_after"] = after
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(render_tables(results))
    print(f"\nresults: {out}   ({meta['elapsed_s']} s)")


def clean_up(bench: Bench) -> None:
    """Stop everything still running and drop every scratch database, whatever happened."""
    sup = bench.sup
    sup.close()
    for gw in list(bench.gateways):  # stops it and drops its PostgreSQL database
        with contextlib.suppress(Exception):
            bench.stop_gateway(gw)
    sup.stop_all()
    for db in list(CREATED_DATABASES):
        with contextlib.suppress(Exception):
            pg_drop(db)


if __name__ == "__main__":
    sys.exit(main())
