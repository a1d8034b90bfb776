"""The README's first command: `tollway demo` serves a working gateway, and the
commands it prints work when pasted, whatever the terminal's width."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from conftest import free_port


@dataclass
class Demo:
    base_url: str
    key: str
    output: str

    def commands(self) -> list[str]:
        """The commands after "Try it:", one per blank-line separated block,
        exactly as printed (as a copy from the terminal takes them)."""
        tried = self.output.split("Try it:", 1)[1].split("Press Ctrl+C", 1)[0]
        return [block for block in re.split(r"\n[ \t]*\n", tried.strip("\n")) if block]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    port = free_port()
    log = tmp / "demo.log"
    # a narrow terminal: nothing printed may be wrapped to fit it
    env = {**os.environ, "TOLLWAY_DATA_DIR": str(tmp / "data"), "COLUMNS": "40"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollway", "demo", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "Press Ctrl+C" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        found = re.search(r"API key \(Pay-per-Use Priority\): (sk-\S+)", text)
        assert found, text
        yield Demo(f"http://127.0.0.1:{port}", found.group(1), text)
    finally:
        proc.terminate()
        proc.wait(10)


def test_demo_prints_a_working_key(demo: Demo) -> None:
    assert f"{demo.base_url}/v1/chat/completions" in demo.output
    client = openai.OpenAI(base_url=f"{demo.base_url}/v1", api_key=demo.key, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content
    client.close()


def run(command: str) -> str:
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def test_the_printed_commands_run_as_pasted_at_any_width(demo: Demo) -> None:
    commands = demo.commands()
    assert len(commands) == 4, demo.output
    curl, python, messages, management = commands
    assert curl.startswith(f"curl -s {demo.base_url}/v1/chat/completions"), demo.output
    assert "HTTP/1.1 200" in run(curl), curl
    assert python.startswith('python -c "from openai import OpenAI'), demo.output
    printed = run(shlex.quote(sys.executable) + python.removeprefix("python"))
    assert "CompletionUsage(" in printed, python
    assert messages.startswith(f"curl -s {demo.base_url}/v1/messages"), demo.output
    answer = json.loads(run(messages))
    assert answer["type"] == "message" and answer["model"] == "claude-sonnet-4-5", answer
    billing_modes = management.splitlines()[0]
    assert billing_modes == f"curl -s {demo.base_url}/api/billing-modes", demo.output
    assert '"pay_per_call"' in run(billing_modes)
