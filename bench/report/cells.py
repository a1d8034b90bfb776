"""How numbers print in the tables' cells ("—" where there is none)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

HEADROOM_NEEDED = 5.0  # the upstream must be this many times faster than the gateway


def new_table(**options: Any) -> Table:
    """The tables' common look: a rule under the head, no outer padding."""
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, **options)


def ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def added(v: float | None) -> str:
    return "" if v is None else f" ({v:+.3f})"


def rps(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def mib1(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


def num(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def headroom(v: float | None) -> str:
    if v is None:
        return "—"
    verdict = "ok" if v >= HEADROOM_NEEDED else f"< {HEADROOM_NEEDED:g}×!"
    return f"{v:.1f}× {verdict}"


def billing(b: dict[str, Any]) -> str:
    word = "PASS" if b["pass"] else f"FAIL {len(b['failures'])}/{b['checks']}"
    return f"{word} ({b['records']:,})"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
