"""Summarise a py-spy profile in raw (collapsed stack) format.

    py-spy record --pid PID --duration 10 --rate 200 --threads --format raw -o prof.txt
    python bench/profile_summary.py prof.txt [--top 10]

Each line of the raw format is one distinct stack, root first, frames joined
by ';', then a space and the number of samples. With --threads the first
frame names the thread. The summary gives, by function (name + file):

- self: samples where it was the innermost frame (time spent in its own code);
- total: samples where it was anywhere on the stack (time in it and callees);

and the samples by area (the package of the innermost frame), per thread.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Innermost-frame file path -> area, first match wins.
AREAS = (
    ("tollway/relay", "tollway.relay (hot path)"),
    ("tollway/ledger", "tollway.ledger"),
    ("tollway/state", "tollway.state"),
    ("tollway/providers", "tollway.providers"),
    ("tollway/billing", "tollway.billing"),
    ("tollway/", "tollway (other)"),
    ("sqlalchemy/", "sqlalchemy"),
    ("aiosqlite/", "aiosqlite"),
    ("asyncpg/", "asyncpg"),
    ("sqlite3/", "sqlite3"),
    ("aiohttp/", "aiohttp (upstream client)"),
    ("yarl/", "yarl/multidict"),
    ("multidict/", "yarl/multidict"),
    ("uvicorn/", "uvicorn"),
    ("starlette/", "starlette"),
    ("fastapi/", "fastapi"),
    ("asyncio/", "asyncio (stdlib)"),
    ("uvloop/", "uvloop"),
    ("orjson", "orjson"),
    ("threading.py", "threading (stdlib)"),
    ("concurrent/", "concurrent.futures (stdlib)"),
)


# Innermost Python frames that stand for C code below them (no Python frame of
# their own): the event loop's C core, and aiosqlite's thread in sqlite3 or in
# its queue wait.
LEAF_AREAS = {
    ("Runner.run", "asyncio/runners.py"): "event loop C code (uvloop, httptools, epoll)",
    ("_connection_worker_thread", "aiosqlite/core.py"): "aiosqlite thread (sqlite3 C / queue)",
    ("_worker", "concurrent/futures/thread.py"): "thread pool worker (waiting)",
}


# Frames every sample of a thread passes through (process and thread start-up,
# the CLI, the event loop's entry): left out of "total", where they would only
# repeat the thread's own share.
BOILERPLATE = (
    "threading.py",
    "typer/",
    "click/",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners.py",
    "tollway/cli/",
    "tollway/server.py",
    "<string>",
)


def area_of(path: str, func: str = "") -> str:
    special = LEAF_AREAS.get((func, path))
    if special:
        return special
    for needle, name in AREAS:
        if needle in path:
            return name
    return "other"


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    return path


def parse(raw: str, threads: bool = True) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(thread, frames [(func, file)] root first, samples) per line."""
    stacks = []
    for line in raw.splitlines():
        line = line.rstrip()
        if not line or " " not in line:
            continue
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        parts = stack_text.split(";")
        thread = "all"
        if threads and parts and parts[0].startswith(("thread (", "process ")):
            thread, parts = parts[0], parts[1:]
        frames = []
        for part in parts:
            m = _FRAME.match(part)
            if m:
                frames.append((m.group("func"), short_path(m.group("file"))))
            else:
                frames.append((part, ""))
        stacks.append((thread, frames, int(count_text)))
    return stacks


def summarise(raw: str, top: int = 10) -> dict[str, Any]:
    stacks = parse(raw)
    total = sum(n for _, _, n in stacks)
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    per_thread: Counter[str] = Counter()
    for thread, frames, n in stacks:
        per_thread[_thread_kind(thread)] += n
        if not frames:
            continue
        func, path = frames[-1]
        self_time[f"{func} ({path})"] += n
        areas[area_of(path, func)] += n
        for name in {f"{f} ({p})" for f, p in frames if not p.startswith(BOILERPLATE)}:
            total_time[name] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": k, "samples": v, "pct": round(100 * v / total, 1) if total else 0.0}
            for k, v in counter.most_common(top)
        ]

    return {
        "samples": total,
        "threads": rows(per_thread),
        "areas": rows(areas),
        "top_self": rows(self_time),
        "top_total": rows(total_time),
    }


def _thread_kind(thread: str) -> str:
    """'thread (31979): MainThread' -> 'MainThread'; 'Thread-6 (_connection_worker_thread)'
    -> 'Thread-N (_connection_worker_thread)', so a pool of threads adds up."""
    name = thread.split("): ", 1)[1] if "): " in thread else thread
    return re.sub(r"Thread-\d+", "Thread-N", name)


def render(summary: dict[str, Any]) -> str:
    out = [f"samples: {summary['samples']}"]
    for key, title in (
        ("threads", "by thread"),
        ("areas", "by area (package of the innermost frame)"),
        ("top_self", "top functions by self time"),
        ("top_total", "top functions by total time (incl. callees; start-up frames left out)"),
    ):
        out.append(f"\n{title}:")
        for row in summary[key]:
            out.append(f"  {row['pct']:5.1f}%  {row['samples']:7d}  {row['function']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    print(render(summarise(args.raw.read_text(), args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
