"""What a benchmark run stands up in front of an upstream: gateways on fresh
databases, bootstrapped with an account, credit, channels and an API key, all
through the public interfaces (CLI, environment, /api); and the ``Bench``
that starts them and keeps the list of those still to stop."""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from procs import TOLLWAY_MAIN, BenchError, Child, Supervisor, free_port, wait_http
from progress import log
from scratch_pg import PgDatabase, pg_create, pg_drop
from upstreams import Upstream, start_nginx, start_simulator

CHAT_MODEL = "gpt-4o"  # the non-streaming request
STREAM_MODEL = "gpt-4o-mini"  # the streaming request (its own channel, see below)
UPSTREAM_KEY = "sk-bench-upstream"
CREDIT_USD = "1000000"

# --------------------------------------------------------------------------
# Management API (stdlib HTTP: nothing of the benchmark runs in the gateway)


def api(base: str, method: str, path: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise BenchError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None
    return json.loads(raw, parse_float=Decimal) if raw else None


# --------------------------------------------------------------------------
# Gateways


@dataclass
class Gateway:
    db: str  # "sqlite" | "postgres"
    upstream: Upstream
    child: Child
    port: int
    admin_key: str
    pg: PgDatabase | None = None
    account_id: int = 0
    user_key: str = ""  # the benchmark account's management key
    token: str = ""  # its sk-... API key
    info: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    label: str = ""  # overrides the name (e.g. "sqlite×2" in the scaling phase)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    argv: list[str] = field(default_factory=list, repr=False)
    child_name: str = ""

    @property
    def name(self) -> str:
        return f"gateway/{self.label or self.db}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_url(self) -> str:
        return self.base + "/v1/chat/completions"

    @property
    def stream_url(self) -> str:
        return self.chat_url

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def pg_name(self) -> str | None:
        """Its scratch PostgreSQL database (whose backends are metered), if any."""
        return self.pg.name if self.pg is not None else None


def start_gateway(
    sup: Supervisor,
    db: str,
    upstream: Upstream,
    pg_admin_url: str,
    extra_env: dict[str, str],
    workers: int = 1,
    label: str = "",
    before_bootstrap: Callable[[Gateway], None] | None = None,
    init_with_one_worker: bool = False,
    token_fields: dict[str, int] | None = None,
) -> Gateway:
    """A fresh gateway (new SQLite directory or scratch PostgreSQL database),
    bootstrapped. ``before_bootstrap`` sees it answering /health, before any
    other request (the idle-memory phase reads its memory there).
    ``init_with_one_worker``: first start it with one worker until it answers
    (migrations, first admin), stop it, then start the N workers on that
    database (works around N workers racing to create the first admin)."""
    port = free_port()
    admin_key = "tw-bench-admin-" + secrets.token_hex(16)
    env, pg = _gateway_env(sup, db, upstream, port, admin_key, pg_admin_url)
    env.update(extra_env)
    argv = [sys.executable, "-c", TOLLWAY_MAIN, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    child_name = f"gateway-{db}-{upstream.kind}" + (f"-{label}" if label else "")
    if init_with_one_worker and workers != 1:
        _initialise(sup, child_name + "-init", argv[: argv.index("--workers")], env, port)
    child = sup.start(child_name, argv, env=env)
    gw = Gateway(db, upstream, child, port, admin_key, pg)
    gw.workers, gw.label, gw.env, gw.argv, gw.child_name = workers, label, env, argv, child_name
    try:
        wait_http(gw.base + "/health", child, timeout_s=120)
        if before_bootstrap is not None:
            before_bootstrap(gw)
        _bootstrap(gw, token_fields or {})
    except BaseException:
        stop_gateway(sup, gw)
        raise
    return gw


def _gateway_env(
    sup: Supervisor, db: str, upstream: Upstream, port: int, admin_key: str, pg_admin_url: str
) -> tuple[dict[str, str], PgDatabase | None]:
    """The gateway's environment: nothing of the caller's TOLLWAY_* settings
    leaks in; its own fresh database (SQLite directory or scratch PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env["TOLLWAY_ADMIN_KEY"] = admin_key
    pg = None
    if db == "sqlite":
        data_dir = Path(sup.workdir) / f"data-{upstream.kind}-{port}"
        data_dir.mkdir()
        env["TOLLWAY_DATA_DIR"] = str(data_dir)
    elif db == "postgres":
        pg = pg_create(pg_admin_url)
        env["TOLLWAY_DATABASE_URL"] = pg.url
    else:
        raise BenchError(f"unknown database {db!r}")
    return env, pg


def _initialise(
    sup: Supervisor, name: str, argv: list[str], env: dict[str, str], port: int
) -> None:
    """One worker on the fresh database until it answers (migrations, first admin), then stopped."""
    init = sup.start(name, argv, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", init, timeout_s=120)
    finally:
        sup.stop(init, grace_s=10)


def _bootstrap(gw: Gateway, token_fields: dict[str, int]) -> None:
    """An account with plenty of credit, channels to the upstream, an API key
    (with ``token_fields``: rate limits, say)."""
    user = api(gw.base, "POST", "/api/users", gw.admin_key, {"username": "bench", "role": "user"})
    gw.account_id, gw.user_key = user["id"], user["management_key"]
    api(
        gw.base,
        "POST",
        f"/api/users/{gw.account_id}/credit",
        gw.admin_key,
        {"amount_usd": CREDIT_USD, "reason": "benchmark credit"},
    )
    up = gw.upstream
    api(
        gw.base,
        "POST",
        "/api/channels",
        gw.admin_key,
        {
            "name": f"bench-{up.kind}",
            "type": "openai",
            "base_url": up.chat_base,
            "api_key": UPSTREAM_KEY,
            "models": ["*"],
        },
    )
    # The streaming request's model goes to the upstream's SSE location.
    api(
        gw.base,
        "POST",
        "/api/channels",
        gw.admin_key,
        {
            "name": f"bench-{up.kind}-stream",
            "type": "openai",
            "base_url": up.stream_base,
            "api_key": UPSTREAM_KEY,
            "models": [STREAM_MODEL],
            "priority": 10,
        },
    )
    token = api(gw.base, "POST", "/api/tokens", gw.user_key, {"name": "bench", **token_fields})
    gw.token = token["key"]
    gw.info = {"token_billing_mode": token["billing_mode"], "account_id": gw.account_id}


def restart_gateway(sup: Supervisor, gw: Gateway) -> None:
    """Stop the gateway (SIGTERM) and start it again on the same database, port
    and settings; returns once it answers /health (no other request made)."""
    sup.stop(gw.child, grace_s=10)
    gw.child = sup.start(gw.child_name, gw.argv, env=gw.env)
    wait_http(gw.base + "/health", gw.child, timeout_s=120)


def stop_gateway(sup: Supervisor, gw: Gateway) -> None:
    try:
        sup.stop(gw.child, grace_s=10)
    finally:
        if gw.pg is not None:
            pg_drop(gw.pg)
            gw.pg = None


# --------------------------------------------------------------------------
# The bench: what every phase starts its gateways with


@dataclass
class Bench:
    """The supervisor, the gateways' database and settings, and every gateway
    started and not yet stopped (the end of the run stops those, Ctrl+C included)."""

    sup: Supervisor
    pg_url: str
    extra_env: dict[str, str]
    token_fields: dict[str, int] = field(default_factory=dict)
    gateways: list[Gateway] = field(default_factory=list)

    def start_gateway(self, db: str, upstream: Upstream, **options: Any) -> Gateway:
        """start_gateway() on this bench; the gateway is listed until stopped."""
        options.setdefault("token_fields", self.token_fields)
        gw = start_gateway(self.sup, db, upstream, self.pg_url, self.extra_env, **options)
        self.gateways.append(gw)
        return gw

    def stop_gateway(self, gw: Gateway) -> None:
        stop_gateway(self.sup, gw)
        if gw in self.gateways:
            self.gateways.remove(gw)


def start_stacks(
    bench: Bench, kinds: list[str], nginx: str | None, dbs: list[str]
) -> list[tuple[Upstream, list[Gateway]]]:
    """Every upstream and one fresh gateway per database in front of each, started
    side by side (start-up is mostly waiting); the idle ones cost next to nothing."""
    sup = bench.sup
    log(f"starting upstreams {', '.join(kinds)} and gateways on {', '.join(dbs)} ...")
    with ThreadPoolExecutor(max_workers=8) as pool:

        def upstream(kind: str) -> Upstream:
            if kind == "simulator":
                return start_simulator(sup)
            return start_nginx(sup, nginx or "nginx")

        ups = list(pool.map(upstream, kinds))
        jobs = [
            (
                up,
                pool.submit(
                    start_gateway,
                    sup,
                    db,
                    up,
                    bench.pg_url,
                    bench.extra_env,
                    token_fields=bench.token_fields,
                ),
            )
            for up in ups
            for db in dbs
        ]
        stacks: dict[str, list[Gateway]] = {up.kind: [] for up in ups}
        failure: BaseException | None = None
        for up, job in jobs:
            try:
                gw = job.result()
            except BaseException as exc:  # keep collecting, so every started one is stopped
                failure = failure or exc
                continue
            bench.gateways.append(gw)
            stacks[up.kind].append(gw)
    if failure is not None:
        raise failure
    return [(up, stacks[up.kind]) for up in ups]
