"""Worker scaling: wrk -c64 against `tollway serve --workers N` for each N,
requests/s versus N × one worker's, with the CPU of every party (gateway
workers, wrk, the upstream, everything else) so a reader can see who had the
cores; optionally with the workers pinned one per core (taskset). In the same
repeats, N independent one-worker gateways (each its own database, each its
own wrk, the same connections in total): the machine's ceiling for N
processes that share nothing but the cores, against which the N workers
sharing one database are set."""

from __future__ import annotations

import os
import time
from typing import Any

from billing import Audit
from load import burst
from procfs import gateway_workers
from procs import BenchError
from progress import log
from stack import Bench, Gateway
from upstreams import Upstream

from phases.scaling_runs import ScalingGroup, ScalingLoad, placement_runs


def worker_scaling(
    bench: Bench,
    upstream: Upstream,
    dbs: list[str],
    workers: list[int],
    placements: list[str],
    load: ScalingLoad,
) -> dict[str, Any]:
    """Per database: `--workers N` for each N, and N independent one-worker
    gateways (N = the largest of ``workers``), each with its own database,
    loaded at once by N wrk processes: what N processes sharing nothing but
    the cores achieve on this machine, the ceiling for any shared design."""
    n_ind = max(workers)
    if n_ind > 1 and load.connections < n_ind:
        raise BenchError(f"{load.connections} connections cannot be split over {n_ind} gateways")
    out: dict[str, Any] = {
        "upstream": upstream.kind,
        "connections": load.connections,
        "duration_s": load.duration_s,
        "repeats": load.repeats,
        "workers": workers,
        "placements": placements,
        "cores": os.cpu_count() or 1,
        "independent_gateways": n_ind if n_ind > 1 else 0,
        "runs": [],
        "startup_failures": [],
        "fresh_starts": 0,
    }
    for db in dbs:
        group = ScalingGroup(db, [], [], {})
        try:
            _start_group(bench, upstream, group, workers, out)
            for placement in placements:
                out["runs"].append(placement_runs(bench.sup, upstream, group, placement, load))
            _bursts(group, load, out["runs"])
        finally:
            for gw in group.gws + group.independent:
                bench.stop_gateway(gw)
    out["billing_pass"] = all(r.get("billing_pass", False) for r in out["runs"])
    return out


def _start_group(
    bench: Bench, upstream: Upstream, group: ScalingGroup, workers: list[int], out: dict[str, Any]
) -> None:
    """A gateway per worker count, then N independent one-worker gateways
    (each its own database), all listed in ``group`` as they start."""
    db = group.db
    log(f"worker scaling on {db}: starting gateways with --workers {', '.join(map(str, workers))}")
    for w in workers:
        if w > 1:
            out["fresh_starts"] += 1
        gw = _start_workers(bench, upstream, db, w, out["startup_failures"])
        group.gws.append(gw)
        _wait_workers(gw)
    n_ind = out["independent_gateways"]
    if n_ind > 1:
        log(
            f"worker scaling on {db}: starting {n_ind} independent one-worker "
            "gateways (each its own database)"
        )
        for i in range(n_ind):
            gw = bench.start_gateway(db, upstream, label=f"{db}×1-ind{i + 1}")
            group.independent.append(gw)
            _wait_workers(gw)
    group.audits = {gw.name: Audit.begin(gw) for gw in group.gws + group.independent}


def _start_workers(
    bench: Bench, upstream: Upstream, db: str, w: int, failures: list[dict[str, Any]]
) -> Gateway:
    """`--workers w` on a fresh database; if that start fails, recorded in
    ``failures``, then on a database that one worker initialised first."""
    try:
        return bench.start_gateway(db, upstream, workers=w, label=f"{db}×{w}")
    except BenchError as exc:
        if w == 1:
            raise
        # A fresh database with N workers: they may race to create the first
        # admin and one dies at start-up. Record it, then start on a database
        # that one worker initialised first.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        failures.append({"db": db, "workers": w, "error": lines[:1] + lines[-4:]})
        log(f"  {db}×{w} failed to start on a fresh database: {lines[-4:]}")
        log(f"  retrying {db}×{w} on a database initialised by one worker first")
        return bench.start_gateway(
            db, upstream, workers=w, label=f"{db}×{w}", init_with_one_worker=True
        )


def _bursts(group: ScalingGroup, load: ScalingLoad, runs: list[dict[str, Any]]) -> None:
    """An exact-count burst through every gateway of the group, then the
    group's billing verdict into each of its runs."""
    bursts = {}
    for gw in group.gws + group.independent:
        b = burst(gw.chat_url, gw.token, load.burst_requests, load.connections)
        group.audits[gw.name].verify(
            f"exact burst {load.burst_requests}@c{load.connections}", b["ok"], label="burst"
        )
        bursts[gw.name] = b
        log(f"exact burst {gw.name}: {b['ok']}/{b['requests']} ok in {b['seconds']} s")
    audits = group.audits
    for run in runs:
        if run["db"] != group.db:
            continue
        run["bursts"] = bursts
        run["billing"] = {name: a.summary() for name, a in audits.items()}
        run["billing_pass"] = all(a.summary()["pass"] for a in audits.values())
        if run.get("independent"):
            run["independent"]["billing_pass"] = all(
                audits[name].summary()["pass"] for name in run["independent"]["gateways"]
            )


def _wait_workers(gw: Gateway, timeout_s: float = 60.0) -> None:
    """Until all N worker processes exist (the supervisor starts them one by one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(gateway_workers(gw.pid)) >= gw.workers:
            return
        time.sleep(0.2)
    raise BenchError(f"{gw.name}: {gw.workers} worker processes did not appear")
