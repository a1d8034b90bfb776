"""Spend per day by model, as a stacked bar chart laid out for inline SVG.

Pure: integer nano-USD in, pixel geometry out (the template draws it). Money
stays integer; only pixel positions are scaled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from tollway.types import nano_to_usd

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28
TOP_MODELS = 6
OTHER = "other models"
MAX_X_LABELS = 10


@dataclass(frozen=True, slots=True)
class Segment:
    x: int
    y: int
    width: int
    height: int
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: int
    label: str


@dataclass(frozen=True, slots=True)
class DayLabel:
    x: int
    label: str


@dataclass(frozen=True, slots=True)
class LegendEntry:
    series: int
    name: str
    total_usd: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM
    segments: list[Segment] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    days: list[DayLabel] = field(default_factory=list)
    legend: list[LegendEntry] = field(default_factory=list)
    total_usd: str = "0"
    table: list[tuple[str, list[str], str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.segments


def nice_step(max_nano: int, steps: int = 4) -> int:
    """The smallest 1/2/2.5/5 x 10^k step (in nano-USD) with steps x step >= max."""
    if max_nano <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 * steps < max_nano:
        magnitude *= 10
    for numerator, denominator in ((1, 1), (2, 1), (5, 2), (5, 1), (10, 1)):
        step = max(1, magnitude * numerator // denominator)
        if step * steps >= max_nano:
            return step
    return magnitude * 10


def _series(totals: dict[str, int]) -> dict[str, int]:
    """Series index per model: the biggest spenders, the rest as 'other'."""
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    index = {m: i for i, m in enumerate(ranked[:TOP_MODELS])}
    for m in ranked[TOP_MODELS:]:
        index[m] = TOP_MODELS
    return index


def spend_chart(rows: Iterable[tuple[date, str, int]], days: list[date]) -> Chart:
    """Stack each day's spend by model; ``days`` are the x axis, oldest first."""
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for day, model, cost_nano in rows:
        per_day[day][model] += cost_nano
        totals[model] += cost_nano
    chart = Chart()
    if not days:
        return chart
    series = _series(totals)
    names = {i: m for m, i in series.items() if i < TOP_MODELS} | {TOP_MODELS: OTHER}
    by_series: dict[date, dict[int, int]] = {d: _grouped(per_day.get(d, {}), series) for d in days}
    step = nice_step(max((sum(v.values()) for v in by_series.values()), default=0))
    _lay_out(chart, days, by_series, names, step * 4)
    _axes(chart, days, step)
    _legend(chart, totals, series, names)
    _table(chart, days, by_series, names)
    return chart


def _grouped(costs: dict[str, int], series: dict[str, int]) -> dict[int, int]:
    grouped: dict[int, int] = defaultdict(int)
    for model, cost in costs.items():
        grouped[series[model]] += cost
    return dict(grouped)


def _lay_out(
    chart: Chart,
    days: list[date],
    by_series: dict[date, dict[int, int]],
    names: dict[int, str],
    top_nano: int,
) -> None:
    plot_h = chart.plot_bottom - TOP
    slot = (chart.plot_right - chart.plot_left) / len(days)
    bar = max(2, int(slot * 0.7))
    for i, day in enumerate(days):
        x = chart.plot_left + int(i * slot + (slot - bar) / 2)
        base = 0
        for s, cost in sorted(by_series[day].items()):
            if cost <= 0:
                continue
            y0 = chart.plot_bottom - base * plot_h // top_nano
            base += cost
            y1 = chart.plot_bottom - base * plot_h // top_nano
            title = f"{day.isoformat()} · {names[s]} · ${nano_to_usd(cost)}"
            chart.segments.append(Segment(x, y1, bar, max(1, y0 - y1), s, title))


def _axes(chart: Chart, days: list[date], step: int) -> None:
    plot_h = chart.plot_bottom - TOP
    for i in range(5):
        chart.ticks.append(Tick(chart.plot_bottom - i * plot_h // 4, f"${nano_to_usd(step * i)}"))
    slot = (chart.plot_right - chart.plot_left) / len(days)
    every = max(1, -(-len(days) // MAX_X_LABELS))
    for i, day in enumerate(days):
        if i % every == 0:
            x = chart.plot_left + int(i * slot + slot / 2)
            chart.days.append(DayLabel(x, day.strftime("%m-%d")))


def _legend(
    chart: Chart, totals: dict[str, int], series: dict[str, int], names: dict[int, str]
) -> None:
    by_series: dict[int, int] = defaultdict(int)
    for model, total in totals.items():
        by_series[series[model]] += total
    chart.legend = [LegendEntry(s, names[s], nano_to_usd(by_series[s])) for s in sorted(by_series)]
    chart.total_usd = nano_to_usd(sum(totals.values()))


def _table(
    chart: Chart, days: list[date], by_series: dict[date, dict[int, int]], names: dict[int, str]
) -> None:
    """The same numbers as a table, for screen readers and for checking."""
    shown = sorted({s for v in by_series.values() for s in v})
    chart.table = [
        (
            day.isoformat(),
            [nano_to_usd(by_series[day].get(s, 0)) for s in shown],
            nano_to_usd(sum(by_series[day].values())),
        )
        for day in days
        if by_series[day]
    ]
    chart.legend = [e for e in chart.legend if e.series in shown]
