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
    )
    console.print(
        f"{'quick' if plan['quick'] else 'full'}: {plan['repeats']} repeat(s), "
        f"{plan['duration_s']:g} s per wrk run, warm-up {plan['warmup_s']:g} s, "
        f"{plan['stream_requests']} streams per TTFB run; medians of the repeats. "
        f"{meta['wrk']}"
    )
    before, after = meta.get("background_cores_before"), meta.get("background_cores_after")
    if before is not None:
        warn = (
            "  WARNING: other work shares the cores; numbers are skewed"
            if max(before, after or 0) > BUSY_WARN_CORES
            else ""
        )
        console.print(f"background load: {before} cores busy before the run, {after} after{warn}")
    for run in results["runs"]:
        s = run["summary"]
        console.print(
            f"\nupstream: {run['upstream']} — its own ceiling {_rps(s['upstream_ceiling_rps'])} "
            f"req/s (direct, best of c={'/'.join(map(str, plan['connections']))})"
        )
        console.print(_run_table(run, plan))
    console.print("\nheadline: gateway minus / versus direct, measured in the same run")
    console.print(_headline(results))
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
