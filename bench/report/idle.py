"""The idle-memory table: a fresh, a bootstrapped and a restarted gateway."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from report.cells import mib1, new_table, verdict

# The target's MB read as /proc's units (kB there means KiB).
IDLE_MB_TARGET = 80  # MiB resident when idle


def print_idle(console: Console, idle: dict[str, Any]) -> None:
    console.print(
        "\nidle memory: gateway RSS (VmRSS, all its processes) with no traffic, 2 s after it "
        f"answers /health; target ≤ {IDLE_MB_TARGET} MiB (read as /proc's binary units; "
        f"{IDLE_MB_TARGET} MB decimal would be {IDLE_MB_TARGET * 1e6 / 2**20:.1f} MiB)"
    )
    table = new_table()
    for col in ("database", "fresh start MiB", "after bootstrap MiB", "restart MiB", "verdict"):
        table.add_column(col, justify="left" if col == "database" else "right")
    for db, r in idle.items():
        worst = max(r["fresh"]["VmRSS"], r["restart"]["VmRSS"])
        table.add_row(
            db,
            mib1(r["fresh"]["VmRSS"]),
            mib1(r["bootstrapped"]["VmRSS"]),
            mib1(r["restart"]["VmRSS"]),
            verdict(worst <= IDLE_MB_TARGET * 1024),
        )
    console.print(table)
