"""The README's first command: `tollway demo` serves a working gateway."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openai

from conftest import free_port


def test_demo_prints_a_working_key(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "TOLLWAY_DATA_DIR": str(tmp_path / "data")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollway", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        key = None
        deadline = time.monotonic() + 30
        while key is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            found = re.search(r"API key \(Pay-per-Use Priority\): (sk-\S+)", log.read_text())
            key = found.group(1) if found else None
            time.sleep(0.1)
        assert key, log.read_text()
        text = log.read_text()
        assert f"http://127.0.0.1:{port}/v1/chat/completions" in text and "curl" in text
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]
        )
        assert reply.choices[0].message.content
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
