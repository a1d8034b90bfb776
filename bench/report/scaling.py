"""The worker-scaling tables: each configuration's req/s and who used the
cores; then the N workers set against the machine's ceiling (N independent
one-worker gateways)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from report.cells import ms, new_table, num, ratio, rps, verdict


def print_scaling(console: Console, sc: dict[str, Any]) -> None:
    console.print(_legend(sc))
    table = new_table(collapse_padding=True)
    for col in (
        "db", "placed", "N", "req/s", "÷ N=1", "p99 ms", "gateway",
        "per worker", "wrk", sc["upstream"], "pg", "other", "idle", "ms/req", "billing",
    ):  # fmt: skip
        table.add_column(
            col,
            justify="left" if col in ("db", "placed", "N") else "right",
            no_wrap=True,
        )
    for run in sc["runs"]:
        _add_run(table, run)
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
    _print_startup_failures(console, sc)


def _legend(sc: dict[str, Any]) -> str:
    n_ind = sc.get("independent_gateways") or 0
    return (
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


def _add_run(table: Table, run: dict[str, Any]) -> None:
    """A row per worker count, and one for the independent gateways."""
    for name, m in run["medians"].items():
        r = m.get("ratio")
        mark = ""
        if m["workers"] > 1 and r is not None:
            mark = " PASS" if m["meets_target"] else " FAIL"
        billing = verdict(run["billing"][name]["pass"]) if "billing" in run else "—"
        _add_row(table, run, str(m["workers"]), m, "—" if r is None else f"{r:.2f}×{mark}", billing)
    ind = run.get("independent")
    if ind:
        billing = "—"
        if "billing" in run:
            billing = verdict(all(run["billing"][name]["pass"] for name in ind["gateways"]))
        ceiling = ind.get("ceiling")
        ceiling_cell = "—" if ceiling is None else f"{ceiling:.2f}×"
        _add_row(table, run, f"{ind['n']}×1 indep.", ind, ceiling_cell, billing)


def _add_row(
    table: Table, run: dict[str, Any], label: str, m: dict[str, Any], vs_one: str, billing: str
) -> None:
    errors = m["non_2xx"] + m["socket_errors"]
    table.add_row(
        run["db"],
        run["placement"],
        label,
        rps(m["rps"]) + (f" ({errors} err)" if errors else ""),
        vs_one,
        f"{m['p99_ms']:.0f}",
        f"{m['gateway_cores']:.2f}",
        "+".join(f"{c:.2f}" for c in m["worker_cores"]),
        f"{m['wrk_cores']:.2f}",
        f"{m['upstream_cores']:.2f}",
        f"{m['database_cores']:.2f}" if run["db"] == "postgres" else "—",
        f"{m['other_cores']:.2f}",
        num(m.get("idle_cores"), 2),
        ms(m["gateway_cpu_ms_per_req"]),
        billing,
    )


def _print_startup_failures(console: Console, sc: dict[str, Any]) -> None:
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
    table = new_table(collapse_padding=True)
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
        if run.get("independent"):
            table.add_row(*_ceiling_row(run, n, target))
    console.print(table)


def _ceiling_row(run: dict[str, Any], n: int, target: float) -> list[str]:
    ind = run["independent"]
    one = next((m for m in run["medians"].values() if m["workers"] == 1), None)
    many = next((m for m in run["medians"].values() if m["workers"] == n), None)
    shared = many.get("ratio") if many else None
    ceiling = ind.get("ceiling")
    return [
        run["db"],
        run["placement"],
        rps(one["rps"]) if one else "—",
        rps(many["rps"]) if many else "—",
        f"{rps(ind['rps'])} ({'+'.join(rps(r) for r in ind['rps_per_gateway'])})",
        "—"
        if shared is None
        else f"{shared:.2f}× {'PASS' if many and many['meets_target'] else 'FAIL'}",
        "—"
        if ceiling is None
        else f"{ceiling:.2f}× ({'≥' if ceiling >= target else '<'} {target:.1f}×)",
        ratio(ind.get("efficiency")),
    ]
