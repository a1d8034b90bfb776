#!/usr/bin/env python3
"""What one call costs the machines behind a gateway on PostgreSQL, and what
one PostgreSQL primary sustains here: the figures docs/scaling.md argues from.

    python bench/capacity.py [--seconds 10] [--connections 32]

Two fresh gateways on scratch PostgreSQL databases in front of the simulator:
one plain, one with rate limits on (through Redis, database 12). For each, a
wrk run of chat calls, and around it the counters that move:

  - the gateway's CPU seconds (its process group) and all of PostgreSQL's
    (every postgres process: backends, WAL writer, checkpointer);
  - PostgreSQL's commits, rows written and WAL bytes (pg_stat_database,
    pg_current_wal_lsn) for the gateway's database;
  - Redis's commands and CPU (INFO), with limits on;
  - the calls charged (usage records), once the ledger has written them all.

Then pgbench against the same server: commits a second for a transaction of
one call's writes (8 clients), and for a transaction of 32 calls' writes from
one client (one ledger writer's group commit), so the ceiling of one primary
is measured, not assumed. Prints a table per part; exit 1 when it cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import run_wrk
from procfs import group_cpu_seconds, pids_cpu_seconds, pids_with_cmdline
from procs import BenchError, Supervisor, install_signal_handlers
from scratch_pg import PgDatabase, _pg_connect
from stack import start_gateway, stop_gateway
from upstreams import start_simulator

REDIS_URL = "redis://127.0.0.1:6379/12"
LIMITS = {"rpm_limit": 10**9, "tpm_limit": 10**9, "max_concurrent": 100_000}
STATS = """
select xact_commit, tup_inserted + tup_updated + tup_deleted as rows,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint as wal
from pg_stat_database where datname = current_database()
"""
# One call's writes as the ledger makes them (ledger/sql.py): the usage
# record, the ledger line, the account's balance and the token's spend.
ONE_CALL = """\\set a random(1, 1000)
INSERT INTO cap_usage (account_id, model, cost_nano, created_at) VALUES (:a, 'gpt-4o', 1234, now());
INSERT INTO cap_ledger (account_id, delta_nano, created_at) VALUES (:a, -1234, now());
UPDATE cap_accounts SET balance_nano = balance_nano - 1234 WHERE id = :a;
UPDATE cap_tokens SET used_nano = used_nano + 1234 WHERE id = :a;
"""
SETUP = """
drop table if exists cap_usage, cap_ledger, cap_accounts, cap_tokens;
create table cap_usage (id bigserial primary key, account_id int, model text,
  cost_nano bigint, created_at timestamptz);
create table cap_ledger (id bigserial primary key, account_id int, delta_nano bigint,
  created_at timestamptz);
create table cap_accounts (id int primary key, balance_nano bigint);
create table cap_tokens (id int primary key, used_nano bigint);
insert into cap_accounts select g, 10000000000000 from generate_series(1, 1000) g;
insert into cap_tokens select g, 0 from generate_series(1, 1000) g;
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pg-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tollway-capacity-"))
    sup = Supervisor(workdir)
    install_signal_handlers()
    try:
        upstream = start_simulator(sup)
        results = {
            label: measure_gateway(sup, upstream, args, limits)
            for label, limits in (("plain", False), ("limits on", True))
        }
        pgbench = {size: pgbench_rate(args.pg_url, size, args.seconds) for size in (1, 32)}
    except BenchError as exc:
        print(f"capacity: {exc} (logs: {workdir})", file=sys.stderr)
        return 1
    finally:
        sup.stop_all()
    print_tables(results, pgbench)
    print(json.dumps({"gateways": results, "pgbench": pgbench}, indent=1, default=str))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def measure_gateway(
    sup: Supervisor, upstream: Any, args: argparse.Namespace, limits: bool
) -> dict[str, float]:
    env = {"TOLLWAY_REDIS_URL": REDIS_URL} if limits else {}
    if limits:
        redis_cli("FLUSHDB")
    gw = start_gateway(
        sup, "postgres", upstream, args.pg_url, env, token_fields=LIMITS if limits else {}
    )
    try:
        assert gw.pg is not None
        auth = gw.token
        warm = run_wrk(sup, args.wrk, gw.chat_url, args.connections, 2, auth)
        charged_before = settled_count(gw.pg, at_least=warm["ok"])
        time.sleep(1)  # the warm-up's last calls, still in flight when wrk stopped
        charged_before = settled_count(gw.pg)
        before = counters(gw.pg, gw.pid)
        row = run_wrk(sup, args.wrk, gw.chat_url, args.connections, args.seconds, auth)
        charged = settled_count(gw.pg, at_least=charged_before + row["ok"]) - charged_before
        after = counters(gw.pg, gw.pid)
    finally:
        stop_gateway(sup, gw)
    # wrk counts the answers that came before it stopped; the calls still in
    # flight then were charged too (at most one a connection).
    if row["non_2xx"] or not 0 <= charged - row["ok"] <= args.connections:
        raise BenchError(f"{row['ok']} answered 200, {charged} charged, {row['non_2xx']} not 200")
    return per_call(before, after, charged, row["ok_rps"])


def counters(pg: PgDatabase, gateway_pgid: int) -> dict[str, float]:
    stats = asyncio.run(_fetch(pg.url, STATS))[0]
    postgres = pids_cpu_seconds(pids_with_cmdline("postgres"))
    info = redis_info()
    return {
        "gateway_cpu_s": group_cpu_seconds(gateway_pgid),
        "postgres_cpu_s": sum(postgres.values()),
        "commits": stats["xact_commit"],
        "rows": stats["rows"],
        "wal_bytes": stats["wal"],
        "redis_commands": info.get("total_commands_processed", 0),
        "redis_cpu_s": info.get("used_cpu_sys", 0) + info.get("used_cpu_user", 0),
        "at": time.perf_counter(),
    }


def per_call(
    before: dict[str, float], after: dict[str, float], calls: int, rps: float
) -> dict[str, float]:
    delta = {name: after[name] - before[name] for name in before}
    result = {name: delta[name] / calls for name in delta if name != "at"}
    result["calls"] = calls
    result["calls_per_s"] = rps
    return result


def settled_count(pg: PgDatabase, at_least: int = 0, wait_s: float = 30) -> int:
    """The usage records written; waits (bounded) for ``at_least`` of them
    (the ledger writes in batches)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = int(asyncio.run(_fetch(pg.url, "select count(*) as n from usage_records"))[0]["n"])
        if found >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


async def _fetch(url: str, sql: str) -> list[dict[str, Any]]:
    conn, _ = await _pg_connect(url)
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def redis_cli(*command: str) -> str:
    db = REDIS_URL.rsplit("/", 1)[1]
    done = subprocess.run(
        ["redis-cli", "-n", db, *command], capture_output=True, text=True, check=False
    )
    return done.stdout


def redis_info() -> dict[str, float]:
    found = {}
    for line in redis_cli("INFO").splitlines():
        name, _, value = line.partition(":")
        try:
            found[name] = float(value)
        except ValueError:
            continue  # a version, a name: not a counter
    return found


def pgbench_rate(admin_url: str, calls_per_transaction: int, seconds: float) -> dict[str, float]:
    """pgbench's commits a second for transactions of ``calls_per_transaction`` calls' writes."""
    asyncio.run(_fetch(admin_url, "select 1"))  # reachable
    psql = ["psql", "-q", "-X", admin_url, "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*psql, SETUP], check=True, capture_output=True)
    script = "BEGIN;\n" + ONE_CALL * calls_per_transaction + "END;\n"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    # One call a transaction: many clients, as many replicas' ledger writers
    # committing at once. A batch of calls: one client, as one writer's group commit.
    clients = 8 if calls_per_transaction == 1 else 1
    argv = ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds))]
    done = subprocess.run([*argv, "-f", f.name, admin_url], capture_output=True, text=True)
    Path(f.name).unlink()
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise BenchError(f"pgbench failed: {done.stderr[-1000:]}")
    tps = float(found.group(1))
    return {
        "clients": clients,
        "transactions_per_s": tps,
        "calls_per_s": tps * calls_per_transaction,
    }


def print_tables(
    results: dict[str, dict[str, float]], pgbench: dict[int, dict[str, float]]
) -> None:
    rows = [
        ("calls charged", "calls", "{:.0f}"),
        ("calls/s (wrk, all on 2 cores)", "calls_per_s", "{:.0f}"),
        ("gateway CPU per call (µs)", "gateway_cpu_s", "{:.0f}", 1e6),
        ("PostgreSQL CPU per call (µs)", "postgres_cpu_s", "{:.0f}", 1e6),
        ("commits per call", "commits", "{:.3f}"),
        ("rows written per call", "rows", "{:.2f}"),
        ("WAL bytes per call", "wal_bytes", "{:.0f}"),
        ("Redis commands per call", "redis_commands", "{:.2f}"),
        ("Redis CPU per call (µs)", "redis_cpu_s", "{:.1f}", 1e6),
    ]
    labels = list(results)
    print(f"{'per call':<32}" + "".join(f"{label:>12}" for label in labels))
    for name, key, fmt, *scale in rows:
        factor = scale[0] if scale else 1
        cells = (fmt.format(results[label][key] * factor) for label in labels)
        print(f"{name:<32}" + "".join(f"{cell:>12}" for cell in cells))
    print()
    print(f"{'pgbench':<32}{'clients':>8}{'tx/s':>12}{'calls/s':>12}")
    for size, found in pgbench.items():
        name = f"{size} call(s) a transaction"
        rate, calls = found["transactions_per_s"], found["calls_per_s"]
        print(f"{name:<32}{found['clients']:>8.0f}{rate:>12.0f}{calls:>12.0f}")


if __name__ == "__main__":
    sys.exit(main())
