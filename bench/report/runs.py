"""The main phase's tables: per upstream, direct beside each gateway; and the
headline, gateway minus / versus direct for every upstream and database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

from report.cells import added, billing, headroom, mib, ms, new_table, num, rps, verdict

PerGateway = Callable[[dict[str, Any], str], str]  # (its medians, its name) -> cell


class _RunTable:
    """Rows of metric, direct's cell, then one cell per gateway."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.s = run["summary"]
        self.direct = self.s["direct"]
        self.gateways = [t for t in run["targets"] if t != "direct"]
        self.table = new_table()
        self.table.add_column("metric")
        self.table.add_column("direct", justify="right")
        for name in self.gateways:
            self.table.add_column(name, justify="right")

    def row(self, label: str, direct: str, per_gw: PerGateway) -> None:
        self.table.add_row(label, direct, *(per_gw(self.s[g], g) for g in self.gateways))


def run_table(run: dict[str, Any], plan: dict[str, Any]) -> Table:
    t = _RunTable(run)
    _latency_rows(t, plan["connections"])
    _stream_rows(t)
    _cpu_rows(t, max(plan["connections"]))
    _memory_and_billing_rows(t)
    return t.table


def _latency_rows(t: _RunTable, conns: list[int]) -> None:
    d = t.direct
    _added_latency_row(t, "latency c=1 p50 ms (added)", "lat_c1_p50_ms", "added_c1_p50_ms")
    _added_latency_row(t, "latency c=1 p99 ms (added)", "lat_c1_p99_ms", "added_c1_p99_ms")
    for c in conns:
        t.row(f"req/s c={c} (gw/direct)", rps(d[f"rps_c{c}"]), _rate_cell(c))
    for c in conns:
        t.row(f"latency c={c} p50 / p99 ms", _latencies(d, c), _latency_cell(c))


def _added_latency_row(t: _RunTable, label: str, key: str, added_key: str) -> None:
    """Milliseconds direct and through each gateway, with what the gateway adds."""
    t.row(label, ms(t.direct[key]), lambda m, g: ms(m[key]) + added(m[added_key]))


def _rate_cell(c: int) -> PerGateway:
    return lambda m, g: f"{rps(m[f'rps_c{c}'])} ({m[f'rps_ratio_c{c}']:.3f}×)"


def _latency_cell(c: int) -> PerGateway:
    return lambda m, g: _latencies(m, c)


def _latencies(m: dict[str, Any], c: int) -> str:
    return f"{ms(m[f'lat_c{c}_p50_ms'])} / {ms(m[f'lat_c{c}_p99_ms'])}"


def _stream_rows(t: _RunTable) -> None:
    d = t.direct
    _added_latency_row(t, "stream TTFB p50 ms (added)", "stream_ttfb_p50_ms", "added_ttfb_p50_ms")
    t.row(
        "stream TTFB p99 ms", ms(d["stream_ttfb_p99_ms"]), lambda m, g: ms(m["stream_ttfb_p99_ms"])
    )
    t.row(
        "stream complete p50 ms",
        ms(d["stream_total_p50_ms"]),
        lambda m, g: ms(m["stream_total_p50_ms"]),
    )


def _cpu_rows(t: _RunTable, top: int) -> None:
    """Who used the cores at the highest concurrency."""
    d = t.direct
    t.row(
        f"gateway CPU at c={top} (cores)", "—", lambda m, g: num(m[f"gateway_cpu_util_c{top}"], 2)
    )
    t.row(
        f"gateway CPU ms per request c={top}",
        "—",
        lambda m, g: num(m[f"gateway_cpu_ms_per_req_c{top}"], 3),
    )
    t.row(
        f"upstream CPU at c={top} (cores)",
        num(d[f"upstream_cpu_util_c{top}"], 2),
        lambda m, g: num(m[f"upstream_cpu_util_c{top}"], 2),
    )
    t.row(
        f"PostgreSQL backends CPU at c={top}",
        "—",
        lambda m, g: num(m.get(f"database_cpu_util_c{top}"), 2) if "postgres" in g else "—",
    )
    t.row(
        f"wrk / other work CPU at c={top}",
        f"{num(d.get(f'wrk_cpu_util_c{top}'), 2)} / {num(d.get(f'other_cpu_util_c{top}'), 2)}",
        lambda m, g: (
            f"{num(m.get(f'wrk_cpu_util_c{top}'), 2)} / {num(m.get(f'other_cpu_util_c{top}'), 2)}"
        ),
    )
    t.row("upstream headroom (ceiling/gw)", "—", lambda m, g: headroom(m["upstream_headroom"]))


def _memory_and_billing_rows(t: _RunTable) -> None:
    mem = t.run["memory_kib"]
    t.row(
        "gateway RSS idle / loaded / peak MiB",
        "—",
        lambda m, g: (
            f"{mib(mem[g]['idle'].get('VmRSS'))} / "
            f"{mib(mem[g].get('after_load', {}).get('VmRSS'))} / "
            f"{mib(mem[g].get('after_load', {}).get('VmHWM'))}"
        ),
    )
    t.row("non-2xx answers", str(t.direct["non_2xx"]), lambda m, g: str(m["non_2xx"]))
    t.row("billing exact (records)", "—", lambda m, g: billing(t.run["billing"][g]))


def headline(results: dict[str, Any]) -> Table:
    conns = results["meta"]["plan"]["connections"]
    table = new_table()
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
                ms(m["added_c1_p50_ms"]),
                ms(m["added_c1_p99_ms"]),
                *(rps(m[f"rps_c{c}"]) for c in conns),
                ms(m["added_ttfb_p50_ms"]),
                mib(mem.get("VmRSS")),
                verdict(run["billing"][name]["pass"]),
            )
    return table
