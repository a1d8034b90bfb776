"""The benchmark's extra phases (each called from run.py):

- idle memory: a fresh gateway's resident memory before any traffic, after
  the bootstrap through /api, and after a restart on the existing database;
- many open streams: N concurrent slow streams through each gateway in front
  of the simulator (and straight to the simulator, for comparison): memory per
  open stream, whether every upstream chunk is forwarded as it arrives,
  every stream complete, billing exact;
- worker scaling: wrk -c64 against `tollway serve --workers N` for each N,
  requests/s versus N × one worker's, with the CPU of every party (gateway
  workers, wrk, the upstream, everything else) so a reader can see who had
  the cores; optionally with the workers pinned one per core (taskset). In
  the same repeats, N independent one-worker gateways (each its own
  database, each its own wrk, the same connections in total): the machine's
  ceiling for N processes that share nothing but the cores, against which the
  N workers sharing one database are set.

Loopback only; every loop is bounded; every process goes through the
Supervisor (own process group, stopped at the end or on Ctrl+C).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from billing import Audit
from load import burst, median, run_wrk
from procs import (
    BENCH_DIR,
    BenchError,
    Child,
    Supervisor,
    children_cpu_seconds,
    gateway_workers,
    group_cpu_seconds,
    group_rss_kib,
    machine_busy_jiffies,
    per_pid_cpu_seconds,
    pids_cpu_seconds,
    pids_with_cmdline,
    pin,
    rss_kib,
    worker_connections,
)
from stack import (
    STREAM_MODEL,
    Gateway,
    Upstream,
    restart_gateway,
    start_gateway,
    stop_gateway,
)
from streams import stream_body

Log = Callable[[str], None]


# --------------------------------------------------------------------------
# CPU accounting: who had the cores during a measurement


class Meter:
    """Δ CPU of the gateway's processes, the upstream's group, this process's
    reaped children (wrk, once it has exited) and the whole machine.

    ``gateway_pgid`` and ``pg_db`` may also be lists: several gateways loaded
    at once (the independent scaling runs) count as one gateway, with every
    gateway's workers in ``gateway_worker_cores`` (in the order given)."""

    def __init__(
        self,
        gateway_pgid: int | list[int] | None,
        upstream_pgid: int | None,
        pg_db: str | list[str] | None = None,
    ) -> None:
        self.gws = _as_list(gateway_pgid)
        self.up = upstream_pgid
        self.pg_dbs = _as_list(pg_db)
        self.db0 = self._db_cpu()
        self.t0 = time.monotonic()
        self.busy0, self.total0 = machine_busy_jiffies()
        self.gw0 = self._gw_cpu()
        self.up0 = group_cpu_seconds(upstream_pgid) if upstream_pgid else 0.0
        self.children0 = children_cpu_seconds()
        self.workers = [pid for pgid in self.gws for pid in gateway_workers(pgid)]

    def _gw_cpu(self) -> dict[int, float]:
        return {pid: s for pgid in self.gws for pid, s in per_pid_cpu_seconds(pgid).items()}

    def _db_cpu(self) -> dict[int, float]:
        return {
            pid: s
            for name in self.pg_dbs
            for pid, s in pids_cpu_seconds(pids_with_cmdline(name)).items()
        }

    def stop(
        self, requests: int | None = None, client_cpu_s: float | None = None
    ) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        busy1, total1 = machine_busy_jiffies()
        cores = os.cpu_count() or 1
        machine = cores * (busy1 - self.busy0) / max(1, total1 - self.total0)
        gw1 = self._gw_cpu()
        gw_delta = {pid: gw1[pid] - self.gw0.get(pid, 0.0) for pid in gw1}
        gw_cpu = sum(gw_delta.values())
        up_cpu = (group_cpu_seconds(self.up) - self.up0) if self.up else 0.0
        client = (
            client_cpu_s if client_cpu_s is not None else children_cpu_seconds() - self.children0
        )
        db_cpu = 0.0
        if self.pg_dbs:
            db1 = self._db_cpu()
            db_cpu = sum(v - self.db0.get(pid, 0.0) for pid, v in db1.items())
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "database_cores": round(db_cpu / wall, 3),
            "gateway_cores": round(gw_cpu / wall, 3),
            "gateway_worker_cores": [
                round(gw_delta.get(pid, 0.0) / wall, 3) for pid in self.workers
            ],
            "upstream_cores": round(up_cpu / wall, 3),
            "client_cores": round(client / wall, 3),
            "machine_busy_cores": round(machine, 3),
            "idle_cores": round(max(0.0, cores - machine), 3),
            "other_cores": round(max(0.0, machine - (gw_cpu + up_cpu + client + db_cpu) / wall), 3),
        }
        if requests:
            out["gateway_cpu_ms_per_req"] = round(1000 * gw_cpu / requests, 4)
        return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --------------------------------------------------------------------------
# Idle memory


def idle_memory(
    sup: Supervisor,
    dbs: list[str],
    pg_url: str,
    extra_env: dict[str, str],
    settle_s: float,
    log: Log,
) -> dict[str, Any]:
    """Per database: a fresh gateway's RSS once it answers /health (no other
    request yet: the first start ran the migrations, in the CLI process before
    it exec'd the server), after the bootstrap (account, credit, channels, key
    through /api), and after a restart on that now existing database."""
    # Channels need a base URL only; nothing is ever sent to it here.
    stub = Upstream("none", None, 9, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for db in dbs:
        readings: dict[str, Any] = {}

        def fresh(gw: Gateway, readings: dict[str, Any] = readings) -> None:
            time.sleep(settle_s)
            readings["fresh"] = _mem(gw)

        t0 = time.monotonic()
        gw = start_gateway(sup, db, stub, pg_url, extra_env, before_bootstrap=fresh)
        try:
            readings["start_s"] = round(time.monotonic() - t0, 2)
            time.sleep(settle_s)
            readings["bootstrapped"] = _mem(gw)
            t1 = time.monotonic()
            restart_gateway(sup, gw)
            readings["restart_s"] = round(time.monotonic() - t1, 2)
            time.sleep(settle_s)
            readings["restart"] = _mem(gw)
        finally:
            stop_gateway(sup, gw)
        out[db] = readings
        log(
            f"idle memory {db}: fresh {_mib(readings['fresh'])} MiB, after bootstrap "
            f"{_mib(readings['bootstrapped'])} MiB, restarted {_mib(readings['restart'])} MiB"
        )
    return out


def _mem(gw: Gateway) -> dict[str, Any]:
    group = group_rss_kib(gw.pid)
    single = rss_kib(gw.pid)
    return {"VmRSS": group["VmRSS"], "VmHWM": single.get("VmHWM"), "processes": group["processes"]}


def _mib(reading: dict[str, Any]) -> str:
    return f"{reading['VmRSS'] / 1024:.1f}"


# --------------------------------------------------------------------------
# Many concurrent open streams


def open_streams(
    sup: Supervisor,
    upstream: Upstream,
    gateways: list[Gateway],
    audits: dict[str, Audit],
    n: int,
    tokens: int,
    chunk_delay_ms: int,
    ramp_s: float,
    log: Log,
) -> dict[str, Any]:
    """N slow streams at once, straight to the simulator and through each gateway."""
    usage = _simulator_usage(upstream, tokens, chunk_delay_ms)
    warm_usage = _simulator_usage(upstream, 3, 10)
    out: dict[str, Any] = {
        "streams": n,
        "tokens": tokens,
        "chunk_delay_ms": chunk_delay_ms,
        "ramp_s": ramp_s,
        "usage_per_stream": {"input_tokens": usage[0], "output_tokens": usage[1]},
        "targets": {},
    }
    log(f"open streams: {n} × ({tokens} chunks, one per {chunk_delay_ms} ms), direct")
    out["targets"]["direct"] = _streams_run(
        sup, upstream, None, upstream.stream_url, "", n, tokens, chunk_delay_ms, ramp_s, log
    )
    for gw in gateways:
        audit = audits[gw.name]
        # Warm the path (first slow stream, lazy imports) before the baseline.
        w = _client(sup, gw.stream_url, gw.token, 20, 3, 10, 0.0, "streams-warm")
        warm = audit.check("open streams warm-up", w["ok"], usage={STREAM_MODEL: warm_usage})
        if not warm["pass"]:
            log(f"  BILLING FAIL {gw.name} open streams warm-up: {warm}")
        log(f"open streams: {n} through {gw.name}")
        row = _streams_run(
            sup, upstream, gw, gw.stream_url, gw.token, n, tokens, chunk_delay_ms, ramp_s, log
        )
        check = audit.check(f"open streams {n}", row["ok"], usage={STREAM_MODEL: usage})
        if not check["pass"]:
            log(f"  BILLING FAIL {gw.name} open streams: {check}")
        row["billing"] = check
        time.sleep(1.0)
        row["rss_after_kib"] = group_rss_kib(gw.pid)["VmRSS"]
        row["rss_after_growth_per_stream_kib"] = round(
            (row["rss_after_kib"] - row["rss_before_kib"]) / n, 2
        )
        out["targets"][gw.name] = row
    return out


def _streams_run(
    sup: Supervisor,
    upstream: Upstream,
    gw: Gateway | None,
    url: str,
    auth: str,
    n: int,
    tokens: int,
    chunk_delay_ms: int,
    ramp_s: float,
    log: Log,
) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    before = None
    if gw is not None:
        time.sleep(1.0)
        before = group_rss_kib(gw.pid)["VmRSS"]
    meter = Meter(gw.pid if gw else None, upstream.child.pid, _pg_name(gw))

    def sample() -> None:
        if gw is not None:
            samples.append((time.monotonic(), group_rss_kib(gw.pid)["VmRSS"]))

    result = _client(
        sup, url, auth, n, tokens, chunk_delay_ms, ramp_s, "streams-client", during=sample
    )
    cpu = meter.stop(client_cpu_s=result["client_cpu_s"])
    g = result["gaps"]
    row: dict[str, Any] = {**result, "cpu": cpu}
    if gw is not None and before is not None:
        lo, hi = result["t_all_open"], result["t_first_end"]
        plateau = [kib for t, kib in samples if lo is not None and hi is not None and lo <= t <= hi]
        row["rss_before_kib"] = before
        row["rss_plateau_kib"] = int(statistics.median(plateau)) if plateau else None
        row["rss_plateau_samples"] = len(plateau)
        row["rss_peak_kib"] = max((kib for _, kib in samples), default=None)
        row["rss_growth_per_stream_kib"] = (
            round((row["rss_plateau_kib"] - before) / n, 2) if plateau else None
        )
        row["rss_samples"] = [(round(t - result["t_start"], 2), kib) for t, kib in samples]
    log(
        f"  {result['ok']}/{n} complete, max {result['max_open']} open, plateau "
        f"{_fmt(result['plateau_s'], 1)} s; gaps p50 {_fmt(g['p50'], 1)} ms, max "
        f"{_fmt(g['max'], 1)} ms, < 20 ms: {g['below_20ms']}/{g['count']}"
        + (
            f"; RSS {before / 1024:.1f} → {_fmt((row['rss_plateau_kib'] or 0) / 1024, 1)} MiB "
            f"({_fmt(row['rss_growth_per_stream_kib'], 1)} KiB/stream)"
            if gw is not None and before is not None
            else ""
        )
    )
    return row


def _client(
    sup: Supervisor,
    url: str,
    auth: str,
    n: int,
    tokens: int,
    chunk_delay_ms: int,
    ramp_s: float,
    name: str,
    during: Callable[[], None] | None = None,
    grace_s: float = 60.0,
) -> dict[str, Any]:
    """Run bench/streams.py as a child process; ``during`` is called every 0.2 s."""
    out_path = sup.workdir / f"{name}-{time.monotonic_ns()}.json"
    argv = [
        sys.executable,
        str(BENCH_DIR / "streams.py"),
        "--url", url,
        "--auth", auth,
        "--streams", str(n),
        "--tokens", str(tokens),
        "--chunk-delay-ms", str(chunk_delay_ms),
        "--ramp-s", str(ramp_s),
        "--grace-s", str(grace_s),
        "--out", str(out_path),
    ]  # fmt: skip
    child: Child = sup.start(name, argv)
    deadline = time.monotonic() + ramp_s + tokens * chunk_delay_ms / 1000 + grace_s + 30
    while child.alive():
        if time.monotonic() > deadline:
            sup.stop(child)
            raise BenchError(f"{name} did not finish in time:\n{child.log_tail()}")
        if during is not None:
            during()
        time.sleep(0.2)
    sup.stop(child)  # reaps it (and anything left in its group)
    if child.popen.returncode != 0 or not out_path.exists():
        raise BenchError(f"{name} failed (exit {child.popen.returncode}):\n{child.log_tail()}")
    return json.loads(out_path.read_text())


def _simulator_usage(upstream: Upstream, tokens: int, chunk_delay_ms: int) -> tuple[int, int]:
    """What the simulator reports for that prompt: the same request, non-streaming
    (no chunks, so no chunk delay)."""
    body = json.loads(stream_body(tokens, chunk_delay_ms))
    body["stream"] = False
    request = urllib.request.Request(
        upstream.chat_url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        usage = json.loads(resp.read())["usage"]
    return int(usage["prompt_tokens"]), int(usage["completion_tokens"])


def _fmt(v: float | None, digits: int) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


# --------------------------------------------------------------------------
# Worker scaling


def worker_scaling(
    sup: Supervisor,
    upstream: Upstream,
    dbs: list[str],
    workers: list[int],
    placements: list[str],
    wrk: str,
    connections: int,
    duration_s: float,
    warmup_s: float,
    repeats: int,
    wrk_threads: int,
    burst_requests: int,
    pg_url: str,
    extra_env: dict[str, str],
    started: list[Gateway],
    log: Log,
) -> dict[str, Any]:
    """Per database: `--workers N` for each N, and N independent one-worker
    gateways (N = the largest of ``workers``), each with its own database,
    loaded at once by N wrk processes: what N processes sharing nothing but
    the cores achieve on this machine, the ceiling for any shared design."""
    cores = os.cpu_count() or 1
    n_ind = max(workers)
    if n_ind > 1 and connections < n_ind:
        raise BenchError(f"{connections} connections cannot be split over {n_ind} gateways")
    out: dict[str, Any] = {
        "upstream": upstream.kind,
        "connections": connections,
        "duration_s": duration_s,
        "repeats": repeats,
        "workers": workers,
        "placements": placements,
        "cores": cores,
        "independent_gateways": n_ind if n_ind > 1 else 0,
        "runs": [],
        "startup_failures": [],
        "fresh_starts": 0,
    }
    for db in dbs:
        counts = ", ".join(map(str, workers))
        log(f"worker scaling on {db}: starting gateways with --workers {counts}")
        gws: list[Gateway] = []
        independent: list[Gateway] = []
        try:
            for w in workers:
                if w > 1:
                    out["fresh_starts"] += 1
                try:
                    gw = start_gateway(
                        sup, db, upstream, pg_url, extra_env, workers=w, label=f"{db}×{w}"
                    )
                except BenchError as exc:
                    if w == 1:
                        raise
                    # A fresh database with N workers: they may race to create the
                    # first admin and one dies at start-up. Record it, then start
                    # on a database that one worker initialised first.
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    out["startup_failures"].append(
                        {"db": db, "workers": w, "error": lines[:1] + lines[-4:]}
                    )
                    log(f"  {db}×{w} failed to start on a fresh database: {lines[-4:]}")
                    log(f"  retrying {db}×{w} on a database initialised by one worker first")
                    gw = start_gateway(
                        sup, db, upstream, pg_url, extra_env, workers=w, label=f"{db}×{w}",
                        init_with_one_worker=True,
                    )  # fmt: skip
                started.append(gw)
                gws.append(gw)
                _wait_workers(gw)
            if n_ind > 1:
                log(
                    f"worker scaling on {db}: starting {n_ind} independent one-worker "
                    "gateways (each its own database)"
                )
                for i in range(n_ind):
                    gw = start_gateway(
                        sup, db, upstream, pg_url, extra_env, label=f"{db}×1-ind{i + 1}"
                    )
                    started.append(gw)
                    independent.append(gw)
                    _wait_workers(gw)
            audits = {gw.name: Audit.begin(gw) for gw in gws + independent}
            for placement in placements:
                out["runs"].append(
                    _scaling_runs(
                        sup,
                        upstream,
                        gws,
                        independent,
                        audits,
                        placement,
                        wrk,
                        connections,
                        duration_s,
                        warmup_s,
                        repeats,
                        wrk_threads,
                        db,
                        log,
                    )
                )
            bursts = {}
            for gw in gws + independent:
                b = burst(gw.chat_url, gw.token, burst_requests, connections)
                check = audits[gw.name].check(
                    f"exact burst {burst_requests}@c{connections}", b["ok"]
                )
                if not check["pass"]:
                    log(f"  BILLING FAIL {gw.name} burst: {check}")
                bursts[gw.name] = b
                log(f"exact burst {gw.name}: {b['ok']}/{b['requests']} ok in {b['seconds']} s")
            for run in out["runs"]:
                if run["db"] == db:
                    run["bursts"] = bursts
                    run["billing"] = {name: a.summary() for name, a in audits.items()}
                    run["billing_pass"] = all(a.summary()["pass"] for a in audits.values())
                    if run.get("independent"):
                        run["independent"]["billing_pass"] = all(
                            audits[name].summary()["pass"]
                            for name in run["independent"]["gateways"]
                        )
        finally:
            for gw in gws + independent:
                stop_gateway(sup, gw)
                if gw in started:
                    started.remove(gw)
    out["billing_pass"] = all(r.get("billing_pass", False) for r in out["runs"])
    return out


def _wait_workers(gw: Gateway, timeout_s: float = 60.0) -> None:
    """Until all N worker processes exist (uvicorn starts them one by one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(gateway_workers(gw.pid)) >= gw.workers:
            return
        time.sleep(0.2)
    raise BenchError(f"{gw.name}: {gw.workers} worker processes did not appear")


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


def _scaling_runs(
    sup: Supervisor,
    upstream: Upstream,
    gws: list[Gateway],
    independent: list[Gateway],
    audits: dict[str, Audit],
    placement: str,
    wrk: str,
    connections: int,
    duration_s: float,
    warmup_s: float,
    repeats: int,
    wrk_threads: int,
    db: str,
    log: Log,
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    cpu_lists = {gw.name: _place(gw, placement, cores) for gw in gws}
    # Independent gateway i: its one worker on core i (pinned), like worker i of --workers N.
    ind_cpus = [_place(gw, placement, cores, first_core=i)[0] for i, gw in enumerate(independent)]
    ind_conns = _split(connections, len(independent)) if independent else []
    ind_threads = max(1, wrk_threads // len(independent)) if independent else 0
    samples: dict[str, list[dict[str, Any]]] = {gw.name: [] for gw in gws}
    ind_samples: list[dict[str, Any]] = []
    for gw in gws:
        w = run_wrk(sup, wrk, gw.chat_url, connections, warmup_s, gw.token, wrk_threads)
        _audit(audits[gw.name], f"scaling warm-up {placement}", w["ok"], connections, log)
    if independent:
        warm = _wrk_together(sup, wrk, independent, ind_conns, warmup_s, ind_threads)
        for gw, w, c in zip(independent, warm, ind_conns, strict=True):
            _audit(audits[gw.name], f"scaling warm-up {placement}", w["ok"], c, log)
    for rep in range(repeats):
        for gw in gws:  # interleaved
            meter = Meter(gw.pid, upstream.child.pid, _pg_name(gw))
            # Mid-run: how wrk's connections are spread over the worker processes.
            spread: list[list[int]] = []
            probe = threading.Timer(
                duration_s / 2,
                lambda gw=gw, spread=spread: spread.append(worker_connections(gw.pid, gw.port)),
            )
            probe.start()
            row = run_wrk(sup, wrk, gw.chat_url, connections, duration_s, gw.token, wrk_threads)
            probe.join(5)
            row["cpu"] = meter.stop(row["requests"])
            row["connections_per_worker"] = spread[0] if spread else None
            row.pop("raw", None)
            _audit(audits[gw.name], f"scaling {placement} #{rep + 1}", row["ok"], connections, log)
            samples[gw.name].append(row)
            _log_scaling_row(log, placement, rep, gw.name, row, upstream.kind)
        if independent:  # the same repeat, right after: the same noise
            row = _independent_run(sup, upstream, independent, wrk, ind_conns, duration_s,
                                   ind_threads)  # fmt: skip
            for gw, part, c in zip(independent, row["per_gateway"], ind_conns, strict=True):
                _audit(audits[gw.name], f"scaling {placement} #{rep + 1}", part["ok"], c, log)
            ind_samples.append(row)
            _log_scaling_row(
                log, placement, rep, f"{len(independent)}×1 independent", row, upstream.kind,
                extra=" = " + " + ".join(f"{p['rps']:.0f}" for p in row["per_gateway"]),
            )  # fmt: skip
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
    out: dict[str, Any] = {"db": db, "placement": placement, "medians": medians, "samples": samples}
    if independent:
        n = len(independent)
        ind: dict[str, Any] = {
            "gateways": [gw.name for gw in independent],
            "n": n,
            "cpus": ind_cpus,
            "connections_each": ind_conns,
            "wrk_threads_each": ind_threads,
            **_scaling_medians(ind_samples),
            "rps_per_gateway": [
                median([r["per_gateway"][i]["rps"] for r in ind_samples]) for i in range(n)
            ],
        }
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
        out["independent"] = ind
        out["independent_samples"] = ind_samples
    return out


def _independent_run(
    sup: Supervisor,
    upstream: Upstream,
    independent: list[Gateway],
    wrk: str,
    conns: list[int],
    duration_s: float,
    threads: int,
) -> dict[str, Any]:
    """N wrk at once, each against its own one-worker gateway; summed like one
    gateway's row (req/s, requests, errors: sums; latency: the worst gateway's;
    CPU: every gateway's process group, every scratch database, every wrk)."""
    pg = [name for gw in independent if (name := _pg_name(gw))]
    meter = Meter([gw.pid for gw in independent], upstream.child.pid, pg or None)
    spread: list[list[int]] = []

    def probe_all() -> None:
        spread.append([c for gw in independent for c in worker_connections(gw.pid, gw.port)])

    probe = threading.Timer(duration_s / 2, probe_all)
    probe.start()
    parts = _wrk_together(sup, wrk, independent, conns, duration_s, threads)
    probe.join(5)
    for part in parts:
        part.pop("raw", None)
    row: dict[str, Any] = {
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
    row["cpu"] = meter.stop(row["requests"])
    row["connections_per_worker"] = spread[0] if spread else None
    return row


def _scaling_medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one configuration's rows."""
    return {
        "rps": median([r["rps"] for r in rows]),
        "p50_ms": median([r["p50_ms"] for r in rows]),
        "p99_ms": median([r["p99_ms"] for r in rows]),
        "non_2xx": sum(r["non_2xx"] for r in rows),
        "socket_errors": sum(r["socket_errors"] for r in rows),
        "gateway_cores": median([r["cpu"]["gateway_cores"] for r in rows]),
        # Busiest worker first in each repeat, then the median per rank.
        "worker_cores": [
            median([sorted(r["cpu"]["gateway_worker_cores"], reverse=True)[i] for r in rows])
            for i in range(len(rows[0]["cpu"]["gateway_worker_cores"]))
        ],
        "wrk_cores": median([r["cpu"]["client_cores"] for r in rows]),
        "upstream_cores": median([r["cpu"]["upstream_cores"] for r in rows]),
        "database_cores": median([r["cpu"]["database_cores"] for r in rows]),
        "other_cores": median([r["cpu"]["other_cores"] for r in rows]),
        "machine_busy_cores": median([r["cpu"]["machine_busy_cores"] for r in rows]),
        "idle_cores": median([r["cpu"].get("idle_cores") for r in rows]),
        "connections_per_worker": [r.get("connections_per_worker") for r in rows],
        "gateway_cpu_ms_per_req": median([r["cpu"].get("gateway_cpu_ms_per_req") for r in rows]),
    }


def _log_scaling_row(
    log: Log,
    placement: str,
    rep: int,
    name: str,
    row: dict[str, Any],
    upstream: str,
    extra: str = "",
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


def _pg_name(gw: Gateway | None) -> str | None:
    return gw.pg.name if gw is not None and gw.pg is not None else None


def _audit(audit: Audit, phase: str, ok: int, in_flight: int, log: Log) -> None:
    check = audit.check(phase, ok, in_flight)
    if not check["pass"]:
        log(f"  BILLING FAIL {audit.gw.name} {phase}: {check}")
