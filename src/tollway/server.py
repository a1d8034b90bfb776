"""The gateway process: ``python -m tollway.server`` (what ``tollway serve`` runs).

A process of its own, so a server carries only what serving needs (no CLI
framework, no terminal rendering): `tollway serve` replaces itself with it.

With ``--workers N`` it is a small supervisor of N worker processes. A worker
stops when its supervisor dies, however it dies (``kill -9`` included), and a
start refuses a port something still listens on, so after an upgrade no old
worker keeps taking traffic beside the new ones. The workers share one
PROMETHEUS_MULTIPROC_DIR (made by the supervisor unless set), so /metrics
answers for all of them whichever one is asked.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from tollway.settings import Settings

if TYPE_CHECKING:
    import uvicorn

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# An idle connection is kept longer than clients keep theirs (httpx, so the
# openai SDK: 5 s; load balancers: 60 s). With uvicorn's 5 s on both sides, a
# client could send on a connection the server was closing that instant: the
# call failed with a read error (seen under load in the tests).
KEEP_ALIVE_S = 65


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
    # a worker of `--workers N`: its own listening socket in the port's group,
    # and the read end of a pipe only its supervisor writes to
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--supervisor-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers > 1:
        raise SystemExit(supervise(args.host, args.port, args.workers, args.log_level))
    code = serve(args.host, args.port, args.log_level, args.reuse_port, args.supervisor_fd)
    raise SystemExit(code)


def serve(
    host: str,
    port: int,
    log_level: str,
    reuse_port: bool = False,
    supervisor_fd: int | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (or, for a worker, its supervisor's end).
    The socket is bound here, before the app loads, so a port in use is one
    line and exit status 1."""
    import uvicorn

    from tollway.observe.logs import configure_logging

    log_format = Settings.from_env().log_format
    configure_logging(log_format, log_level)
    if supervisor_fd is not None:
        die_with_parent()
    try:
        sock = listening_socket(host, port, reuse_port=reuse_port)
    except OSError as exc:
        print(f"tollway-server: {cannot_listen(host, port, exc)}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        "tollway.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        # in JSON, uvicorn's own lines go through the root logger's JSON handler
        log_config=None if log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    if supervisor_fd is not None:
        stop_when_closed(supervisor_fd, server)
    server.run(sockets=[sock])
    return 0


def listening_socket(
    host: str, port: int, listen: bool = True, reuse_port: bool = True
) -> socket.socket:
    """A socket bound with SO_REUSEPORT: every worker has its own, and the
    kernel spreads new connections over them evenly (by a hash of the
    addresses). With one shared accept queue (uvicorn's --workers), whichever
    worker wakes first takes the connections: 57 of 64 went to one worker.
    A lone server binds without it, so it cannot join a group already there.

    SO_REUSEADDR lets a restart bind while the connections the last server
    closed linger in TIME_WAIT; it never lets two sockets listen on one port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> None:
    """Raise OSError unless the port is free to serve on. Bound without
    SO_REUSEPORT, this probe conflicts with every listener on the port, a
    SO_REUSEPORT group of (old) workers included, which a socket with
    SO_REUSEPORT would quietly join."""
    listening_socket(host, port, listen=False, reuse_port=False).close()


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    reason = (exc.strerror or str(exc)).lower()
    hint = " (another server, or tollway workers still running?)" if "in use" in reason else ""
    return f"cannot listen on {host}:{port}: {reason}{hint}"


def supervise(host: str, port: int, workers: int, log_level: str) -> int:
    """Run ``workers`` server processes, each on its own SO_REUSEPORT socket;
    restart one that dies; on SIGTERM or SIGINT stop them all (each finishes
    its calls in flight) and return."""
    # No one may listen there (old workers' SO_REUSEPORT group included);
    # then the port is held (bound, not listening: it takes no connections),
    # so a program that takes it meanwhile fails here, once, not every worker.
    try:
        check_port(host, port)
        claim = listening_socket(host, port, listen=False)
    except OSError as exc:
        print(f"tollway-server: {cannot_listen(host, port, exc)}", file=sys.stderr)
        return 1
    # Workers read this pipe; only this process holds the write end (os.pipe's
    # descriptors are not inherited unless passed), so when it dies, however
    # it dies, every worker reads end-of-file.
    watched, held = os.pipe()
    argv = [sys.executable, "-m", "tollway.server", "--host", host, "--port", str(port)]
    argv += ["--log-level", log_level, "--reuse-port", "--supervisor-fd", str(watched)]
    metrics_dir, made = metrics_dir_for_workers()
    env = {**os.environ, MULTIPROC_ENV: metrics_dir}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start = lambda: subprocess.Popen(argv, pass_fds=[watched], env=env)  # noqa: E731
        return run_workers(start, workers, procs, worker_gone(metrics_dir))
    finally:
        stop_workers(procs)
        for fd in (watched, held):
            os.close(fd)
        claim.close()
        if made:
            shutil.rmtree(metrics_dir, ignore_errors=True)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir_for_workers() -> tuple[str, bool]:
    """Where the workers write their metrics: the operator's
    PROMETHEUS_MULTIPROC_DIR (emptied: values of an earlier run would add
    up with these), else a new directory; and whether it was made here."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return tempfile.mkdtemp(prefix="tollway-metrics-"), True
    os.makedirs(given, exist_ok=True)
    for name in os.listdir(given):
        if name.endswith(".db"):
            os.remove(os.path.join(given, name))
    return given, False


def worker_gone(metrics_dir: str) -> Callable[[int], None]:
    """What a dead worker leaves: its live gauges no longer count (its
    counters and histograms do, so totals never go back)."""
    from prometheus_client import multiprocess

    return lambda pid: multiprocess.mark_process_dead(pid, metrics_dir)


def run_workers(
    start: Callable[[], subprocess.Popen[bytes]],
    workers: int,
    procs: list[subprocess.Popen[bytes]],
    gone: Callable[[int], None] | None = None,
) -> int:
    """Start the workers into ``procs``; restart one that dies, until SIGTERM
    or SIGINT (0) or they keep dying at start-up (1)."""
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs.extend(start() for _ in range(workers))
    started = [time.monotonic()] * workers
    quick_deaths = 0
    while not stopping.wait(0.2):
        for i, proc in enumerate(procs):
            if proc.poll() is None:
                continue
            quick_deaths = quick_deaths + 1 if time.monotonic() - started[i] < 5 else 0
            if quick_deaths > 3 * workers:  # it cannot start: give up
                print("tollway-server: workers keep dying at start-up", file=sys.stderr)
                return 1
            print(f"tollway-server: worker exited ({proc.returncode}); restarting", file=sys.stderr)
            if gone is not None:
                gone(proc.pid)
            procs[i], started[i] = start(), time.monotonic()
    return 0


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()


def die_with_parent() -> None:
    """On Linux, ask the kernel for SIGTERM when the parent dies (a worker then
    stops as on its supervisor's SIGTERM: finishing its calls in flight).
    Elsewhere, and should this fail, the supervisor's pipe still tells."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return


def stop_when_closed(fd: int, server: uvicorn.Server) -> None:
    """Stop ``server`` (gracefully, as SIGTERM does) once ``fd`` reads
    end-of-file: the supervisor holding the pipe's other end is gone. A thread
    blocked in read() until then: nothing on the request path."""

    def watch() -> None:
        while os.read(fd, 64):  # nothing is ever written: this waits for the end
            pass
        print("tollway-server: supervisor gone; this worker stops", file=sys.stderr)
        server.should_exit = True

    threading.Thread(target=watch, name="tollway-supervisor-watch", daemon=True).start()


if __name__ == "__main__":
    main()
