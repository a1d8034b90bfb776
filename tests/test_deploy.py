"""deploy/ for real: two replicas (`python -m tollway serve`) on one
PostgreSQL database behind nginx running deploy/nginx/tollway.conf, the
upstream simulator behind them, the official openai SDK in front.

Through nginx: calls and streams reach both replicas; a replica SIGTERMed
during a slow stream finishes it, exits and returns its leases, while nginx
sends new calls to the other; a replica SIGKILLed leaves calls succeeding on
the other; afterwards balance = credit - Σ usage costs, to the nano-USD, and
no lease is left once every replica has stopped.

Needs nginx (skipped without it, unless TOLLWAY_REQUIRE_NGINX=1) and
PostgreSQL. Also checks deploy/compose.yaml against the files it mounts (no
Docker engine runs the compose file here).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import psycopg
import pytest
import yaml
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tollway.server import KEEP_ALIVE_S
from tollway.settings import Settings

from conftest import ADMIN_KEY, free_port, fresh_postgres_database, need_postgres
from processes import start_process, stop, wait_ready

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SITE = DEPLOY / "nginx" / "tollway.conf"
REQUIRE_NGINX = os.environ.get("TOLLWAY_REQUIRE_NGINX") == "1"
MODEL = "gpt-4o-mini"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]
SLOW_TOKENS = 20
# ~2 s of stream: long enough to SIGTERM its replica in the middle of it
SLOW: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": f"[sim:chunk_delay_ms=100] [sim:tokens={SLOW_TOKENS}] Hi"}
]
CREDIT = Decimal("5")
# A clean stop: uvicorn, once drained, raises the SIGTERM it caught again, so
# the process ends by that signal (systemd counts it a clean exit too).
STOPPED = (0, -signal.SIGTERM)


def need_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if REQUIRE_NGINX:
        pytest.fail("nginx is required (TOLLWAY_REQUIRE_NGINX=1) but not installed")
    pytest.skip("nginx is not installed (apt-get install nginx-light)")


def nginx_main(site: Path) -> str:
    """The scratch-prefix main config (deploy/nginx/standalone.conf) around the site file."""
    return (DEPLOY / "nginx" / "standalone.conf").read_text().replace("SITE", str(site))


@contextmanager
def nginx_in_front(binary: str, prefix: Path, ports: list[int]) -> Iterator[str]:
    """nginx from a temporary prefix (no system configuration read or
    touched) with the deploy site file and these replicas; its base URL."""
    prefix.mkdir()
    port = free_port()
    replicas = "".join(f"server 127.0.0.1:{p} max_fails=0;\n" for p in ports)
    (prefix / "tollway-replicas.conf").write_text(replicas)
    # The test's own per-host lines: the access log in the site's format, and
    # which replica answered as a header, so a stream says where it runs
    # while it runs (the log line comes only at its end).
    (prefix / "tollway-listen.conf").write_text(
        f"listen 127.0.0.1:{port};\n"
        "access_log access.log tollway;\n"
        "add_header X-Test-Upstream $upstream_addr always;\n"
    )
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main(SITE))
    log = prefix / "nginx.out"
    argv = [binary, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, prefix / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


class Replicas:
    """Gateway processes on fixed ports (a restart comes back on its port,
    as `systemctl restart tollway@PORT` does)."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.ports = [free_port()]
        while len(self.ports) < 2:  # two free ports, not the same one twice
            self.ports = sorted({*self.ports, free_port()})
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self, port: int) -> None:
        self.starts += 1
        log = self.tmp / f"replica-{port}-{self.starts}.log"
        self.procs[port] = start_process(["serve", "--port", str(port)], self.env, log)
        wait_ready(f"http://127.0.0.1:{port}/health", self.procs[port], log)

    def signal(self, port: int, signum: int) -> subprocess.Popen[bytes]:
        proc = self.procs[port]
        os.killpg(proc.pid, signum)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                stop(proc)


def lease_owners(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [row[0] for row in conn.execute("SELECT owner FROM leases").fetchall()]


async def no_leases(db_url: str) -> None:
    """Wait until every lease is returned: a replica returns one idle for a
    second (tollway.ledger.leases.IDLE_S)."""
    for _ in range(50):
        if not lease_owners(db_url):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"leases still held: {lease_owners(db_url)}")


def setup_account(edge: str, simulator: str) -> tuple[str, str]:
    """Through nginx: a channel to the simulator, an account with CREDIT and
    a token. (management key, API key)"""
    with httpx.Client(base_url=edge, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as op:
        body = {"name": "sim", "type": "openai", "base_url": simulator + "/v1",
                "api_key": "sim-key", "models": ["*"]}  # fmt: skip
        assert op.post("/api/channels", json=body).status_code == 201
        user = op.post("/api/users", json={"username": "deploy"}).json()
        got = op.post(
            f"/api/users/{user['id']}/credit", json={"amount_usd": str(CREDIT), "reason": "t"}
        )
        assert got.status_code == 200, got.text
    mkey = user["management_key"]
    got = httpx.post(
        f"{edge}/api/tokens", json={"name": "t"}, headers={"Authorization": f"Bearer {mkey}"}
    )
    assert got.status_code == 201, got.text
    return mkey, got.json()["key"]


async def call(client: openai.AsyncOpenAI) -> str:
    """One non-streamed call; the replica that answered it (host:port)."""
    raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-test-upstream"].split(", ")[-1]


async def stream(client: openai.AsyncOpenAI) -> str:
    parts = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in parts if c.choices])
    assert text
    return text


def served_by(access_log: Path) -> set[str]:
    """The replicas nginx's access log says answered chat calls."""
    found = re.findall(
        r'"POST /v1/chat/completions [^"]*" 200 .* upstream=(\S+) ', access_log.read_text()
    )
    return {addr for addrs in found for addr in addrs.split(",")}


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_replicas_behind_nginx_fail_over_drain_and_keep_the_books(tmp_path: Path) -> None:
    need_postgres()
    binary = need_nginx()
    async with fresh_postgres_database() as db_url:
        with ExitStack() as cleanup:
            sim_port = free_port()
            sim_log = tmp_path / "sim.log"
            sim = start_process(
                ["simulate", "--port", str(sim_port), "--api-key", "sim-key"], {}, sim_log
            )
            cleanup.callback(stop, sim)
            wait_ready(f"http://127.0.0.1:{sim_port}/_sim/stats", sim, sim_log)
            env = {
                "TOLLWAY_DATABASE_URL": db_url,
                "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
                "TOLLWAY_SECRET_KEY": "deploy-test-secret-" + "s" * 32,  # one for all replicas
                "TOLLWAY_DATA_DIR": str(tmp_path / "data"),
                "TOLLWAY_STATE_POLL_MS": "100",
            }
            replicas = Replicas(env, tmp_path)
            cleanup.callback(replicas.stop_all)
            for port in replicas.ports:  # one after the other: the first start migrates
                replicas.start(port)
            edge = cleanup.enter_context(nginx_in_front(binary, tmp_path / "nginx", replicas.ports))
            mkey, key = setup_account(edge, f"http://127.0.0.1:{sim_port}")
            async with openai.AsyncOpenAI(
                base_url=edge + "/v1", api_key=key, max_retries=0
            ) as client:
                calls = await both_replicas_serve(
                    client, replicas, tmp_path / "nginx" / "access.log"
                )
                calls += await sigterm_drains_a_stream(client, replicas, db_url, mkey, edge)
                calls += await sigkill_leaves_the_other(client, replicas, db_url)
            books_balance(edge, mkey, calls)
            for proc in replicas.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(30) in STOPPED
            assert lease_owners(db_url) == []  # every lease returned at SIGTERM


async def both_replicas_serve(
    client: openai.AsyncOpenAI, replicas: Replicas, access_log: Path
) -> int:
    for _ in range(8):
        await call(client)
    for _ in range(4):
        await stream(client)
    expected = {f"127.0.0.1:{p}" for p in replicas.ports}
    for _ in range(20):  # nginx writes a line once the call is done
        if served_by(access_log) == expected:
            break
        await asyncio.sleep(0.05)
    assert served_by(access_log) == expected, access_log.read_text()
    return 12


async def sigterm_drains_a_stream(
    client: openai.AsyncOpenAI, replicas: Replicas, db_url: str, mkey: str, edge: str
) -> int:
    """SIGTERM the replica a slow stream runs on: the stream ends whole, new
    calls go to the other replica, the replica exits 0 with its leases returned."""
    await no_leases(db_url)  # so the stream's lease is the only one
    slow = client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=SLOW, stream=True
    )
    async with slow as answer:
        victim = int(answer.headers["x-test-upstream"].rsplit(":", 1)[1])
        request_id = answer.headers["x-request-id"]
        parsed = await answer.parse()
        assert isinstance(parsed, openai.AsyncStream)
        chunks: AsyncIterator[ChatCompletionChunk] = parsed.__aiter__()
        first = await chunks.__anext__()
        owners = set(lease_owners(db_url))
        assert len(owners) == 1, owners  # the victim's, held for the stream
        proc = replicas.signal(victim, signal.SIGTERM)
        survivor = next(p for p in replicas.ports if p != victim)
        for _ in range(4):  # while it drains, nginx sends calls to the other
            assert await call(client) == f"127.0.0.1:{survivor}"
        rest = [c async for c in chunks]
    finish = [c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"] or finish == ["stop"], rest
    assert proc.wait(30) in STOPPED  # drained and exited on its own
    assert not owners & set(lease_owners(db_url))  # its lease was returned
    assert first.choices
    with httpx.Client(base_url=edge, headers={"Authorization": f"Bearer {mkey}"}) as me:
        records = me.get("/api/usage?limit=1000").json()["data"]
    (record,) = [r for r in records if r["request_id"] == request_id]
    assert record["status"] == "ok" and record["tokens"]["output_tokens"] == SLOW_TOKENS, record
    # Restarted on its port (a rolling restart), nginx sends it calls again.
    replicas.start(victim)
    served = [await call(client) for _ in range(6)]
    assert f"127.0.0.1:{victim}" in served, served
    return 1 + 4 + 6


async def sigkill_leaves_the_other(
    client: openai.AsyncOpenAI, replicas: Replicas, db_url: str
) -> int:
    """SIGKILL one replica: every call after it succeeds on the other. Killed
    at rest (its leases returned, idle): a lease a killed process holds is the
    others' reconcilers' to return after STALE_S (30 s), too long to wait here."""
    await no_leases(db_url)
    killed, alive = replicas.ports
    replicas.signal(killed, signal.SIGKILL).wait(10)
    served = [await call(client) for _ in range(6)]
    assert set(served) == {f"127.0.0.1:{alive}"}, served
    for _ in range(2):
        await stream(client)
    return 6 + 2


def books_balance(edge: str, mkey: str, calls: int) -> None:
    """balance = credit - Σ usage costs, exactly; one record per call."""
    with httpx.Client(base_url=edge, headers={"Authorization": f"Bearer {mkey}"}) as me:
        for _ in range(50):  # a lease is returned after a second idle
            account = me.get("/api/me").json()
            if account["held_usd"] == "0":
                break
            time.sleep(0.1)
        records = me.get("/api/usage?limit=1000").json()["data"]
    assert len(records) == calls and len({r["request_id"] for r in records}) == calls
    assert all(r["status"] == "ok" for r in records)
    charged = sum(Decimal(r["cost_usd"]) for r in records)
    assert account["held_usd"] == "0"
    assert Decimal(account["balance_usd"]) == CREDIT - charged


def directive(conf: str, name: str) -> str:
    (value,) = re.findall(rf"^\s*{name}\s+([^;]+);", conf, re.MULTILINE)
    return value.strip()


def seconds(value: str) -> int:
    return int(value.removesuffix("s"))


def test_the_site_file_agrees_with_the_gateways_defaults() -> None:
    """Numbers the site file must keep in step with the gateway's."""
    site = SITE.read_text()
    defaults = Settings.from_env({})
    assert directive(site, "client_max_body_size") == f"{defaults.max_body_bytes // 2**20}m"
    assert defaults.max_body_bytes % 2**20 == 0
    # nginx closes idle upstream connections before a replica does
    assert seconds(directive(site, "keepalive_timeout")) < KEEP_ALIVE_S
    # the gateway answers its upstream's timeout before nginx gives up on it
    assert seconds(directive(site, "proxy_read_timeout")) > defaults.upstream_timeout_s
    # only undelivered calls move: never a sent POST, never a replica's answer
    assert directive(site, "proxy_next_upstream") == "error timeout"
    assert directive(site, "proxy_buffering") == "off"
    assert directive(site, "proxy_request_buffering") == "off"


def test_the_example_replica_list_loads(tmp_path: Path) -> None:
    """`nginx -t` of the site file with deploy/nginx/tollway-replicas.conf."""
    binary = need_nginx()
    shutil.copy(DEPLOY / "nginx" / "tollway-replicas.conf", tmp_path)
    (tmp_path / "tollway-listen.conf").write_text(f"listen 127.0.0.1:{free_port()};\n")
    (tmp_path / "nginx.conf").write_text(nginx_main(SITE))
    argv = [binary, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf")]
    done = subprocess.run([*argv, "-e", str(tmp_path / "error.log")], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_the_systemd_unit_drains_on_stop() -> None:
    unit = (DEPLOY / "systemd" / "tollway@.service").read_text()
    assert "KillSignal=SIGTERM" in unit
    timeout = int(re.findall(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE)[0])
    assert timeout > seconds(directive(SITE.read_text(), "proxy_read_timeout"))
    assert re.search(r"^ExecStart=\S+/tollway serve .*--port %i$", unit, re.MULTILINE)
    env = (DEPLOY / "systemd" / "tollway.env.example").read_text()
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ADMIN_KEY"):
        assert re.search(rf"^TOLLWAY_{name}=", env, re.MULTILINE), name


def test_the_compose_file_is_consistent() -> None:
    """No Docker engine here to run it: its shape, and every file it names."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "gateway1", "gateway2", "nginx"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), volume
            else:
                assert source in compose["volumes"], volume
    gateways = [services["gateway1"], services["gateway2"]]
    for gateway in gateways:
        assert (DEPLOY / gateway["build"]["context"] / gateway["build"]["dockerfile"]).is_file()
        env = gateway["environment"]
        assert env["TOLLWAY_DATABASE_URL"].startswith("postgresql://")
        assert env["TOLLWAY_REDIS_URL"] == "redis://redis:6379/0"
        assert "TOLLWAY_SECRET_KEY" in env
        assert gateway["stop_grace_period"] == "10m"
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in services["nginx"]["volumes"])
    assert (DEPLOY / mounts["/etc/nginx/conf.d/default.conf"]).resolve() == SITE
    replicas = (DEPLOY / mounts["/etc/nginx/tollway-replicas.conf"]).read_text()
    listed = re.findall(r"^server (\S+):(\d+) ", replicas, re.MULTILINE)
    assert listed == [("gateway1", "8080"), ("gateway2", "8080")]
    assert "/etc/nginx/tollway-listen.conf" in mounts
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert '"--host", "0.0.0.0", "--port", "8080"' in dockerfile
    assert re.search(r"^USER tollway$", dockerfile, re.MULTILINE)
