"""The printed report: a header on the run and the machine, then each phase's
tables, then the targets (plain text, so it pastes into the README as it is)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from report.cells import rps
from report.idle import print_idle
from report.open_streams import print_streams
from report.runs import headline, run_table
from report.scaling import print_scaling
from report.targets import targets

BUSY_WARN_CORES = 0.25  # cores busy with other work before/after the run


def render_tables(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=132, color_system=None, force_terminal=False)
    _print_header(console, results["meta"])
    _print_main(console, results)
    for run in results["runs"]:
        if run.get("streams"):
            print_streams(console, run["streams"])
    if results.get("scaling"):
        print_scaling(console, results["scaling"])
    if results.get("idle_memory"):
        print_idle(console, results["idle_memory"])
    console.print(
        "\ntargets (issue): one gateway worker unless stated, billing on; KB/MB read as KiB/MiB; "
        "verdict: sqlite / postgres"
    )
    console.print(targets(results))
    for note in results.get("notes", []):
        console.print(f"note: {note}")
    return buf.getvalue().rstrip()


def _print_header(console: Console, meta: dict[str, Any]) -> None:
    """When, which commit, what machine and plan; what else shared the cores."""
    plan = meta["plan"]
    speed = meta.get("python_speed_us")
    console.print(
        f"Tollway benchmark  {meta['date']}  commit {meta['commit'][:10]}"
        f"{' (dirty)' if meta['dirty'] else ''}  {meta['cores']} cores  {meta['cpu']}"
        + (f"  python sum(range(1000)) {speed:g} µs" if speed else "")
    )
    console.print(
        f"{'quick' if plan['quick'] else 'full'}: {plan['repeats']} repeat(s), "
        f"{plan['duration_s']:g} s per wrk run, warm-up {plan['warmup_s']:g} s, "
        f"{plan['stream_requests']} streams per TTFB run; medians of the repeats. "
        f"{meta['wrk']}"
    )
    _print_tree(console, meta)
    _print_background(console, meta)


def _print_tree(console: Console, meta: dict[str, Any]) -> None:
    """The source measured, if it was not the commit's, or changed meanwhile."""
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


def _print_background(console: Console, meta: dict[str, Any]) -> None:
    before, after = meta.get("background_cores_before"), meta.get("background_cores_after")
    if before is None:
        return
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


def _print_main(console: Console, results: dict[str, Any]) -> None:
    """Per upstream its table, then the headline over all of them."""
    plan = results["meta"]["plan"]
    main_runs = [run for run in results["runs"] if run.get("summary")]
    for run in main_runs:
        s = run["summary"]
        console.print(
            f"\nupstream: {run['upstream']} — its own ceiling {rps(s['upstream_ceiling_rps'])} "
            f"req/s (direct, best of c={'/'.join(map(str, plan['connections']))})"
        )
        console.print(run_table(run, plan))
    if main_runs:
        console.print("\nheadline: gateway minus / versus direct, measured in the same run")
        console.print(headline(results))
