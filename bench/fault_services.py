"""The services a fault run starts, owns and breaks: its own PostgreSQL
cluster and Redis server (so restarting them touches nothing else on the
machine), the upstream simulator, N gateway replicas and nginx in front.

PostgreSQL runs from Debian's binaries as the ``postgres`` user in a scratch
directory (initdb refuses root); Redis keeps nothing on disk.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from procs import TOLLWAY_MAIN, BenchError, Child, Supervisor, free_port, wait_http

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "nginx" / "tollway.conf"
ADMIN_KEY = "tm-fault-run-admin-" + "0" * 24
SECRET_KEY = "fault-run-secret-" + "1" * 32


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise BenchError(f"PostgreSQL's {name} not found (Debian's postgresql package)")
    return found[-1]


@dataclass
class Postgres:
    """A PostgreSQL cluster of the run's own, trust auth on loopback."""

    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        argv = ["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.data)]
        subprocess.run([*argv, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb and start, in a directory of the ``postgres`` user's (removed by ``remove``)."""
    home = Path(tempfile.mkdtemp(prefix="tollway-faults-pg-"))
    shutil.chown(home, "postgres", "postgres")
    data, log = home / "data", home / "pg.log"
    initdb = ["runuser", "-u", "postgres", "--", _pg_bin("initdb"), "-D", str(data)]
    done = subprocess.run([*initdb, "-U", "postgres", "--auth=trust"], capture_output=True)
    if done.returncode != 0:
        raise BenchError(f"initdb failed: {done.stderr.decode(errors='replace')[-1000:]}")
    pg = Postgres(data, free_port(), log)
    pg.start()
    return pg


@dataclass
class Redis:
    sup: Supervisor
    port: int
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.child = self.sup.start("redis", argv)
        for _ in range(100):
            done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
            if done.stdout.strip() == b"PONG":
                return
            subprocess.run(["sleep", "0.05"])
        raise BenchError(f"redis did not start:\n{self.child.log_tail()}")

    def stop(self) -> None:
        if self.child is not None:
            self.sup.stop(self.child)
            self.child = None


def start_simulator(sup: Supervisor) -> str:
    port = free_port()
    argv = [sys.executable, "-c", TOLLWAY_MAIN, "simulate", "--port", str(port), "--seed", "7"]
    child = sup.start("simulator", argv)
    wait_http(f"http://127.0.0.1:{port}/v1/models", child)
    return f"http://127.0.0.1:{port}"


@dataclass
class Replica:
    name: str
    port: int
    env: dict[str, str]
    child: Child | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Replicas:
    """N gateways on one database and one Redis."""

    sup: Supervisor
    env: dict[str, str]
    replicas: list[Replica] = field(default_factory=list)

    def add(self, n: int) -> None:
        for _ in range(n):
            name = f"replica-{len(self.replicas) + 1}"
            replica = Replica(name, free_port(), self.env)
            self.replicas.append(replica)
            self.start(replica)

    def start(self, replica: Replica) -> None:
        argv = [sys.executable, "-c", TOLLWAY_MAIN, "serve", "--port", str(replica.port)]
        replica.child = self.sup.start(replica.name, argv, env=replica.env)
        wait_http(replica.base + "/health", replica.child, timeout_s=120)

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no draining, no lease returned (the others' reconcilers do it)."""
        if replica.child is not None and replica.child.alive():
            os.killpg(replica.child.pid, signal.SIGKILL)
            replica.child.popen.wait(10)

    def drain(self, replica: Replica, grace_s: float = 60) -> None:
        """SIGTERM: calls in flight finish, leases are returned, then it exits."""
        if replica.child is not None and replica.child.alive():
            os.killpg(replica.child.pid, signal.SIGTERM)
            replica.child.popen.wait(grace_s)

    def stop_all(self) -> None:
        for replica in self.replicas:
            self.drain(replica)


def gateway_env(pg: Postgres, redis_url: str, upstream_timeout_s: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env.update(
        TOLLWAY_DATABASE_URL=pg.url,
        TOLLWAY_REDIS_URL=redis_url,
        TOLLWAY_ADMIN_KEY=ADMIN_KEY,
        TOLLWAY_SECRET_KEY=SECRET_KEY,
        TOLLWAY_UPSTREAM_TIMEOUT_S=str(upstream_timeout_s),
        TOLLWAY_STATE_POLL_MS="250",
    )
    return env


def start_nginx(sup: Supervisor, replicas: list[Replica]) -> str:
    """nginx running the deploy site file (deploy/nginx/tollway.conf) as
    production does, with the run's own replica list and listen port beside
    its main config (the two files the site file includes)."""
    if not NGINX_CONF.exists():
        raise BenchError(f"{NGINX_CONF} is missing")
    port = free_port()
    prefix = sup.workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    servers = "".join(f"server {r.base.removeprefix('http://')} max_fails=0;\n" for r in replicas)
    (prefix / "tollway-replicas.conf").write_text(servers)
    (prefix / "tollway-listen.conf").write_text(f"listen 127.0.0.1:{port};\naccess_log off;\n")
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_main(NGINX_CONF))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
    child = sup.start("nginx", [*argv, "-g", "daemon off;"])
    wait_http(f"http://127.0.0.1:{port}/health", child)
    return f"http://127.0.0.1:{port}"


def _nginx_main(site: Path) -> str:
    """The scratch-prefix main config (deploy/nginx/standalone.conf) around the site file."""
    return (NGINX_CONF.parent / "standalone.conf").read_text().replace("SITE", str(site))
