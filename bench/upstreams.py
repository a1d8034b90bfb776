"""The upstreams a benchmark run measures and puts the gateways in front of:
the tollway simulator, and nginx serving fixed OpenAI-shaped answers."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from procs import NGINX_TEMPLATE, TOLLWAY_MAIN, Child, Supervisor, free_port, wait_http


@dataclass
class Upstream:
    """An OpenAI-compatible fake. The non-streaming and streaming answers may
    sit under different base URLs (nginx serves a fixed body per location)."""

    kind: str  # "simulator" | "nginx"
    child: Child
    port: int
    chat_base: str  # base URL of /chat/completions answering JSON
    stream_base: str  # base URL of /chat/completions answering SSE

    @property
    def chat_url(self) -> str:
        return self.chat_base + "/chat/completions"

    @property
    def stream_url(self) -> str:
        return self.stream_base + "/chat/completions"


def start_simulator(sup: Supervisor) -> Upstream:
    port = free_port()
    child = sup.start(
        "upstream-simulator",
        [
            sys.executable,
            "-c",
            TOLLWAY_MAIN,
            "simulate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )
    wait_http(f"http://127.0.0.1:{port}/v1/models", child)
    base = f"http://127.0.0.1:{port}/v1"
    return Upstream("simulator", child, port, base, base)


def start_nginx(sup: Supervisor, nginx: str) -> Upstream:
    port = free_port()
    prefix = sup.workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_TEMPLATE.read_text().replace("@PORT@", str(port)))
    child = sup.start(
        "upstream-nginx",
        [
            nginx,
            "-p",
            f"{prefix}/",
            "-c",
            str(conf),
            "-e",
            str(prefix / "error.log"),
            "-g",
            "daemon off;",
        ],
    )
    wait_http(f"http://127.0.0.1:{port}/", child)
    return Upstream(
        "nginx",
        child,
        port,
        f"http://127.0.0.1:{port}/v1",
        f"http://127.0.0.1:{port}/sse/v1",
    )
