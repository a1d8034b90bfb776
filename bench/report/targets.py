"""The last table: this run's figures against the targets set for the
gateway, per database (verdict sqlite / postgres), the worst over the upstreams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

from report.cells import mib1, ms, new_table, ratio, rps, verdict
from report.idle import IDLE_MB_TARGET

DBS = ("sqlite", "postgres")
# The targets' KB are read as /proc's units (kB there means KiB).
STREAM_KB_TARGET = 50  # KiB of resident memory per open stream
BUNCHED_FRAC_OK = 0.01  # at most this share of inter-chunk gaps < 20 ms


class _Targets:
    """Rows of target, requirement, a cell per database, and the verdict."""

    def __init__(self) -> None:
        self.table = new_table()
        for col in ("target", "required", "sqlite", "postgres", "verdict"):
            self.table.add_column(col, justify="left" if col in ("target", "required") else "right")

    def add(
        self,
        label: str,
        required: str,
        values: dict[str, Any],
        fmt: Callable[[Any], str],
        ok: Callable[[Any], bool],
        only: tuple[str, ...] = DBS,
    ) -> None:
        """``values`` per database (None: not measured); judged by ``ok`` on
        the databases in ``only``."""
        present = {db: v for db, v in values.items() if v is not None}
        judged = [verdict(ok(present[db])) for db in only if db in present]
        word = " / ".join(judged) if judged else "—"
        if judged and len(only) == 1:
            word += f" ({only[0]})"
        self.table.add_row(label, required, *(fmt(values.get(db)) for db in DBS), word)


def targets(results: dict[str, Any]) -> Table:
    """The targets against this run's numbers (worst over the upstreams)."""
    t = _Targets()
    runs = [r for r in results["runs"] if r.get("summary")]
    if runs:
        _main_targets(t, runs, results["meta"]["plan"]["connections"])
    _stream_targets(t, results)
    idle = results.get("idle_memory") or {}
    if idle:
        t.add(
            "idle RSS fresh / restarted",
            f"≤ {IDLE_MB_TARGET} MiB",
            {
                db: (idle[db]["fresh"]["VmRSS"], idle[db]["restart"]["VmRSS"])
                for db in DBS
                if db in idle
            },
            lambda v: "—" if v is None else f"{mib1(v[0])} / {mib1(v[1])} MiB",
            lambda v: max(v) <= IDLE_MB_TARGET * 1024,
        )
    sc = results.get("scaling")
    if sc:
        for placement in sc["placements"]:
            _scaling_targets(t, sc, placement)
    _billing_target(t, results)
    return t.table


def _per_db(runs: list[dict[str, Any]], key: str, worst: Callable[..., Any]) -> dict[str, Any]:
    """A gateway figure per database, the worst over the upstreams' runs."""
    out: dict[str, float | None] = {}
    for db in DBS:
        values = [
            r["summary"][f"gateway/{db}"][key]
            for r in runs
            if f"gateway/{db}" in r["summary"]
            and r["summary"][f"gateway/{db}"].get(key) is not None
        ]
        out[db] = worst(values) if values else None
    return out


def _main_targets(t: _Targets, runs: list[dict[str, Any]], conns: list[int]) -> None:
    _added_latency_target(t, runs, "added latency c=1 p50", "added_c1_p50_ms", 0.5)
    _added_latency_target(t, runs, "added latency c=1 p99", "added_c1_p99_ms", 2.0)
    for c in conns:
        rates = _per_db(runs, f"rps_c{c}", min)
        errors = _per_db(runs, "non_2xx", max)
        t.add(
            f"req/s c={c}, no errors",
            "≥ 3,000 (SQLite)",
            {db: (rates[db], errors[db]) if rates[db] is not None else None for db in DBS},
            lambda v: "—" if v is None else rps(v[0]) + (f" ({v[1]} err)" if v[1] else ""),
            lambda v: v[0] >= 3000 and v[1] == 0,
            only=("sqlite",),
        )
    _added_latency_target(t, runs, "added stream TTFB p50", "added_ttfb_p50_ms", 1.0)


def _added_latency_target(
    t: _Targets, runs: list[dict[str, Any]], label: str, key: str, limit_ms: float
) -> None:
    """Milliseconds a gateway adds, the worst over the upstreams, at most ``limit_ms``."""
    t.add(label, f"≤ {limit_ms:g} ms", _per_db(runs, key, max), ms, lambda v: v <= limit_ms)


def _stream_targets(t: _Targets, results: dict[str, Any]) -> None:
    streams = {
        name.split("/", 1)[1]: r
        for run in results["runs"]
        if run.get("streams")
        for name, r in run["streams"]["targets"].items()
        if name != "direct"
    }
    if not streams:
        return
    n = next(iter(streams.values()))["streams"]
    t.add(
        f"{n:,} streams open at once",
        "all open, all [DONE]",
        {db: streams[db] for db in DBS if db in streams},
        lambda r: "—" if r is None else f"{r['ok']:,} ok, {r['max_open']:,} open",
        lambda r: r["ok"] == r["streams"] and r["max_open"] == r["streams"],
    )
    t.add(
        "chunks forwarded as they come",
        f"gaps < 20 ms ≤ {100 * BUNCHED_FRAC_OK:g} %",
        {db: streams[db]["gaps"] for db in DBS if db in streams},
        lambda g: (
            "—"
            if g is None
            else f"{100 * (g['frac_below_20ms'] or 0):.2f} % (p50 {g['p50']:.0f} ms)"
        ),
        lambda g: (g["frac_below_20ms"] or 0) <= BUNCHED_FRAC_OK,
    )
    t.add(
        "RSS growth per open stream",
        f"≤ {STREAM_KB_TARGET} KiB",
        {db: streams[db].get("rss_growth_per_stream_kib") for db in DBS if db in streams},
        lambda v: "—" if v is None else f"{v:.1f} KiB",
        lambda v: v <= STREAM_KB_TARGET,
    )


def _scaling_targets(t: _Targets, sc: dict[str, Any], placement: str) -> None:
    """N workers ÷ one worker per N > 1; below, for information, the machine's
    ceiling and how close the workers come to it."""
    runs = [run for run in sc["runs"] if run["placement"] == placement]
    for w in sc["workers"]:
        if w == 1:
            continue
        vals = {run["db"]: m for run in runs for m in run["medians"].values() if m["workers"] == w}
        t.add(
            f"{w} workers ÷ 1 worker ({placement})",
            f"≥ {0.8 * w:.1f}×",
            vals,
            lambda m: "—" if m is None else f"{m['ratio']:.2f}×",
            lambda m: m["meets_target"],
        )
    ceil = {run["db"]: run["independent"] for run in runs if run.get("independent")}
    if ceil:
        n = sc.get("independent_gateways") or 0
        t.table.add_row(
            f"  ceiling / shared-state eff. ({placement})",
            f"info ({n}×1 independent)",
            *(
                "—"
                if db not in ceil
                else f"{ratio(ceil[db].get('ceiling'))} / {ratio(ceil[db].get('efficiency'))}"
                for db in DBS
            ),
            "info",
        )


def _billing_target(t: _Targets, results: dict[str, Any]) -> None:
    """Billing exact after every checked run, main phase and scaling alike."""
    billing = {db: True for db in DBS}
    seen = set()
    for run in results["runs"]:
        for name, b in run["billing"].items():
            db = name.split("/", 1)[1].split("×")[0]
            if b["checks"]:
                seen.add(db)
                billing[db] = billing[db] and b["pass"]
    for run in (results.get("scaling") or {}).get("runs", []):
        for name, b in run.get("billing", {}).items():
            db = name.split("/", 1)[1].split("×")[0]
            seen.add(db)
            billing[db] = billing[db] and b["pass"]
    t.add(
        "billing exact after each run",
        "Σ costs = balance drop",
        {db: billing[db] for db in DBS if db in seen},
        lambda v: "—" if v is None else verdict(v),
        lambda v: v,
    )
