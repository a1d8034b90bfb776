"""The gateway's own Python work per call, counted (not timed): cProfile over
N sequential chat calls to a gateway and a simulator in this process
(``--redis URL``: the token has rate limits, counted there).

Counts do not depend on what else the machine runs, so two trees can be
compared on a busy machine (timing needs a quiet one: bench/run.py).

    PYTHONPATH=<tree>/src python bench/callcount.py [--calls 1000] [--top 30] [--stream]

Prints the calls per request made in tollway's own code and, with --top, the
functions called most. ``--out FILE`` keeps the raw profile (pstats).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import socket
import tempfile

import httpx
import uvicorn

from tollway.app import create_app
from tollway.catalog import load_catalog_files
from tollway.settings import Settings
from tollway.simulator import SimulatorConfig, start

ADMIN = "tm-callcount"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
WARM_UP = 300
# Limits no call reaches (--redis): what checking them costs, not refusals.
LIMITS = {"rpm_limit": 10**9, "tpm_limit": 10**9, "max_concurrent": 100_000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def profiled(
    calls: int, stream: bool = False, redis_url: str | None = None
) -> cProfile.Profile:
    sim = await start(SimulatorConfig(api_key="sim-key"))
    data = tempfile.mkdtemp()
    settings = Settings(
        database_url=f"sqlite:///{data}/t.db",
        admin_key=ADMIN,
        redis_url=redis_url,
        redis_prefix=f"callcount-{free_port()}",
    )
    config = uvicorn.Config(
        create_app(settings, load_catalog_files()),
        port=free_port(),
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{config.port}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as op:
        channel = {"name": "sim", "type": "openai", "base_url": sim.base_url,
                   "api_key": "sim-key", "models": ["*"]}  # fmt: skip
        assert (await op.post("/api/channels", json=channel)).status_code == 201
        user = (await op.post("/api/users", json={"username": "count"})).json()
        credit = {"amount_usd": "1000", "reason": "callcount"}
        await op.post(f"/api/users/{user['id']}/credit", json=credit)
        op.headers["Authorization"] = f"Bearer {user['management_key']}"
        token = {"name": "t", **(LIMITS if redis_url else {})}
        key = (await op.post("/api/tokens", json=token)).json()["key"]
    profile = cProfile.Profile()
    body = STREAM_BODY if stream else BODY
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        for _ in range(WARM_UP):
            assert (await c.post("/v1/chat/completions", json=body)).status_code == 200
        profile.enable()
        for _ in range(calls):
            await c.post("/v1/chat/completions", json=body)
        profile.disable()
    server.should_exit = True
    await task
    await sim.stop()
    return profile


def own_calls(stats: pstats.Stats, calls: int) -> list[tuple[float, str]]:
    """(calls per request, function) of tollway's gateway code (not its simulator)."""
    found = []
    for (path, _, name), (_, count, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        if "/tollway/" in path and "/simulator/" not in path:
            found.append((count / calls, f"{path.split('/tollway/')[-1]}:{name}"))
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--stream", action="store_true", help="streamed calls (read whole)")
    parser.add_argument("--redis", default=None, help="limits on, counted in this Redis URL")
    args = parser.parse_args()
    profile = asyncio.run(profiled(args.calls, args.stream, args.redis))
    if args.out:
        profile.dump_stats(args.out)
    rows = own_calls(pstats.Stats(profile), args.calls)
    print(f"tollway calls per request: {sum(count for count, _ in rows):.1f}")
    for count, name in rows[: args.top]:
        print(f"{count:8.2f}  {name}")


if __name__ == "__main__":
    main()
