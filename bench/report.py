"""The printed tables (plain text, so they paste into the README as they are)."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

BUSY_WARN_CORES = 0.25  # cores busy with other work before/after the run
HEADROOM_NEEDED = 5.0  # the upstream must be this many times faster than the gateway


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _added(v: float | None) -> str:
    return "" if v is None else f" ({v:+.3f})"


def _rps(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def render_tables(results: dict[str, Any]) -> str:
    meta = results["meta"]
    plan = meta["plan"]
    buf = io.StringIO()
    console = Console(file=buf, width=132, color_system=None, force_terminal=False)
    console.print(
        f"Tollway benchmark  {meta['date']}  commit {meta['commit'][:10]}"
        f"{' (dirty)' if meta['dirty'] else ''}  {meta['cores']} cores  {meta['cpu']}"
        + (
            f"  python sum(range(1000)) {meta['python_speed_us']:g} µs"
            if meta.get("python_speed_us")
            else ""
        )
    )
    console.print(
        f"{'quick' if plan['quick'] else 'full'}: {plan['repeats']} repeat(s), "
        f"{plan['duration_s']:g} s per wrk run, warm-up {plan['warmup_s']:g} s, "
        f"{plan['stream_requests']} streams per TTFB run; medians of the repeats. "
        f"{meta['wrk']}"
    )
    measured = [f for f in meta.get("dirty_files", []) if not f.startswith("bench/")]
    if measured:
        console.print(
            "working tree had uncommitted changes outside bench/ (measured as they were): "
            + ", ".join(measured)
        )
    if meta.get("tree_changed_during_run"):
        changed_after = [f for f in meta.get("dirty_files_after", []) if not f.startswith("bench/")]
        console.print(
            f"WARNING: the source changed during the run (HEAD at the end "
            f"{str(meta.get('commit_after'))[:10]}; uncommitted: {', '.join(changed_after) or '-'}"
            "): gateways started later may run other code"
        )
    before, after = meta.get("background_cores_before"), meta.get("background_cores_after")
    if before is not None:
        warn = (
            "  WARNING: other work shares the cores; numbers are skewed"
            if max(before, after or 0) > BUSY_WARN_CORES
            else ""
        )
        console.print(
            f"background load: {before} cores busy with other work before the run, {after} after"
            f" (load average before {meta.get('loadavg_before', '?')}, after "
            f"{meta.get('loadavg_after', '?')}){warn}"
        )
        if meta.get("waited_for_quiet_s"):
            console.print(f"waited {meta['waited_for_quiet_s']:g} s for the machine to be quiet")
    main_runs = [run for run in results["runs"] if run.get("summary")]
    for run in main_runs:
        s = run["summary"]
        console.print(
            f"\nupstream: {run['upstream']} — its own ceiling {_rps(s['upstream_ceiling_rps'])} "
            f"req/s (direct, best of c={'/'.join(map(str, plan['connections']))})"
        )
        console.print(_run_table(run, plan))
    if main_runs:
        console.print("\nheadline: gateway minus / versus direct, measured in the same run")
        console.print(_headline(results))
    for run in results["runs"]:
        if run.get("streams"):
            _print_streams(console, run["streams"])
    if results.get("scaling"):
        _print_scaling(console, results["scaling"])
    if results.get("idle_memory"):
        _print_idle(console, results["idle_memory"])
    console.print(
        "\ntargets (issue): one gateway worker unless stated, billing on; KB/MB read as KiB/MiB; "
        "verdict: sqlite / postgres"
    )
    console.print(_targets(results))
    for note in results.get("notes", []):
        console.print(f"note: {note}")
    return buf.getvalue().rstrip()


def _run_table(run: dict[str, Any], plan: dict[str, Any]) -> Table:
    s = run["summary"]
    conns = plan["connections"]
    gateways = [t for t in run["targets"] if t != "direct"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("metric")
    table.add_column("direct", justify="right")
    for name in gateways:
        table.add_column(name, justify="right")

    def row(label: str, direct: str, per_gw: Any) -> None:
        table.add_row(label, direct, *(per_gw(s[g], g) for g in gateways))

    d = s["direct"]
    row(
        "latency c=1 p50 ms (added)",
        _ms(d["lat_c1_p50_ms"]),
        lambda m, g: _ms(m["lat_c1_p50_ms"]) + _added(m["added_c1_p50_ms"]),
    )
    row(
        "latency c=1 p99 ms (added)",
        _ms(d["lat_c1_p99_ms"]),
        lambda m, g: _ms(m["lat_c1_p99_ms"]) + _added(m["added_c1_p99_ms"]),
    )
    for c in conns:
        row(
            f"req/s c={c} (gw/direct)",
            _rps(d[f"rps_c{c}"]),
            lambda m, g, c=c: f"{_rps(m[f'rps_c{c}'])} ({m[f'rps_ratio_c{c}']:.3f}×)",
        )
    for c in conns:
        row(
            f"latency c={c} p50 / p99 ms",
            f"{_ms(d[f'lat_c{c}_p50_ms'])} / {_ms(d[f'lat_c{c}_p99_ms'])}",
            lambda m, g, c=c: f"{_ms(m[f'lat_c{c}_p50_ms'])} / {_ms(m[f'lat_c{c}_p99_ms'])}",
        )
    row(
        "stream TTFB p50 ms (added)",
        _ms(d["stream_ttfb_p50_ms"]),
        lambda m, g: _ms(m["stream_ttfb_p50_ms"]) + _added(m["added_ttfb_p50_ms"]),
    )
    row(
        "stream TTFB p99 ms",
        _ms(d["stream_ttfb_p99_ms"]),
        lambda m, g: _ms(m["stream_ttfb_p99_ms"]),
    )
    row(
        "stream complete p50 ms",
        _ms(d["stream_total_p50_ms"]),
        lambda m, g: _ms(m["stream_total_p50_ms"]),
    )
    top = max(conns)
    row(f"gateway CPU at c={top} (cores)", "—", lambda m, g: _num(m[f"gateway_cpu_util_c{top}"], 2))
    row(
        f"gateway CPU ms per request c={top}",
        "—",
        lambda m, g: _num(m[f"gateway_cpu_ms_per_req_c{top}"], 3),
    )
    row(
        f"upstream CPU at c={top} (cores)",
        _num(d[f"upstream_cpu_util_c{top}"], 2),
        lambda m, g: _num(m[f"upstream_cpu_util_c{top}"], 2),
    )
    row(
        f"PostgreSQL backends CPU at c={top}",
        "—",
        lambda m, g: _num(m.get(f"database_cpu_util_c{top}"), 2) if "postgres" in g else "—",
    )
    row(
        f"wrk / other work CPU at c={top}",
        f"{_num(d.get(f'wrk_cpu_util_c{top}'), 2)} / {_num(d.get(f'other_cpu_util_c{top}'), 2)}",
        lambda m, g: (
            f"{_num(m.get(f'wrk_cpu_util_c{top}'), 2)} / {_num(m.get(f'other_cpu_util_c{top}'), 2)}"
        ),
    )
    row("upstream headroom (ceiling/gw)", "—", lambda m, g: _headroom(m["upstream_headroom"]))
    mem = run["memory_kib"]
    row(
        "gateway RSS idle / loaded / peak MiB",
        "—",
        lambda m, g: (
            f"{_mib(mem[g]['idle'].get('VmRSS'))} / "
            f"{_mib(mem[g].get('after_load', {}).get('VmRSS'))} / "
            f"{_mib(mem[g].get('after_load', {}).get('VmHWM'))}"
        ),
    )
    row("non-2xx answers", str(d["non_2xx"]), lambda m, g: str(m["non_2xx"]))
    row("billing exact (records)", "—", lambda m, g: _billing(run["billing"][g]))
    return table


def _headline(results: dict[str, Any]) -> Table:
    conns = results["meta"]["plan"]["connections"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in (
        "upstream",
        "database",
        "added p50 ms",
        "added p99 ms",
        *(f"req/s c={c}" for c in conns),
        "added TTFB ms",
        "RSS MiB",
        "billing",
    ):
        table.add_column(col, justify="left" if col in ("upstream", "database") else "right")
    for run in results["runs"]:
        s = run["summary"]
        if not s:
            continue
        for name in run["targets"]:
            if name == "direct":
                continue
            m = s[name]
            mem = run["memory_kib"][name].get("after_load", {})
            table.add_row(
                run["upstream"],
                name.split("/", 1)[1],
                _ms(m["added_c1_p50_ms"]),
                _ms(m["added_c1_p99_ms"]),
                *(_rps(m[f"rps_c{c}"]) for c in conns),
                _ms(m["added_ttfb_p50_ms"]),
                _mib(mem.get("VmRSS")),
                "PASS" if run["billing"][name]["pass"] else "FAIL",
            )
    return table


def _num(v: float | None, digits: int) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _headroom(v: float | None) -> str:
    if v is None:
        return "—"
    verdict = "ok" if v >= HEADROOM_NEEDED else f"< {HEADROOM_NEEDED:g}×!"
    return f"{v:.1f}× {verdict}"


def _billing(b: dict[str, Any]) -> str:
    word = "PASS" if b["pass"] else f"FAIL {len(b['failures'])}/{b['checks']}"
    return f"{word} ({b['records']:,})"


# --------------------------------------------------------------------------
# The extra phases (phases.py)

# The KB/MB are read as /proc's units (kB there means KiB).
STREAM_KB_TARGET = 50  # KiB of resident memory per open stream
IDLE_MB_TARGET = 80  # MiB resident when idle
BUNCHED_FRAC_OK = 0.01  # at most this share of inter-chunk gaps < 20 ms


def _kib(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _print_streams(console: Console, st: dict[str, Any]) -> None:
    names = list(st["targets"])
    console.print(
        f"\nopen streams: {st['streams']:,} at once (connects spread over {st['ramp_s']:g} s), "
        f"simulator upstream, each {st['tokens']} content chunks one per "
        f"{st['chunk_delay_ms']} ms (~{st['tokens'] * st['chunk_delay_ms'] / 1000:g} s); "
        "gaps = arrival time between consecutive content chunks of a stream, at the client"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")

    def row(label: str, fn: Any) -> None:
        table.add_row(label, *(fn(st["targets"][n], n) for n in names))

    row("complete (200 + [DONE]) / opened", lambda r, n: f"{r['ok']:,} / {r['streams']:,}")
    row("most open at once", lambda r, n: f"{r['max_open']:,}")
    row("all open for (plateau) s", lambda r, n: _kib(r["plateau_s"], 2))
    row(
        "first event p50 / p99 ms",
        lambda r, n: f"{_kib(r['ttfb_ms']['p50'], 1)} / {_kib(r['ttfb_ms']['p99'], 1)}",
    )
    row(
        "content chunks per stream min/max",
        lambda r, n: (
            f"{r['content_chunks_per_stream']['min']:.0f} / "
            f"{r['content_chunks_per_stream']['max']:.0f}"
        ),
    )
    row(
        "gap p1 / p50 / p99 ms",
        lambda r, n: (
            f"{_kib(r['gaps']['p1'])} / {_kib(r['gaps']['p50'])} / {_kib(r['gaps']['p99'])}"
        ),
    )
    row("gap max ms", lambda r, n: _kib(r["gaps"]["max"]))
    row(
        "gaps < 20 ms (bunched)",
        lambda r, n: (
            f"{r['gaps']['below_20ms']:,} / {r['gaps']['count']:,} "
            f"({100 * (r['gaps']['frac_below_20ms'] or 0):.2f} %)"
        ),
    )
    row("streams with a bunched gap", lambda r, n: f"{r['gaps']['streams_with_bunched_gap']:,}")
    row(
        "gateway RSS before / all open / after MiB",
        lambda r, n: (
            "—"
            if "rss_before_kib" not in r
            else f"{_mib(r['rss_before_kib'])} / {_mib(r['rss_plateau_kib'])} / "
            f"{_mib(r.get('rss_after_kib'))}"
        ),
    )
    row(
        "RSS growth per open stream KiB",
        lambda r, n: "—" if "rss_before_kib" not in r else _kib(r["rss_growth_per_stream_kib"]),
    )
    row(
        "RSS left after, per stream KiB",
        lambda r, n: (
            "—" if "rss_after_kib" not in r else _kib(r["rss_after_growth_per_stream_kib"])
        ),
    )
    row(
        "CPU cores: gateway / simulator / client",
        lambda r, n: (
            f"{r['cpu']['gateway_cores']:.2f} / {r['cpu']['upstream_cores']:.2f} / "
            f"{r['cpu']['client_cores']:.2f}"
        ),
    )
    if any("postgres" in n for n in names):
        row(
            "CPU cores: PostgreSQL backends",
            lambda r, n: f"{r['cpu'].get('database_cores', 0):.2f}" if "postgres" in n else "—",
        )
    row("CPU cores: other work on the machine", lambda r, n: f"{r['cpu']['other_cores']:.2f}")
    row(
        "billing exact (records)",
        lambda r, n: (
            "—"
            if "billing" not in r
            else ("PASS" if r["billing"]["pass"] else "FAIL") + f" ({r['billing']['records']:,})"
        ),
    )
    console.print(table)


def _print_scaling(console: Console, sc: dict[str, Any]) -> None:
    n_ind = sc.get("independent_gateways") or 0
    console.print(
        f"\nworker scaling: wrk -t2 -c{sc['connections']} → tollway serve --workers N → "
        f"{sc['upstream']}; median of {sc['repeats']} × {sc['duration_s']:g} s; "
        "target ÷ N=1 ≥ 0.8 N. The "
        f"{sc['cores']} cores are shared by the gateway workers, wrk, {sc['upstream']} and "
        "other work (pg: PostgreSQL's backends; idle: nobody): CPU use in cores (per worker: "
        "busiest first). Placed os: the "
        "scheduler's choice; pinned: worker i on core i (taskset), wrk and the upstream float"
        + (
            f". {n_ind}×1 indep.: {n_ind} separate one-worker gateways, each with its own "
            f"database, loaded at once by {n_ind} wrk (-c{sc['connections'] // n_ind} each; "
            "pinned: gateway i on core i); req/s summed, p99 the worst; its ÷ N=1 is the "
            "machine's ceiling"
            if n_ind
            else ""
        )
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in (
        "db", "placed", "N", "req/s", "÷ N=1", "p99 ms", "gateway",
        "per worker", "wrk", sc["upstream"], "pg", "other", "idle", "ms/req", "billing",
    ):  # fmt: skip
        table.add_column(
            col,
            justify="left" if col in ("db", "placed", "N") else "right",
            no_wrap=True,
        )

    def add(run: dict[str, Any], label: str, m: dict[str, Any], ratio: str, billing: str) -> None:
        errors = m["non_2xx"] + m["socket_errors"]
        table.add_row(
            run["db"],
            run["placement"],
            label,
            _rps(m["rps"]) + (f" ({errors} err)" if errors else ""),
            ratio,
            f"{m['p99_ms']:.0f}",
            f"{m['gateway_cores']:.2f}",
            "+".join(f"{c:.2f}" for c in m["worker_cores"]),
            f"{m['wrk_cores']:.2f}",
            f"{m['upstream_cores']:.2f}",
            f"{m['database_cores']:.2f}" if run["db"] == "postgres" else "—",
            f"{m['other_cores']:.2f}",
            _num(m.get("idle_cores"), 2),
            _ms(m["gateway_cpu_ms_per_req"]),
            billing,
        )

    for run in sc["runs"]:
        for name, m in run["medians"].items():
            ratio = m.get("ratio")
            verdict = ""
            if m["workers"] > 1 and ratio is not None:
                verdict = " PASS" if m["meets_target"] else " FAIL"
            billing = (
                ("PASS" if run["billing"][name]["pass"] else "FAIL") if "billing" in run else "—"
            )
            add(
                run,
                str(m["workers"]),
                m,
                "—" if ratio is None else f"{ratio:.2f}×{verdict}",
                billing,
            )
        ind = run.get("independent")
        if ind:
            billing = "—"
            if "billing" in run:
                ok = all(run["billing"][name]["pass"] for name in ind["gateways"])
                billing = "PASS" if ok else "FAIL"
            ceiling = ind.get("ceiling")
            add(
                run,
                f"{ind['n']}×1 indep.",
                ind,
                "—" if ceiling is None else f"{ceiling:.2f}×",
                billing,
            )
    console.print(table)
    spreads = [
        f"{run['db']}/{run['placement']}: {m['connections_per_worker']}"
        for run in sc["runs"]
        for m in run["medians"].values()
        if m["workers"] > 1 and m.get("connections_per_worker")
    ]
    if spreads:
        console.print(
            f"wrk's {sc['connections']} connections per worker process, mid-run, each repeat: "
            + "; ".join(spreads)
        )
    if any(run.get("independent") for run in sc["runs"]):
        _print_ceiling(console, sc)
    failures = sc.get("startup_failures") or []
    if failures:
        console.print(
            f"GATEWAY PROBLEM: {len(failures)} of {sc.get('fresh_starts', '?')} fresh multi-worker "
            "starts died at start-up (then started on a database one worker had initialised):"
        )
        for f in failures:
            console.print(f"  {f['db']} --workers {f['workers']}: {f['error'][-1]}")


def _print_ceiling(console: Console, sc: dict[str, Any]) -> None:
    """N workers against what N processes sharing nothing get on this machine."""
    n = sc["independent_gateways"]
    target = 0.8 * n
    console.print(
        f"\nscaling against this machine's ceiling, req/s of the same runs: machine ceiling = "
        f"{n}×1 independent ÷ 1 worker, what {n} gateways sharing nothing but the cores reach "
        f"({n:g}× if each had a core to spare; below {target:.1f}× the target is out of reach "
        f"here); shared-state efficiency = {n} workers on one database ÷ {n}×1 independent "
        "(1.00×: sharing the database costs nothing on this machine)"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in (
        "db",
        "placed",
        "1 worker",
        f"{n} workers",
        f"{n}×1 indep. (each)",
        f"{n} workers ÷ 1",
        "machine ceiling",
        "shared-state efficiency",
    ):
        table.add_column(col, justify="left" if col in ("db", "placed") else "right")
    for run in sc["runs"]:
        ind = run.get("independent")
        if not ind:
            continue
        one = next((m for m in run["medians"].values() if m["workers"] == 1), None)
        many = next((m for m in run["medians"].values() if m["workers"] == n), None)
        ratio = many.get("ratio") if many else None
        ceiling = ind.get("ceiling")
        table.add_row(
            run["db"],
            run["placement"],
            _rps(one["rps"]) if one else "—",
            _rps(many["rps"]) if many else "—",
            f"{_rps(ind['rps'])} ({'+'.join(_rps(r) for r in ind['rps_per_gateway'])})",
            "—"
            if ratio is None
            else f"{ratio:.2f}× {'PASS' if many and many['meets_target'] else 'FAIL'}",
            "—"
            if ceiling is None
            else f"{ceiling:.2f}× ({'≥' if ceiling >= target else '<'} {target:.1f}×)",
            _ratio(ind.get("efficiency")),
        )
    console.print(table)


def _ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def _print_idle(console: Console, idle: dict[str, Any]) -> None:
    console.print(
        "\nidle memory: gateway RSS (VmRSS, all its processes) with no traffic, 2 s after it "
        f"answers /health; target ≤ {IDLE_MB_TARGET} MiB (read as /proc's binary units; "
        f"{IDLE_MB_TARGET} MB decimal would be {IDLE_MB_TARGET * 1e6 / 2**20:.1f} MiB)"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("database", "fresh start MiB", "after bootstrap MiB", "restart MiB", "verdict"):
        table.add_column(col, justify="left" if col == "database" else "right")
    for db, r in idle.items():
        worst = max(r["fresh"]["VmRSS"], r["restart"]["VmRSS"])
        table.add_row(
            db,
            _mib1(r["fresh"]["VmRSS"]),
            _mib1(r["bootstrapped"]["VmRSS"]),
            _mib1(r["restart"]["VmRSS"]),
            "PASS" if worst <= IDLE_MB_TARGET * 1024 else "FAIL",
        )
    console.print(table)


def _mib1(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


def _targets(results: dict[str, Any]) -> Table:
    """The issue's targets against this run's numbers (worst over the upstreams)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("target", "required", "sqlite", "postgres", "verdict"):
        table.add_column(col, justify="left" if col in ("target", "required") else "right")
    dbs = ("sqlite", "postgres")
    runs = [r for r in results["runs"] if r.get("summary")]

    def per_db(key: str, worst: Any) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for db in dbs:
            values = [
                r["summary"][f"gateway/{db}"][key]
                for r in runs
                if f"gateway/{db}" in r["summary"]
                and r["summary"][f"gateway/{db}"].get(key) is not None
            ]
            out[db] = worst(values) if values else None
        return out

    def add(
        label: str,
        required: str,
        values: dict[str, Any],
        fmt: Any,
        ok: Any,
        only: tuple[str, ...] = dbs,
    ) -> None:
        present = {db: v for db, v in values.items() if v is not None}
        judged = [("PASS" if ok(present[db]) else "FAIL") for db in only if db in present]
        verdict = " / ".join(judged) if judged else "—"
        if judged and len(only) == 1:
            verdict += f" ({only[0]})"
        table.add_row(label, required, *(fmt(values.get(db)) for db in dbs), verdict)

    ms = lambda v: _ms(v)  # noqa: E731
    if runs:
        conns = results["meta"]["plan"]["connections"]
        add(
            "added latency c=1 p50",
            "≤ 0.5 ms",
            per_db("added_c1_p50_ms", max),
            ms,
            lambda v: v <= 0.5,
        )
        add(
            "added latency c=1 p99",
            "≤ 2 ms",
            per_db("added_c1_p99_ms", max),
            ms,
            lambda v: v <= 2.0,
        )
        for c in conns:
            rps = per_db(f"rps_c{c}", min)
            errors = per_db("non_2xx", max)
            add(
                f"req/s c={c}, no errors",
                "≥ 3,000 (SQLite)",
                {db: (rps[db], errors[db]) if rps[db] is not None else None for db in dbs},
                lambda v: "—" if v is None else _rps(v[0]) + (f" ({v[1]} err)" if v[1] else ""),
                lambda v: v[0] >= 3000 and v[1] == 0,
                only=("sqlite",),
            )
        add(
            "added stream TTFB p50",
            "≤ 1 ms",
            per_db("added_ttfb_p50_ms", max),
            ms,
            lambda v: v <= 1.0,
        )
    streams = {
        name.split("/", 1)[1]: r
        for run in results["runs"]
        if run.get("streams")
        for name, r in run["streams"]["targets"].items()
        if name != "direct"
    }
    if streams:
        n = next(iter(streams.values()))["streams"]
        add(
            f"{n:,} streams open at once",
            "all open, all [DONE]",
            {db: streams[db] for db in dbs if db in streams},
            lambda r: "—" if r is None else f"{r['ok']:,} ok, {r['max_open']:,} open",
            lambda r: r["ok"] == r["streams"] and r["max_open"] == r["streams"],
        )
        add(
            "chunks forwarded as they come",
            f"gaps < 20 ms ≤ {100 * BUNCHED_FRAC_OK:g} %",
            {db: streams[db]["gaps"] for db in dbs if db in streams},
            lambda g: (
                "—"
                if g is None
                else f"{100 * (g['frac_below_20ms'] or 0):.2f} % (p50 {g['p50']:.0f} ms)"
            ),
            lambda g: (g["frac_below_20ms"] or 0) <= BUNCHED_FRAC_OK,
        )
        add(
            "RSS growth per open stream",
            f"≤ {STREAM_KB_TARGET} KiB",
            {db: streams[db].get("rss_growth_per_stream_kib") for db in dbs if db in streams},
            lambda v: "—" if v is None else f"{v:.1f} KiB",
            lambda v: v <= STREAM_KB_TARGET,
        )
    idle = results.get("idle_memory") or {}
    if idle:
        add(
            "idle RSS fresh / restarted",
            f"≤ {IDLE_MB_TARGET} MiB",
            {
                db: (idle[db]["fresh"]["VmRSS"], idle[db]["restart"]["VmRSS"])
                for db in dbs
                if db in idle
            },
            lambda v: "—" if v is None else f"{_mib1(v[0])} / {_mib1(v[1])} MiB",
            lambda v: max(v) <= IDLE_MB_TARGET * 1024,
        )
    sc = results.get("scaling")
    if sc:
        for placement in sc["placements"]:
            for w in sc["workers"]:
                if w == 1:
                    continue
                vals: dict[str, Any] = {}
                for run in sc["runs"]:
                    if run["placement"] != placement:
                        continue
                    for m in run["medians"].values():
                        if m["workers"] == w:
                            vals[run["db"]] = m
                add(
                    f"{w} workers ÷ 1 worker ({placement})",
                    f"≥ {0.8 * w:.1f}×",
                    vals,
                    lambda m: "—" if m is None else f"{m['ratio']:.2f}×",
                    lambda m: m["meets_target"],
                )
            # Informational: the machine's ceiling and how close the workers come to it.
            ceil = {
                run["db"]: run["independent"]
                for run in sc["runs"]
                if run["placement"] == placement and run.get("independent")
            }
            if ceil:
                n = sc.get("independent_gateways") or 0
                table.add_row(
                    f"  ceiling / shared-state eff. ({placement})",
                    f"info ({n}×1 independent)",
                    *(
                        "—"
                        if db not in ceil
                        else f"{_ratio(ceil[db].get('ceiling'))} / "
                        f"{_ratio(ceil[db].get('efficiency'))}"
                        for db in dbs
                    ),
                    "info",
                )
    billing = {db: True for db in dbs}
    seen = set()
    for run in results["runs"]:
        for name, b in run["billing"].items():
            db = name.split("/", 1)[1].split("×")[0]
            if b["checks"]:
                seen.add(db)
                billing[db] = billing[db] and b["pass"]
    for run in (sc or {}).get("runs", []):
        for name, b in run.get("billing", {}).items():
            db = name.split("/", 1)[1].split("×")[0]
            seen.add(db)
            billing[db] = billing[db] and b["pass"]
    add(
        "billing exact after each run",
        "Σ costs = balance drop",
        {db: billing[db] for db in dbs if db in seen},
        lambda v: "—" if v is None else ("PASS" if v else "FAIL"),
        lambda v: v,
    )
    return table
