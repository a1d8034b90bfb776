"""The main phase's figures: medians over the repeats per target, and the
gateway-versus-direct comparisons (added latency, req/s ratios, headroom)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from load import median

if TYPE_CHECKING:
    from phases.main_phase import Target

Samples = dict[str, dict[str, list[dict[str, Any]]]]  # target -> scenario -> rows


def summarise(
    targets: list[Target], samples: Samples, connections: tuple[int, ...]
) -> dict[str, Any]:
    """Medians over the repeats, and the gateway-vs-direct comparisons."""
    out: dict[str, Any] = {t.name: _medians(samples[t.name], connections) for t in targets}
    direct = out["direct"]
    ceiling = max(direct[f"rps_c{c}"] for c in connections)
    for t in targets:
        if t.gateway is not None:
            _compare(out[t.name], direct, ceiling, connections)
    out["upstream_ceiling_rps"] = ceiling
    return out


def _medians(s: dict[str, list[dict[str, Any]]], connections: tuple[int, ...]) -> dict[str, Any]:
    """One target's medians of every scenario's repeats."""
    m: dict[str, Any] = {
        "lat_c1_p50_ms": median([r["p50_ms"] for r in s["c1"]]),
        "lat_c1_p99_ms": median([r["p99_ms"] for r in s["c1"]]),
        "stream_ttfb_p50_ms": median([r["ttfb_p50_ms"] for r in s["stream"]]),
        "stream_ttfb_p99_ms": median([r["ttfb_p99_ms"] for r in s["stream"]]),
        "stream_total_p50_ms": median([r["total_p50_ms"] for r in s["stream"]]),
        "non_2xx": sum(r.get("non_2xx", 0) for rows in s.values() for r in rows),
    }
    for c in connections:
        rows = s[f"c{c}"]
        m[f"rps_c{c}"] = median([r["rps"] for r in rows])
        m[f"lat_c{c}_p50_ms"] = median([r["p50_ms"] for r in rows])
        m[f"lat_c{c}_p99_ms"] = median([r["p99_ms"] for r in rows])
        for key in ("gateway", "upstream", "wrk", "database", "other"):
            m[f"{key}_cpu_util_c{c}"] = median([r.get(f"{key}_cpu_util") for r in rows])
        m[f"gateway_cpu_ms_per_req_c{c}"] = median([r.get("gateway_cpu_ms_per_req") for r in rows])
    return m


def _compare(
    m: dict[str, Any], direct: dict[str, Any], ceiling: float, connections: tuple[int, ...]
) -> None:
    """A gateway's figures against direct's: added latency, req/s ratios, and
    how many times the upstream's ceiling its best req/s is (the headroom)."""
    m["added_c1_p50_ms"] = m["lat_c1_p50_ms"] - direct["lat_c1_p50_ms"]
    m["added_c1_p99_ms"] = m["lat_c1_p99_ms"] - direct["lat_c1_p99_ms"]
    m["added_ttfb_p50_ms"] = m["stream_ttfb_p50_ms"] - direct["stream_ttfb_p50_ms"]
    for c in connections:
        m[f"rps_ratio_c{c}"] = m[f"rps_c{c}"] / direct[f"rps_c{c}"]
    best = max(m[f"rps_c{c}"] for c in connections)
    m["upstream_headroom"] = ceiling / best if best else None
