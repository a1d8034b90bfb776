"""The open-streams table: every stream target (direct, each gateway) side by side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from report.cells import mib, new_table, num

Cell = Callable[[dict[str, Any], str], str]  # (a target's row, its name) -> cell


def print_streams(console: Console, st: dict[str, Any]) -> None:
    console.print(
        f"\nopen streams: {st['streams']:,} at once (connects spread over {st['ramp_s']:g} s), "
        f"simulator upstream, each {st['tokens']} content chunks one per "
        f"{st['chunk_delay_ms']} ms (~{st['tokens'] * st['chunk_delay_ms'] / 1000:g} s); "
        "gaps = arrival time between consecutive content chunks of a stream, at the client"
    )
    names = list(st["targets"])
    table = new_table()
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")

    def row(label: str, cell: Cell) -> None:
        table.add_row(label, *(cell(st["targets"][n], n) for n in names))

    for label, cell in (*_STREAM_ROWS, *_MEMORY_ROWS):
        row(label, cell)
    _cpu_and_billing_rows(row, names)
    console.print(table)


def _gaps(r: dict[str, Any], n: str) -> str:
    g = r["gaps"]
    return f"{num(g['p1'])} / {num(g['p50'])} / {num(g['p99'])}"


def _bunched(r: dict[str, Any], n: str) -> str:
    g = r["gaps"]
    return f"{g['below_20ms']:,} / {g['count']:,} ({100 * (g['frac_below_20ms'] or 0):.2f} %)"


def _chunks(r: dict[str, Any], n: str) -> str:
    c = r["content_chunks_per_stream"]
    return f"{c['min']:.0f} / {c['max']:.0f}"


_STREAM_ROWS: tuple[tuple[str, Cell], ...] = (
    ("complete (200 + [DONE]) / opened", lambda r, n: f"{r['ok']:,} / {r['streams']:,}"),
    ("most open at once", lambda r, n: f"{r['max_open']:,}"),
    ("all open for (plateau) s", lambda r, n: num(r["plateau_s"], 2)),
    (
        "first event p50 / p99 ms",
        lambda r, n: f"{num(r['ttfb_ms']['p50'], 1)} / {num(r['ttfb_ms']['p99'], 1)}",
    ),
    ("content chunks per stream min/max", _chunks),
    ("gap p1 / p50 / p99 ms", _gaps),
    ("gap max ms", lambda r, n: num(r["gaps"]["max"])),
    ("gaps < 20 ms (bunched)", _bunched),
    ("streams with a bunched gap", lambda r, n: f"{r['gaps']['streams_with_bunched_gap']:,}"),
)


def _rss(r: dict[str, Any], n: str) -> str:
    if "rss_before_kib" not in r:
        return "—"
    return (
        f"{mib(r['rss_before_kib'])} / {mib(r['rss_plateau_kib'])} / {mib(r.get('rss_after_kib'))}"
    )


_MEMORY_ROWS: tuple[tuple[str, Cell], ...] = (
    ("gateway RSS before / all open / after MiB", _rss),
    (
        "RSS growth per open stream KiB",
        lambda r, n: "—" if "rss_before_kib" not in r else num(r["rss_growth_per_stream_kib"]),
    ),
    (
        "RSS left after, per stream KiB",
        lambda r, n: "—" if "rss_after_kib" not in r else num(r["rss_after_growth_per_stream_kib"]),
    ),
)


def _cpu_and_billing_rows(row: Callable[[str, Cell], None], names: list[str]) -> None:
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
    row("billing exact (records)", _billing)


def _billing(r: dict[str, Any], n: str) -> str:
    if "billing" not in r:
        return "—"
    return ("PASS" if r["billing"]["pass"] else "FAIL") + f" ({r['billing']['records']:,})"
