"""`tollway serve`, `tollway migrate`, `tollway simulate`, `tollway demo`:
running the gateway, its database schema, and the local upstream simulator."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Annotated

import typer

from tollway.cli.support import stdout
from tollway.settings import Settings

# No name: these are top-level commands (`tollway serve`, not `tollway run serve`).
group = typer.Typer()


@group.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the gateway (configured by TOLLWAY_* environment variables)."""
    from tollway.server import cannot_listen, check_port

    try:  # before migrating: a gateway still serving there may run older code
        check_port(host, port)
    except OSError as exc:
        typer.echo(f"tollway: {cannot_listen(host, port, exc)}", err=True)
        raise typer.Exit(1) from None
    settings = Settings.from_env()
    stdout().print(
        f"Tollway on http://{host}:{port}  (database: {_safe_url(settings.database_url)})",
        soft_wrap=True,
    )
    if workers > 1 and not settings.redis_url:
        typer.echo(
            f"tollway: rate limits are counted per process: {workers} workers allow "
            f"{workers} x each limit (set TOLLWAY_REDIS_URL to share one count)",
            err=True,
        )
    _migrate(settings)  # here, so the server process never needs to load Alembic
    args = ["--host", host, "--port", str(port), "--workers", str(workers)]
    argv = [sys.executable, "-m", "tollway.server", *args, "--log-level", log_level]
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # a lean server process in place of this one


@group.command()
def migrate() -> None:
    """Bring the database schema up to date (and encrypt channel keys kept in clear)."""
    _migrate(Settings.from_env())
    stdout().print("database is up to date")


@group.command()
def simulate(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 9000,
    latency_ms: Annotated[int, typer.Option(help="Delay before each answer.")] = 0,
    chunk_delay_ms: Annotated[int, typer.Option(help="Delay between stream chunks.")] = 0,
    error_rate: Annotated[float, typer.Option(help="Fraction answered with HTTP 500.")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Fraction of streams cut off.")] = 0.0,
    seed: Annotated[int, typer.Option()] = 0,
    api_key: Annotated[str | None, typer.Option(help="Require this bearer key.")] = None,
    no_usage: Annotated[bool, typer.Option(help="Report no usage (forces counting).")] = False,
) -> None:
    """Run the local upstream simulator (an OpenAI-compatible fake provider)."""
    from tollway.simulator import SimulatorConfig, run

    config = SimulatorConfig(
        api_key=api_key,
        latency_ms=latency_ms,
        chunk_delay_ms=chunk_delay_ms,
        error_rate=error_rate,
        drop_rate=drop_rate,
        seed=seed,
        report_usage=not no_usage,
    )
    run(config, host, port)


@group.command()
def demo(
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
    simulator_port: Annotated[int, typer.Option(help="Simulator port.")] = 0,
    credit_usd: Annotated[str, typer.Option(help="Demo account credit.")] = "10",
) -> None:
    """Start the simulator and the gateway on SQLite with a demo account and token."""
    from tollway.demo import run_demo

    os.environ.setdefault("TOLLWAY_DATA_DIR", os.path.abspath("tollway-demo-data"))
    run_demo(port, simulator_port or _free_port(), credit_usd)


def _migrate(settings: Settings) -> None:
    """The schema, then the data step: channel keys still in clear encrypted."""
    from tollway.db.engine import make_engine
    from tollway.db.engine import migrate as run_migrations
    from tollway.key_vault import seal_plaintext_keys, vault_of

    async def go() -> None:
        engine = make_engine(settings.database_url, settings.sqlite_synchronous)
        try:
            await run_migrations(engine)
            sealed = await seal_plaintext_keys(engine, vault_of(settings))
        finally:
            await engine.dispose()
        if sealed:
            stdout().print(f"{sealed} channel keys encrypted at rest")

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _safe_url(url: str) -> str:
    """The database URL with its credentials hidden, fit to print."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
