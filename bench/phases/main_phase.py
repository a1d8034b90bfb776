"""The main phase: for the upstream itself ("direct") and each gateway in
front of it, interleaved and repeated after a warm-up, latency at
concurrency 1, throughput at the --connections concurrencies, and streaming
time to first byte; an exact-count burst through each gateway; billing
checked after every run. Then, per upstream, the open streams (simulator
only) and the optional profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billing import Audit
from load import burst, run_wrk, stream_ttfb
from plan import Plan
from procfs import rss_kib
from procs import Supervisor
from progress import log
from stack import Gateway
from upstreams import Upstream

from phases.meter import Meter
from phases.open_streams import StreamLoad, open_streams
from phases.profiling import profile
from phases.summary import summarise


@dataclass
class Target:
    """What load is sent to: the upstream itself, or a gateway in front of it."""

    name: str
    chat_url: str
    stream_url: str
    auth: str
    gateway: Gateway | None = None


@dataclass
class Measurement:
    """One upstream's main phase: its targets, their billing audits, memory
    readings and the rows of every repeat (per target, per scenario)."""

    sup: Supervisor
    upstream: Upstream
    wrk: str
    plan: Plan
    targets: list[Target]
    audits: dict[str, Audit]
    memory: dict[str, dict[str, Any]]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def audit(self, target: Target, phase: str, answered_ok: int, in_flight: int = 0) -> None:
        """Check billing after a run against a gateway (the upstream bills nothing)."""
        if target.gateway is not None:
            self.audits[target.name].verify(phase, answered_ok, in_flight)


def measure(
    sup: Supervisor, upstream: Upstream, gateways: list[Gateway], wrk: str, plan: Plan
) -> dict[str, Any]:
    targets = [Target("direct", upstream.chat_url, upstream.stream_url, "")]
    targets += [Target(gw.name, gw.chat_url, gw.stream_url, gw.token, gw) for gw in gateways]
    m = Measurement(
        sup,
        upstream,
        wrk,
        plan,
        targets,
        audits={gw.name: Audit.begin(gw) for gw in gateways},
        memory={gw.name: {"idle": rss_kib(gw.pid)} for gw in gateways},
        samples={t.name: {} for t in targets},
    )
    if "main" in plan.phases:
        _warm_up(m)
        _repeats(m)
        _bursts(m, gateways)
    streams = None
    if "streams" in plan.phases and upstream.kind == "simulator":
        load = StreamLoad(
            plan.streams, plan.stream_tokens, plan.stream_chunk_delay_ms, plan.stream_ramp_s
        )
        streams = open_streams(sup, upstream, gateways, m.audits, load)
        for gw in gateways:
            m.memory[gw.name]["after_streams"] = rss_kib(gw.pid)
    profiles = _profiles(m, gateways)
    summary = summarise(targets, m.samples, plan.connections) if "main" in plan.phases else None
    return _result(m, gateways, summary, streams, profiles)


def _warm_up(m: Measurement) -> None:
    """Connections, caches, the JIT-less interpreter's first paths."""
    plan = m.plan
    for t in m.targets:
        log(f"warm-up {t.name}")
        w = run_wrk(m.sup, m.wrk, t.chat_url, 16, plan.warmup_s, t.auth, plan.wrk_threads)
        m.audit(t, "warm-up", w["ok"], 16)
        s = stream_ttfb(t.stream_url, t.auth, 20)
        m.audit(t, "warm-up stream", s.ok)


def _repeats(m: Measurement) -> None:
    """Every scenario of every repeat, the targets interleaved, so drift
    hits direct and gateway alike."""
    scenarios = ["c1", *(f"c{c}" for c in m.plan.connections), "stream"]
    for rep in range(m.plan.repeats):
        for scenario in scenarios:
            for t in m.targets:
                label = f"{scenario} #{rep + 1}"
                row = _run(m, t, scenario, label)
                m.samples[t.name].setdefault(scenario, []).append(row)
                log(f"{label:10s} {t.name:17s} {_brief(scenario, row)}")


def _run(m: Measurement, t: Target, scenario: str, label: str) -> dict[str, Any]:
    """One scenario against one target: the stream test, or wrk at cN with CPU metered."""
    plan = m.plan
    if scenario == "stream":
        s = stream_ttfb(t.stream_url, t.auth, plan.stream_requests)
        m.audit(t, label, s.ok)
        return s.summary()
    conns = int(scenario[1:])
    threads = 1 if conns == 1 else plan.wrk_threads
    duration = plan.latency_duration_s if conns == 1 else plan.duration_s
    gw = t.gateway
    meter = Meter(gw.pid if gw else None, m.upstream.child.pid, gw.pg_name if gw else None)
    row = run_wrk(m.sup, m.wrk, t.chat_url, conns, duration, t.auth, threads)
    row.update(_cpu_use(meter.stop(row["requests"])))
    m.audit(t, label, row["ok"], conns)
    return row


def _bursts(m: Measurement, gateways: list[Gateway]) -> None:
    """An exact-count burst through each gateway; its memory after all load."""
    plan = m.plan
    for gw in gateways:
        t = next(t for t in m.targets if t.gateway is gw)
        b = burst(gw.chat_url, gw.token, plan.burst_requests, plan.burst_concurrency)
        m.audit(t, f"exact burst {plan.burst_requests}@c{plan.burst_concurrency}", b["ok"])
        log(f"exact burst {gw.name}: {b['ok']}/{b['requests']} ok in {b['seconds']} s")
        m.samples[gw.name]["burst"] = [b]
        m.memory[gw.name]["after_load"] = rss_kib(gw.pid)


def _profiles(m: Measurement, gateways: list[Gateway]) -> dict[str, Any]:
    """py-spy each gateway under load (--profile), its load's billing checked."""
    profiles: dict[str, Any] = {}
    if m.plan.profile_s <= 0:
        return profiles
    for gw in gateways:
        t = next(t for t in m.targets if t.gateway is gw)
        profiles[gw.name] = profile(m.sup, m.wrk, gw, m.plan, m.upstream.kind)
        w = profiles[gw.name].pop("wrk")
        m.audit(t, "profile load", w["ok"], 16)
    return profiles


def _result(
    m: Measurement,
    gateways: list[Gateway],
    summary: dict[str, Any] | None,
    streams: dict[str, Any] | None,
    profiles: dict[str, Any],
) -> dict[str, Any]:
    billing = {name: a.summary() for name, a in m.audits.items()}
    log_issues = {gw.name: log_problems(gw.child.log) for gw in gateways}
    for name, lines in log_issues.items():
        if lines:
            log(f"{name} logged {len(lines)} warning/error line(s), e.g. {lines[0]!r}")
    return {
        "upstream": m.upstream.kind,
        "targets": [t.name for t in m.targets],
        "summary": summary,
        "memory_kib": m.memory,
        "billing": billing,
        "billing_pass": all(b["pass"] or b["checks"] == 0 for b in billing.values()),
        "gateway_log_problems": log_issues,
        "profiles": profiles,
        "streams": streams,
        "samples": m.samples,
    }


def log_problems(path: Path, keep: int = 20) -> list[str]:
    """Warning, error and traceback lines a gateway wrote while under load."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    words = ("Traceback", "ERROR", "Error", "WARNING", "Exception", "exception")
    return [line for line in lines if any(w in line for w in words)][:keep]


def _cpu_use(cpu: dict[str, Any]) -> dict[str, Any]:
    """A Meter reading in the main run's terms (cores = CPU seconds ÷ wall seconds)."""
    return {
        "gateway_cpu_util": cpu["gateway_cores"],
        "upstream_cpu_util": cpu["upstream_cores"],
        "gateway_cpu_ms_per_req": cpu.get("gateway_cpu_ms_per_req"),
        "wrk_cpu_util": cpu["client_cores"],
        "database_cpu_util": cpu["database_cores"],
        "other_cpu_util": cpu["other_cores"],
        "cpu": cpu,
    }


def _brief(scenario: str, row: dict[str, Any]) -> str:
    if scenario == "stream":
        return (
            f"ttfb p50 {row['ttfb_p50_ms']:.3f} ms  p99 {row['ttfb_p99_ms']:.3f} ms  "
            f"({row['ok']}/{row['requests']} ok)"
        )
    extra = f"  non-2xx {row['non_2xx']}" if row["non_2xx"] else ""
    return f"{row['rps']:9.0f} req/s  p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms{extra}"
