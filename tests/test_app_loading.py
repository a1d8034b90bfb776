"""What a gateway process loads: the relay's stack at start, the management
API (FastAPI), the console's templates (Jinja2) and password hashing (argon2)
only when first used."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tollway.app import OnFirstUse

from conftest import ADMIN_KEY

# Runs in a fresh interpreter: this test process has long imported everything.
FRESH_PROCESS = """
import json, sys
from starlette.testclient import TestClient
from tollway.app import create_app
from tollway.settings import Settings

LATER = ("fastapi", "jinja2", "argon2")

def loaded():
    return [name for name in LATER if name in sys.modules]

out = {}
with TestClient(create_app(Settings.from_env())) as client:
    out["health"] = client.get("/health").status_code
    out["relay"] = client.post("/v1/chat/completions", json={}).status_code
    out["at_start"] = loaded()
    admin = {"Authorization": "Bearer " + sys.argv[1]}
    out["api"] = client.get("/api/me", headers=admin).status_code
    out["after_api"] = loaded()
    out["page"] = client.get("/signin").status_code
    out["after_page"] = loaded()
    out["password_set"] = client.post("/api/users", headers=admin,
                                 json={"username": "u", "password": "a long password"}).status_code
    out["after_password"] = loaded()
print(json.dumps(out))
"""


def test_a_fresh_gateway_loads_the_management_stack_only_when_used(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")},
        "TOLLWAY_DATA_DIR": str(tmp_path),
        "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, ADMIN_KEY],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["health"] == 200
    assert out["relay"] == 401  # the relay answered (no key) without any of them
    assert out["at_start"] == []
    assert out["api"] == 200
    assert out["after_api"] == ["fastapi"]
    assert out["page"] == 200
    assert out["after_page"] == ["fastapi", "jinja2"]
    assert out["password_set"] == 201
    assert out["after_password"] == ["fastapi", "jinja2", "argon2"]


async def _no_content(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _call(app: OnFirstUse) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/"}, receive, send)
    return sent


async def test_requests_that_come_while_it_is_built_wait_for_the_one_app() -> None:
    builds: list[str] = []
    release = threading.Event()

    def build() -> Any:
        builds.append(threading.current_thread().name)
        release.wait(5)  # slow, like the imports it stands for
        return _no_content

    app = OnFirstUse(build)
    calls = [asyncio.ensure_future(_call(app)) for _ in range(8)]
    await asyncio.sleep(0.05)
    assert not any(call.done() for call in calls)  # all waiting on the one build
    release.set()
    answers = await asyncio.gather(*calls)
    assert [sent[0]["status"] for sent in answers] == [204] * 8
    assert len(builds) == 1
    assert builds[0] != threading.current_thread().name  # built off the event loop
    await _call(app)
    assert len(builds) == 1


async def test_a_failed_build_is_tried_again_by_the_next_request() -> None:
    attempts = 0

    def build() -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ImportError("not this time")
        return _no_content

    app = OnFirstUse(build)
    with pytest.raises(ImportError):
        await _call(app)
    assert (await _call(app))[0]["status"] == 204
    assert attempts == 2
