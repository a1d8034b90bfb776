"""Many concurrent open streams: N slow streams at once through each gateway
in front of the simulator (and straight to the simulator, for comparison):
memory per open stream, whether every upstream chunk is forwarded as it
arrives, every stream complete, billing exact."""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing import Audit
from procfs import group_rss_kib
from procs import BENCH_DIR, BenchError, Child, Supervisor
from progress import log
from stack import STREAM_MODEL, Gateway
from streams import stream_body
from upstreams import Upstream

from phases.meter import Meter


@dataclass(frozen=True)
class StreamLoad:
    """N streams at once, each ``tokens`` content chunks one per
    ``chunk_delay_ms``, their connects spread evenly over ``ramp_s``."""

    n: int
    tokens: int
    chunk_delay_ms: int
    ramp_s: float


WARM_UP = StreamLoad(20, 3, 10, 0.0)  # the first slow stream, lazy imports


def open_streams(
    sup: Supervisor,
    upstream: Upstream,
    gateways: list[Gateway],
    audits: dict[str, Audit],
    load: StreamLoad,
) -> dict[str, Any]:
    """N slow streams at once, straight to the simulator and through each gateway."""
    n, tokens, delay_ms = load.n, load.tokens, load.chunk_delay_ms
    usage = _simulator_usage(upstream, tokens, delay_ms)
    warm_usage = _simulator_usage(upstream, WARM_UP.tokens, WARM_UP.chunk_delay_ms)
    out: dict[str, Any] = {
        "streams": n,
        "tokens": tokens,
        "chunk_delay_ms": delay_ms,
        "ramp_s": load.ramp_s,
        "usage_per_stream": {"input_tokens": usage[0], "output_tokens": usage[1]},
        "targets": {},
    }
    log(f"open streams: {n} × ({tokens} chunks, one per {delay_ms} ms), direct")
    out["targets"]["direct"] = _streams_run(sup, upstream, None, load)
    for gw in gateways:
        audit = audits[gw.name]
        # Warm the path before the baseline.
        w = _client(sup, gw.stream_url, gw.token, WARM_UP, "streams-warm")
        audit.verify("open streams warm-up", w["ok"], usage={STREAM_MODEL: warm_usage})
        log(f"open streams: {n} through {gw.name}")
        row = _streams_run(sup, upstream, gw, load)
        row["billing"] = audit.verify(
            f"open streams {n}", row["ok"], usage={STREAM_MODEL: usage}, label="open streams"
        )
        time.sleep(1.0)
        row["rss_after_kib"] = group_rss_kib(gw.pid)["VmRSS"]
        row["rss_after_growth_per_stream_kib"] = round(
            (row["rss_after_kib"] - row["rss_before_kib"]) / n, 2
        )
        out["targets"][gw.name] = row
    return out


def _streams_run(
    sup: Supervisor, upstream: Upstream, gw: Gateway | None, load: StreamLoad
) -> dict[str, Any]:
    """One open-streams run against the gateway (None: the simulator itself),
    its memory sampled every 0.2 s meanwhile."""
    url, auth = (gw.stream_url, gw.token) if gw else (upstream.stream_url, "")
    samples: list[tuple[float, int]] = []
    before = None
    if gw is not None:
        time.sleep(1.0)
        before = group_rss_kib(gw.pid)["VmRSS"]
    meter = Meter(gw.pid if gw else None, upstream.child.pid, gw.pg_name if gw else None)

    def sample() -> None:
        if gw is not None:
            samples.append((time.monotonic(), group_rss_kib(gw.pid)["VmRSS"]))

    result = _client(sup, url, auth, load, "streams-client", during=sample)
    cpu = meter.stop(client_cpu_s=result["client_cpu_s"])
    row: dict[str, Any] = {**result, "cpu": cpu}
    if gw is not None and before is not None:
        row.update(_memory(result, samples, before, load.n))
    log(_run_line(result, row, load.n, before if gw is not None else None))
    return row


def _memory(
    result: dict[str, Any], samples: list[tuple[float, int]], before: int, n: int
) -> dict[str, Any]:
    """The gateway's RSS before, while all N were open (the plateau), at its
    peak, and the growth per open stream."""
    lo, hi = result["t_all_open"], result["t_first_end"]
    plateau = [kib for t, kib in samples if lo is not None and hi is not None and lo <= t <= hi]
    plateau_kib = int(statistics.median(plateau)) if plateau else None
    return {
        "rss_before_kib": before,
        "rss_plateau_kib": plateau_kib,
        "rss_plateau_samples": len(plateau),
        "rss_peak_kib": max((kib for _, kib in samples), default=None),
        "rss_growth_per_stream_kib": (
            round((plateau_kib - before) / n, 2) if plateau_kib is not None else None
        ),
        "rss_samples": [(round(t - result["t_start"], 2), kib) for t, kib in samples],
    }


def _run_line(result: dict[str, Any], row: dict[str, Any], n: int, before: int | None) -> str:
    g = result["gaps"]
    line = (
        f"  {result['ok']}/{n} complete, max {result['max_open']} open, plateau "
        f"{_fmt(result['plateau_s'], 1)} s; gaps p50 {_fmt(g['p50'], 1)} ms, max "
        f"{_fmt(g['max'], 1)} ms, < 20 ms: {g['below_20ms']}/{g['count']}"
    )
    if before is None:
        return line
    return line + (
        f"; RSS {before / 1024:.1f} → {_fmt((row['rss_plateau_kib'] or 0) / 1024, 1)} MiB "
        f"({_fmt(row['rss_growth_per_stream_kib'], 1)} KiB/stream)"
    )


def _client(
    sup: Supervisor,
    url: str,
    auth: str,
    load: StreamLoad,
    name: str,
    during: Callable[[], None] | None = None,
    grace_s: float = 60.0,
) -> dict[str, Any]:
    """Run bench/streams.py as a child process; ``during`` is called every 0.2 s."""
    out_path = sup.workdir / f"{name}-{time.monotonic_ns()}.json"
    argv = [
        sys.executable,
        str(BENCH_DIR / "streams.py"),
        "--url", url,
        "--auth", auth,
        "--streams", str(load.n),
        "--tokens", str(load.tokens),
        "--chunk-delay-ms", str(load.chunk_delay_ms),
        "--ramp-s", str(load.ramp_s),
        "--grace-s", str(grace_s),
        "--out", str(out_path),
    ]  # fmt: skip
    child: Child = sup.start(name, argv)
    nominal_s = load.ramp_s + load.tokens * load.chunk_delay_ms / 1000
    deadline = time.monotonic() + nominal_s + grace_s + 30
    while child.alive():
        if time.monotonic() > deadline:
            sup.stop(child)
            raise BenchError(f"{name} did not finish in time:\n{child.log_tail()}")
        if during is not None:
            during()
        time.sleep(0.2)
    sup.stop(child)  # reaps it (and anything left in its group)
    if child.popen.returncode != 0 or not out_path.exists():
        raise BenchError(f"{name} failed (exit {child.popen.returncode}):\n{child.log_tail()}")
    return json.loads(out_path.read_text())


def _simulator_usage(upstream: Upstream, tokens: int, chunk_delay_ms: int) -> tuple[int, int]:
    """What the simulator reports for that prompt: the same request, non-streaming
    (no chunks, so no chunk delay)."""
    body = json.loads(stream_body(tokens, chunk_delay_ms))
    body["stream"] = False
    request = urllib.request.Request(
        upstream.chat_url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        usage = json.loads(resp.read())["usage"]
    return int(usage["prompt_tokens"]), int(usage["completion_tokens"])


def _fmt(v: float | None, digits: int) -> str:
    return "—" if v is None else f"{v:.{digits}f}"
