"""The gateway process: ``python -m tollway.server`` (what ``tollway serve`` runs).

A process of its own, so a server carries only what serving needs (no CLI
framework, no terminal rendering): `tollway serve` replaces itself with it.
"""

from __future__ import annotations

import argparse
import os

from starlette.types import ASGIApp

from tollway.settings import Settings


def app_from_env() -> ASGIApp:
    """uvicorn's factory: each worker builds its app from TOLLWAY_* variables."""
    from tollway.app import create_app

    return create_app(Settings.from_env())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tollway-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.workers > 1:  # workers share one database: wait for its lock off the loop
        os.environ.setdefault("TOLLWAY_LEDGER_WRITER", "thread")
    import uvicorn

    uvicorn.run(
        "tollway.server:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
