"""What translation between APIs adds: latency at c=1 of every inbound API x
upstream channel type, against the simulator answered directly in the
upstream's own API.

    python bench/pairs.py [--duration 4] [--repeats 3] [--no-install]

One gateway (SQLite) with three channels to one simulator: gpt-4o through an
openai channel, claude-sonnet-4-5 through an anthropic one, gemini-2.5-flash
through a gemini one. Each round runs the 3 direct baselines and the 9 pairs
(wrk -c1, the same small unary request in the caller's API), rounds
alternating the order; medians over rounds. "added" = the pair's p50 minus
the direct p50 of the upstream's API: what the gateway adds, translation
included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from load import run_wrk
from procs import BenchError, Supervisor, install_signal_handlers
from stack import api, start_gateway, stop_gateway
from tools import ensure_tool
from upstreams import start_simulator

MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
TEXT = "Say hello in five words"
APIS = ("openai", "anthropic", "gemini")


def request(api_name: str, model: str) -> tuple[str, str]:
    """(path, body) of the same small unary call in ``api_name``'s API."""
    if api_name == "openai":
        body: dict[str, Any] = {"model": model, "max_tokens": 16,
                                "messages": [{"role": "user", "content": TEXT}]}  # fmt: skip
        return "/v1/chat/completions", json.dumps(body)
    if api_name == "anthropic":
        body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": TEXT}]}
        return "/v1/messages", json.dumps(body)
    body = {"contents": [{"role": "user", "parts": [{"text": TEXT}]}],
            "generationConfig": {"maxOutputTokens": 16}}  # fmt: skip
    return f"/v1beta/models/{model}:generateContent", json.dumps(body)


def add_native_channels(gw: Any, sim_root: str) -> None:
    for kind in ("anthropic", "gemini"):
        channel = {"name": f"bench-{kind}", "type": kind, "base_url": sim_root,
                   "api_key": "sim-key", "models": [MODELS[kind]], "priority": 20}  # fmt: skip
        api(gw.base, "POST", "/api/channels", gw.admin_key, channel)


def one_round(sup: Supervisor, wrk: str, gw: Any, sim_root: str, args: Any, flip: bool) -> dict:
    """p50 (ms) of each direct baseline and each pair, in one order or its reverse."""
    runs = [("direct", up) for up in APIS] + [(inb, up) for inb in APIS for up in APIS]
    if flip:
        runs.reverse()
    p50 = {}
    for inbound, upstream in runs:
        if inbound == "direct":
            path, body = request(upstream, MODELS[upstream])
            url, auth = sim_root + path, ""
        else:
            path, body = request(inbound, MODELS[upstream])
            url, auth = gw.base + path, gw.token
        row = run_wrk(sup, wrk, url, 1, args.duration, auth=auth, threads=1, body=body)
        if row["non_2xx"] or row["socket_errors"] or not row["requests"]:
            raise BenchError(f"{inbound}->{upstream}: {row['non_2xx']} non-2xx answers")
        p50[(inbound, upstream)] = row["p50_ms"]
    return p50


def report(rounds: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for inbound in APIS:
        for upstream in APIS:
            pair = median(r[(inbound, upstream)] for r in rounds)
            direct = median(r[("direct", upstream)] for r in rounds)
            rows.append({"inbound": inbound, "upstream": upstream, "p50_ms": round(pair, 3),
                         "direct_p50_ms": round(direct, 3),
                         "added_p50_ms": round(pair - direct, 3)})  # fmt: skip
    base = next(r["added_p50_ms"] for r in rows if r["inbound"] == r["upstream"] == "openai")
    print(f"{'inbound':>10} {'upstream':>10} {'p50 ms':>8} {'direct':>8} {'added':>8} {'× o→o':>6}")
    for r in rows:
        ratio = r["added_p50_ms"] / base if base > 0 else float("nan")
        print(f"{r['inbound']:>10} {r['upstream']:>10} {r['p50_ms']:>8.3f} "
              f"{r['direct_p50_ms']:>8.3f} {r['added_p50_ms']:>8.3f} {ratio:>6.2f}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (alternating order)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get wrk")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pairs.json"))
    args = parser.parse_args(argv)
    wrk = ensure_tool("wrk", "wrk", install=not args.no_install)
    if wrk is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 1
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="tollway-pairs-"))
    sup = Supervisor(workdir)
    try:
        sim = start_simulator(sup)
        sim_root = sim.chat_base.removesuffix("/v1")
        gw = start_gateway(sup, "sqlite", sim, "", {})
        add_native_channels(gw, sim_root)
        rounds = [one_round(sup, wrk, gw, sim_root, args, flip=i % 2 == 1)
                  for i in range(args.repeats)]  # fmt: skip
        rows = report(rounds)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=2))
        stop_gateway(sup, gw)
    finally:
        sup.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
