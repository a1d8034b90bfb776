"""The gateway process: ``python -m tollway.server`` (what ``tollway serve`` runs).

A process of its own, so a server carries only what serving needs (no CLI
framework, no terminal rendering): `tollway serve` replaces itself with it.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time

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
    # a worker of `--workers N`: its own listening socket in the port's group
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers > 1:
        raise SystemExit(supervise(args.host, args.port, args.workers, args.log_level))
    serve(args.host, args.port, args.log_level, reuse_port=args.reuse_port)


def serve(host: str, port: int, log_level: str, reuse_port: bool = False) -> None:
    import uvicorn

    config = uvicorn.Config(
        "tollway.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[listening_socket(host, port)] if reuse_port else None)


def listening_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A socket bound with SO_REUSEPORT: every worker has its own, and the
    kernel spreads new connections over them evenly (by a hash of the
    addresses). With one shared accept queue (uvicorn's --workers), whichever
    worker wakes first takes the connections: 57 of 64 went to one worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    return sock


def supervise(host: str, port: int, workers: int, log_level: str) -> int:
    """Run ``workers`` server processes, each on its own SO_REUSEPORT socket;
    restart one that dies; on SIGTERM or SIGINT stop them all (each finishes
    its calls in flight) and return."""
    # Holding the port (bound, not listening: it takes no connections) makes
    # a port another program uses fail here, once, not in every worker.
    try:
        claim = listening_socket(host, port, listen=False)
    except OSError as exc:
        print(f"tollway-server: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "tollway.server", "--host", host, "--port", str(port)]
    argv += ["--log-level", log_level, "--reuse-port"]
    stopping = threading.Event()
    procs = [subprocess.Popen(argv) for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_deaths = 0

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping.wait(0.2):
            for i, proc in enumerate(procs):
                if proc.poll() is None:
                    continue
                quick_deaths = quick_deaths + 1 if time.monotonic() - started[i] < 5 else 0
                if quick_deaths > 3 * workers:  # it cannot start: give up
                    print("tollway-server: workers keep dying at start-up", file=sys.stderr)
                    return 1
                print(
                    f"tollway-server: worker exited ({proc.returncode}); restarting",
                    file=sys.stderr,
                )
                procs[i], started[i] = subprocess.Popen(argv), time.monotonic()
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        for proc in procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
        claim.close()


if __name__ == "__main__":
    main()
