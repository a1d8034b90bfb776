#!/usr/bin/env python3
"""Many concurrent open streams: a lean load client, run as its own process.

    python bench/streams.py --url http://127.0.0.1:P/v1/chat/completions \
        --auth sk-... --streams 1000 --tokens 50 --chunk-delay-ms 100 --out r.json

Opens N streaming chat completions at once (one TCP connection each, raw
asyncio protocols on uvloop, HTTP parsed by httptools), keeps them all open
while the upstream trickles one content chunk every --chunk-delay-ms, and
records for every stream when each SSE event *arrived* (the moment the bytes
were handed to the protocol: `data_received`). From that:

- how many streams were open at once, and the window in which all N were
  (the plateau: last stream's first event .. first stream's end);
- the gaps between consecutive content chunks of a stream. A gateway that
  forwards each upstream chunk as it arrives keeps them ~chunk-delay apart;
  one that re-buffers delivers them bunched (gaps near 0 ms);
- whether every stream completed (HTTP 200, `data: [DONE]`, clean end).

Loopback only, bounded: a hard deadline ends the run. Timestamps are
time.monotonic() (CLOCK_MONOTONIC, comparable with the parent process's).
Prints a JSON summary to --out (and "ALL_OPEN"/"FIRST_END" lines on stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import re
import resource
import statistics
import sys
import time
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

_CONTENT = re.compile(rb'"content":"[^"]')  # a non-empty content delta
BUNCHED_MS = 20.0  # a gap below this between two content chunks: bunched


def stream_body(tokens: int, chunk_delay_ms: int, model: str = "gpt-4o-mini") -> bytes:
    prompt = f"Say hello [sim:tokens={tokens}] [sim:chunk_delay_ms={chunk_delay_ms}]"
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True},
        separators=(",", ":"),
    ).encode()


class Stream(asyncio.Protocol):
    __slots__ = (
        "_now",
        "buf",
        "complete",
        "content_times",
        "done",
        "error",
        "events",
        "parser",
        "request",
        "saw_done",
        "status",
        "t_end",
        "t_first",
        "t_sent",
        "tracker",
        "transport",
    )  # fmt: skip

    def __init__(self, request: bytes, done: asyncio.Future[None], tracker: Tracker) -> None:
        self.request = request
        self.done = done
        self.tracker = tracker
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.buf = b""
        self.t_sent = 0.0
        self.t_first = 0.0  # first SSE event
        self.t_end = 0.0
        self.events = 0
        self.content_times: list[float] = []
        self.saw_done = False
        self.complete = False
        self.error = ""
        self._now = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.t_sent = time.monotonic()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._now = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(f"parse error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._finish("connection lost before the end" + (f": {exc}" if exc else ""))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.buf += body
        now = self._now
        while True:
            cut = self.buf.find(b"\n\n")
            if cut < 0:
                return
            event, self.buf = self.buf[:cut], self.buf[cut + 2 :]
            self.events += 1
            if self.events == 1:
                self.t_first = now
                self.tracker.opened(now)
            if _CONTENT.search(event):
                self.content_times.append(now)
            elif event.strip() == b"data: [DONE]":
                self.saw_done = True

    def on_message_complete(self) -> None:
        self.complete = True
        self._finish("")

    def _finish(self, error: str) -> None:
        if self.done.done():
            return
        self.t_end = time.monotonic()
        self.error = error
        self.tracker.ended(self.t_end)
        if self.transport is not None:
            self.transport.close()
        self.done.set_result(None)


class Tracker:
    """Announces on stdout when all streams are open, and when the first ends."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.open = 0
        self.ended_first = False

    def opened(self, now: float) -> None:
        self.open += 1
        if self.open == self.n:
            print(f"ALL_OPEN {now:.6f}", flush=True)

    def ended(self, now: float) -> None:
        if not self.ended_first:
            self.ended_first = True
            print(f"FIRST_END {now:.6f}", flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise SystemExit(f"refusing to send load to {host!r}: loopback only")
    request = _request(args, parts.path, host, port)
    loop = asyncio.get_running_loop()
    tracker = Tracker(args.streams)
    streams: list[Stream] = []
    connect_errors: dict[str, int] = {}

    async def one(i: int) -> None:
        if args.ramp_s > 0:  # spread the connects evenly over the ramp
            await asyncio.sleep(args.ramp_s * i / args.streams)
        done: asyncio.Future[None] = loop.create_future()
        stream = Stream(request, done, tracker)
        streams.append(stream)
        try:
            await loop.create_connection(lambda: stream, host, port)
        except OSError as exc:
            key = type(exc).__name__
            connect_errors[key] = connect_errors.get(key, 0) + 1
            stream.error = f"connect: {exc}"
            done.set_result(None)
            return
        await done

    started = time.monotonic()
    deadline = args.ramp_s + args.tokens * args.chunk_delay_ms / 1000 + args.grace_s
    tasks = [asyncio.ensure_future(one(i)) for i in range(args.streams)]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    await _abandon(streams, pending)
    return summarise(streams, args, started, len(pending), connect_errors)


def _request(args: argparse.Namespace, path: str, host: str, port: int) -> bytes:
    """The raw HTTP/1.1 request every stream sends."""
    body = stream_body(args.tokens, args.chunk_delay_ms, args.model)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if args.auth:
        head.append(f"Authorization: Bearer {args.auth}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _abandon(streams: list[Stream], pending: set[asyncio.Task[None]]) -> None:
    """At the deadline: every stream still open is cut off, its task cancelled."""
    for stream in streams:
        if not stream.done.done():
            stream.error = "deadline"
            if stream.transport is not None:
                stream.transport.abort()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def summarise(
    streams: list[Stream],
    args: argparse.Namespace,
    started: float,
    timed_out: int,
    connect_errors: dict[str, int],
) -> dict[str, Any]:
    ok = [s for s in streams if s.status == 200 and s.saw_done and s.complete and not s.error]
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for s in streams:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
        if s.error:
            key = s.error.split(":")[0]
            errors[key] = errors.get(key, 0) + 1
    firsts = [s.t_first for s in streams if s.t_first]
    ends = [s.t_end for s in streams if s.t_end]
    all_open = max(firsts) if len(firsts) == len(streams) and firsts else None
    first_end = min(ends) if ends else None
    return {
        "streams": len(streams),
        "ok": len(ok),
        "saw_done": sum(1 for s in streams if s.saw_done),
        "statuses": statuses,
        "errors": errors,
        "connect_errors": connect_errors,
        "timed_out": timed_out,
        "tokens": args.tokens,
        "chunk_delay_ms": args.chunk_delay_ms,
        "ramp_s": args.ramp_s,
        "t_start": started,
        "t_all_open": all_open,
        "t_first_end": first_end,
        "t_last_end": max(ends) if ends else None,
        "plateau_s": (first_end - all_open) if all_open and first_end else None,
        "max_open": _max_open(streams),
        "open_spread_s": (max(firsts) - min(firsts)) if firsts else None,
        "ttfb_ms": _dist([(s.t_first - s.t_sent) * 1000 for s in streams if s.t_first]),
        "duration_ms": _dist([(s.t_end - s.t_sent) * 1000 for s in ok]),
        "content_chunks_per_stream": _dist([float(len(s.content_times)) for s in streams]),
        "gaps": _gaps(streams, args.chunk_delay_ms),
        "client_cpu_s": _own_cpu(),
    }


def _max_open(streams: list[Stream]) -> int:
    """The most streams open at once (first event .. end), by a sweep."""
    edges = sorted(
        [(s.t_first, 1) for s in streams if s.t_first]
        + [(s.t_end or math.inf, -1) for s in streams if s.t_first]
    )
    open_now = max_open = 0
    for _, step in edges:
        open_now += step
        max_open = max(max_open, open_now)
    return max_open


def _gaps(streams: list[Stream], chunk_delay_ms: int) -> dict[str, Any]:
    """The gaps between consecutive content chunks of each stream: their
    distribution, how many are bunched, and in how many streams."""
    gaps: list[float] = []
    bunched_streams = 0
    for s in streams:
        mine = [(b - a) * 1000 for a, b in itertools.pairwise(s.content_times)]
        gaps.extend(mine)
        if any(g < BUNCHED_MS for g in mine):
            bunched_streams += 1
    below = sum(1 for g in gaps if g < BUNCHED_MS)
    return {
        "count": len(gaps),
        **_dist(gaps),
        "below_20ms": below,
        "frac_below_20ms": below / len(gaps) if gaps else None,
        "above_200ms": sum(1 for g in gaps if g > 2 * chunk_delay_ms),
        "streams_with_bunched_gap": bunched_streams,
    }


def _dist(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "min": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[max(1, min(len(ordered), math.ceil(p / 100 * len(ordered)))) - 1]

    return {
        "p1": round(pct(1), 3),
        "p50": round(pct(50), 3),
        "p90": round(pct(90), 3),
        "p99": round(pct(99), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--auth", default="")
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--tokens", type=int, default=50)
    p.add_argument("--chunk-delay-ms", type=int, default=100)
    p.add_argument(
        "--ramp-s", type=float, default=1.0, help="spread the N connects over this many seconds"
    )
    p.add_argument("--grace-s", type=float, default=60.0, help="deadline past the nominal length")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.streams + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(run(args))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"FINISHED ok={result['ok']}/{result['streams']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
