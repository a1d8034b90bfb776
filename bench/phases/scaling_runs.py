"""One placement's worker-scaling runs: each gateway of the group under
wrk -c64, interleaved, and the N independent one-worker gateways loaded at
once right after in the same repeat; their medians, and the ratios between
them (÷ one worker, the machine's ceiling, shared-state efficiency)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from billing import Audit
from load import median, run_wrk
from procfs import gateway_workers, pin, worker_connections
from procs import BenchError, Supervisor
from progress import log
from stack import Gateway
from upstreams import Upstream

from phases.meter import Meter


@dataclass(frozen=True)
class ScalingLoad:
    """How the scaling phase loads its gateways."""

    wrk: str
    connections: int  # in total, split over the independent gateways
    duration_s: float
    warmup_s: float
    repeats: int
    wrk_threads: int
    burst_requests: int


@dataclass
class ScalingGroup:
    """One database's gateways: one per worker count, and the independent ones."""

    db: str
    gws: list[Gateway]
    independent: list[Gateway]
    audits: dict[str, Audit]


def placement_runs(
    sup: Supervisor, upstream: Upstream, group: ScalingGroup, placement: str, load: ScalingLoad
) -> dict[str, Any]:
    """The group's gateways placed (pinned or floating), warmed up, then
    measured ``load.repeats`` times; the medians and ratios."""
    cores = os.cpu_count() or 1
    gws, independent = group.gws, group.independent
    cpu_lists = {gw.name: _place(gw, placement, cores) for gw in gws}
    # Independent gateway i: its one worker on core i (pinned), like worker i of --workers N.
    ind_cpus = [_place(gw, placement, cores, first_core=i)[0] for i, gw in enumerate(independent)]
    ind_conns = _split(load.connections, len(independent)) if independent else []
    ind_threads = max(1, load.wrk_threads // len(independent)) if independent else 0
    samples: dict[str, list[dict[str, Any]]] = {gw.name: [] for gw in gws}
    ind_samples: list[dict[str, Any]] = []
    _warm_up(sup, group, placement, load, ind_conns, ind_threads)
    for rep in range(load.repeats):
        for gw in gws:  # interleaved
            row = _gateway_run(sup, upstream, gw, load)
            group.audits[gw.name].verify(
                f"scaling {placement} #{rep + 1}", row["ok"], load.connections
            )
            samples[gw.name].append(row)
            _log_scaling_row(placement, rep, gw.name, row, upstream.kind)
        if independent:  # the same repeat, right after: the same noise
            row = _independent_run(sup, upstream, independent, load, ind_conns, ind_threads)
            for gw, part, c in zip(independent, row["per_gateway"], ind_conns, strict=True):
                group.audits[gw.name].verify(f"scaling {placement} #{rep + 1}", part["ok"], c)
            ind_samples.append(row)
            _log_scaling_row(
                placement, rep, f"{len(independent)}×1 independent", row, upstream.kind,
                extra=" = " + " + ".join(f"{p['rps']:.0f}" for p in row["per_gateway"]),
            )  # fmt: skip
    medians = _medians(gws, samples, cpu_lists)
    out: dict[str, Any] = {
        "db": group.db,
        "placement": placement,
        "medians": medians,
        "samples": samples,
    }
    if independent:
        ind = {"cpus": ind_cpus, "connections_each": ind_conns, "wrk_threads_each": ind_threads}
        out["independent"] = _independent_medians(independent, ind, ind_samples, medians)
        out["independent_samples"] = ind_samples
    return out


def _warm_up(
    sup: Supervisor,
    group: ScalingGroup,
    placement: str,
    load: ScalingLoad,
    ind_conns: list[int],
    ind_threads: int,
) -> None:
    for gw in group.gws:
        w = run_wrk(
            sup, load.wrk, gw.chat_url, load.connections, load.warmup_s, gw.token, load.wrk_threads
        )
        group.audits[gw.name].verify(f"scaling warm-up {placement}", w["ok"], load.connections)
    if group.independent:
        warm = _wrk_together(
            sup, load.wrk, group.independent, ind_conns, load.warmup_s, ind_threads
        )
        for gw, w, c in zip(group.independent, warm, ind_conns, strict=True):
            group.audits[gw.name].verify(f"scaling warm-up {placement}", w["ok"], c)


def _gateway_run(
    sup: Supervisor, upstream: Upstream, gw: Gateway, load: ScalingLoad
) -> dict[str, Any]:
    """wrk against one gateway, its CPU metered, and how wrk's connections
    are spread over the worker processes mid-run."""
    meter = Meter(gw.pid, upstream.child.pid, gw.pg_name)
    spread: list[list[int]] = []
    probe = threading.Timer(
        load.duration_s / 2, lambda: spread.append(worker_connections(gw.pid, gw.port))
    )
    probe.start()
    row = run_wrk(
        sup, load.wrk, gw.chat_url, load.connections, load.duration_s, gw.token, load.wrk_threads
    )
    probe.join(5)
    row["cpu"] = meter.stop(row["requests"])
    row["connections_per_worker"] = spread[0] if spread else None
    row.pop("raw", None)
    return row


def _medians(
    gws: list[Gateway],
    samples: dict[str, list[dict[str, Any]]],
    cpu_lists: dict[str, list[str]],
) -> dict[str, Any]:
    """Per gateway: the medians of its repeats, and its ratios to one worker's."""
    medians: dict[str, Any] = {}
    for gw in gws:
        medians[gw.name] = {
            "workers": gw.workers,
            "cpus": cpu_lists[gw.name],
            **_scaling_medians(samples[gw.name]),
        }
    base = next((m for m in medians.values() if m["workers"] == 1), None)
    for m in medians.values():
        if base and base["rps"]:
            m["ratio"] = m["rps"] / base["rps"]
            m["target_ratio"] = 0.8 * m["workers"]
            m["meets_target"] = m["ratio"] >= m["target_ratio"] and m["non_2xx"] == 0
            # What the gateway does with the CPU it got: req/s per gateway core.
            per_core = m["rps"] / m["gateway_cores"] if m["gateway_cores"] else None
            base_per_core = base["rps"] / base["gateway_cores"] if base["gateway_cores"] else None
            m["rps_per_gateway_core"] = per_core
            m["per_core_ratio"] = per_core / base_per_core if per_core and base_per_core else None
    return medians


def _independent_medians(
    independent: list[Gateway],
    placed: dict[str, Any],
    ind_samples: list[dict[str, Any]],
    medians: dict[str, Any],
) -> dict[str, Any]:
    """The independent gateways' medians (``placed``: their cores, connections
    and wrk threads each), the machine's ceiling and the shared-state efficiency;
    the N-worker gateway's medians get ``ratio_to_independent``."""
    n = len(independent)
    ind: dict[str, Any] = {
        "gateways": [gw.name for gw in independent],
        "n": n,
        **placed,
        **_scaling_medians(ind_samples),
        "rps_per_gateway": [
            median([r["per_gateway"][i]["rps"] for r in ind_samples]) for i in range(n)
        ],
    }
    base = next((m for m in medians.values() if m["workers"] == 1), None)
    shared = next((m for m in medians.values() if m["workers"] == n), None)
    # The machine's ceiling for N processes (nothing shared but the cores), in
    # units of one worker; and how close N workers on one database come to it.
    ind["ceiling"] = ind["rps"] / base["rps"] if base and base["rps"] else None
    ind["efficiency"] = shared["rps"] / ind["rps"] if shared and ind["rps"] else None
    ind["target_ratio"] = 0.8 * n
    ind["target_within_ceiling"] = (
        ind["ceiling"] >= ind["target_ratio"] if ind["ceiling"] is not None else None
    )
    if shared is not None:
        shared["ratio_to_independent"] = ind["efficiency"]
    return ind


def _place(gw: Gateway, placement: str, cores: int, first_core: int = 0) -> list[str]:
    """Pin each worker process to its own core (worker i -> core first_core + i,
    mod cores), or let them float on every core again. Returns the CPU list per
    worker."""
    lists = []
    for i, pid in enumerate(gateway_workers(gw.pid)):
        cpus = str((first_core + i) % cores) if placement == "pinned" else f"0-{cores - 1}"
        if not pin(pid, cpus):
            raise BenchError(f"taskset failed for {gw.name} worker {pid}")
        lists.append(cpus)
    return lists


def _split(connections: int, n: int) -> list[int]:
    """``connections`` spread over n wrk processes (the first ones take the rest)."""
    return [connections // n + (1 if i < connections % n else 0) for i in range(n)]


def _wrk_together(
    sup: Supervisor,
    wrk: str,
    gws: list[Gateway],
    connections: list[int],
    duration_s: float,
    threads: int,
) -> list[dict[str, Any]]:
    """One wrk per gateway, all started at the same moment (a barrier), each
    against its own gateway; returns their rows in the order of ``gws``."""
    barrier = threading.Barrier(len(gws))

    def one(gw: Gateway, conns: int) -> dict[str, Any]:
        barrier.wait(timeout=30)
        return run_wrk(sup, wrk, gw.chat_url, conns, duration_s, gw.token, threads)

    pool = ThreadPoolExecutor(max_workers=len(gws))
    try:
        jobs = [pool.submit(one, gw, c) for gw, c in zip(gws, connections, strict=True)]
        return [job.result() for job in jobs]
    finally:
        # Normally all done; on Ctrl+C do not wait for the wrk runs (the
        # Supervisor stops them).
        pool.shutdown(wait=False, cancel_futures=True)


def _independent_run(
    sup: Supervisor,
    upstream: Upstream,
    independent: list[Gateway],
    load: ScalingLoad,
    conns: list[int],
    threads: int,
) -> dict[str, Any]:
    """N wrk at once, each against its own one-worker gateway; summed like one
    gateway's row (req/s, requests, errors: sums; latency: the worst gateway's;
    CPU: every gateway's process group, every scratch database, every wrk)."""
    pg = [name for gw in independent if (name := gw.pg_name)]
    meter = Meter([gw.pid for gw in independent], upstream.child.pid, pg or None)
    spread: list[list[int]] = []

    def probe_all() -> None:
        spread.append([c for gw in independent for c in worker_connections(gw.pid, gw.port)])

    probe = threading.Timer(load.duration_s / 2, probe_all)
    probe.start()
    parts = _wrk_together(sup, load.wrk, independent, conns, load.duration_s, threads)
    probe.join(5)
    for part in parts:
        part.pop("raw", None)
    row = _summed(parts, conns, threads)
    row["cpu"] = meter.stop(row["requests"])
    row["connections_per_worker"] = spread[0] if spread else None
    return row


def _summed(parts: list[dict[str, Any]], conns: list[int], threads: int) -> dict[str, Any]:
    """Several wrk rows as one: counts and rates summed, latency the worst."""
    return {
        "connections": sum(conns),
        "threads": threads * len(parts),
        "duration_s": max(p["duration_s"] for p in parts),
        "requests": sum(p["requests"] for p in parts),
        "non_2xx": sum(p["non_2xx"] for p in parts),
        "ok": sum(p["ok"] for p in parts),
        "socket_errors": sum(p["socket_errors"] for p in parts),
        "rps": sum(p["rps"] for p in parts),
        "ok_rps": sum(p["ok_rps"] for p in parts),
        "p50_ms": max(p["p50_ms"] for p in parts),
        "p99_ms": max(p["p99_ms"] for p in parts),
        "per_gateway": parts,
    }


def _scaling_medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one configuration's rows."""
    cpu = [r["cpu"] for r in rows]
    return {
        "rps": median([r["rps"] for r in rows]),
        "p50_ms": median([r["p50_ms"] for r in rows]),
        "p99_ms": median([r["p99_ms"] for r in rows]),
        "non_2xx": sum(r["non_2xx"] for r in rows),
        "socket_errors": sum(r["socket_errors"] for r in rows),
        "gateway_cores": median([c["gateway_cores"] for c in cpu]),
        # Busiest worker first in each repeat, then the median per rank.
        "worker_cores": [
            median([sorted(c["gateway_worker_cores"], reverse=True)[i] for c in cpu])
            for i in range(len(cpu[0]["gateway_worker_cores"]))
        ],
        "wrk_cores": median([c["client_cores"] for c in cpu]),
        "upstream_cores": median([c["upstream_cores"] for c in cpu]),
        "database_cores": median([c["database_cores"] for c in cpu]),
        "other_cores": median([c["other_cores"] for c in cpu]),
        "machine_busy_cores": median([c["machine_busy_cores"] for c in cpu]),
        "idle_cores": median([c.get("idle_cores") for c in cpu]),
        "connections_per_worker": [r.get("connections_per_worker") for r in rows],
        "gateway_cpu_ms_per_req": median([c.get("gateway_cpu_ms_per_req") for c in cpu]),
    }


def _log_scaling_row(
    placement: str, rep: int, name: str, row: dict[str, Any], upstream: str, extra: str = ""
) -> None:
    c = row["cpu"]
    log(
        f"scaling {placement:6s} #{rep + 1} {name:18s} {row['rps']:7.0f} req/s{extra}  "
        f"gw {c['gateway_cores']:.2f} cores {c['gateway_worker_cores']}  wrk "
        f"{c['client_cores']:.2f}  {upstream} {c['upstream_cores']:.2f}  other "
        f"{c['other_cores']:.2f}  idle {c['idle_cores']:.2f}  connections per worker "
        f"{row['connections_per_worker']}"
        + (f"  non-2xx {row['non_2xx']}" if row["non_2xx"] else "")
    )
