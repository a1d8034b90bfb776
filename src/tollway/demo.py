"""`tollway demo`: the simulator and the gateway on SQLite, ready to call."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import uvicorn
from rich.console import Console
from sqlalchemy import select

from tollway.app import create_app, running_gateway
from tollway.catalog import load_catalog_files
from tollway.db.schema import accounts, channels
from tollway.endpoints import CHAT
from tollway.gateway import Gateway
from tollway.manage import accounts as account_service
from tollway.manage import channels as channel_service
from tollway.manage.tokens import create_token
from tollway.settings import Settings
from tollway.simulator import SimulatorConfig, start
from tollway.types import usd_to_nano

# Never wrapped to the terminal's width: what it prints (keys, commands) is
# there to be copied, and a line broken mid-option fails when pasted.
console = Console(soft_wrap=True)
DEMO_USER = "demo"


async def prepare(gw: Gateway, simulator_url: str, credit_usd: str) -> tuple[str, str]:
    """Demo account (credited once), a fresh default-mode token, and channels to
    the simulator: Claude models through its Messages API, Gemini models through
    generateContent, every other model OpenAI-compatible. Returns (api key,
    management key)."""
    async with gw.engine.connect() as conn:
        found = (
            await conn.execute(select(accounts.c.id).where(accounts.c.username == DEMO_USER))
        ).first()
    if found is None:
        view, management_key = await account_service.create_account(gw, DEMO_USER, role="admin")
        account_id = view["id"]
        await account_service.credit(gw, account_id, usd_to_nano(credit_usd), "demo credit")
    else:
        account_id = found[0]
        management_key = "(shown when the demo account was first created)"
    for fields in demo_channels(gw, simulator_url):
        await _put_channel(gw, fields)
    token = await create_token(gw, account_id, "demo token")
    return token["key"], management_key


def demo_channels(gw: Gateway, simulator_url: str) -> list[dict[str, Any]]:
    root = simulator_url.removesuffix("/v1")
    catalog = gw.state.catalog.models
    native = [("simulator-anthropic", "anthropic", "anthropic"),
              ("simulator-gemini", "gemini", "google")]  # fmt: skip
    made: list[dict[str, Any]] = [{"name": "simulator", "type": "openai", "base_url": simulator_url,
             "api_key": "sim-key", "models": ["*"]}]  # fmt: skip
    for name, kind, provider in native:
        models = [m.id for m in catalog if m.provider == provider and m.kind in CHAT.kinds]
        made.append({"name": name, "type": kind, "base_url": root, "api_key": "sim-key",
                     "models": models, "priority": 1})  # fmt: skip
    return made


async def _put_channel(gw: Gateway, fields: dict[str, Any]) -> None:
    async with gw.engine.connect() as conn:
        found = (
            await conn.execute(select(channels.c.id).where(channels.c.name == fields["name"]))
        ).first()
    if found is None:
        await channel_service.create_channel(gw, fields)
    else:
        await channel_service.update_channel(gw, found[0], {"base_url": fields["base_url"]})


def run_demo(port: int, simulator_port: int, credit_usd: str) -> None:
    asyncio.run(_demo(port, simulator_port, credit_usd))


async def _demo(port: int, simulator_port: int, credit_usd: str) -> None:
    settings = Settings.from_env()
    models = load_catalog_files()
    simulator = await start(SimulatorConfig(api_key="sim-key"), port=simulator_port)
    async with running_gateway(settings, models) as gw:
        key, management_key = await prepare(gw, simulator.base_url, credit_usd)
    config = uvicorn.Config(
        create_app(settings, models),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:  # say how to call it only once it answers
            _explain(port, key, management_key, settings.database_url)
        await serving
    finally:
        await simulator.stop()


def _explain(port: int, key: str, management_key: str, database_url: str) -> None:
    base = f"http://127.0.0.1:{port}"
    console.print(f"[bold green]Tollway demo[/] on {base}  (database: {database_url})")
    console.print(f"API key (Pay-per-Use Priority): [bold]{key}[/]")
    console.print(f"Management key (demo admin):    [bold]{management_key}[/]\n")
    console.print(
        textwrap.dedent(f"""\
        Try it:

        curl -s {base}/v1/chat/completions \\
          -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
          -d '{{"model": "gpt-4o", "messages": [{{"role": "user", "content": "Hello"}}]}}' -i

        python -c "from openai import OpenAI
        c = OpenAI(base_url='{base}/v1', api_key='{key}')
        messages = [{{'role': 'user', 'content': 'Hi'}}]
        r = c.chat.completions.create(model='gpt-4o', messages=messages)
        print(r.choices[0].message.content, r.usage)"

        curl -s {base}/v1/messages -H "x-api-key: {key}" \\
          -H "anthropic-version: 2023-06-01" -H "Content-Type: application/json" \\
          -d '{{"model": "claude-sonnet-4-5", "max_tokens": 100,
               "messages": [{{"role": "user", "content": "Hello"}}]}}'

        curl -s {base}/api/billing-modes
        curl -s {base}/api/me -H "Authorization: Bearer <management key>"

        Press Ctrl+C to stop.
        """),
        highlight=False,
        markup=False,
    )
