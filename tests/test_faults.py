"""The fault run (bench/faults.py) as a test: 3 replicas behind nginx on their
own PostgreSQL cluster and Redis, mixed load, replicas killed and drained,
PostgreSQL and Redis restarted, upstream failures; the books must balance to
the nano-USD afterwards. About 90 s; CI runs it (nginx required there)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
REQUIRED = os.environ.get("TOLLWAY_REQUIRE_NGINX") == "1"


def missing() -> str | None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("runuser") is None:
        return "PostgreSQL's server binaries (initdb, pg_ctl) and runuser"
    if shutil.which("redis-server") is None:
        return "redis-server"
    return None


def test_the_books_balance_after_every_fault() -> None:
    lacking = missing()
    if lacking:
        if REQUIRED:
            pytest.fail(f"the fault run needs {lacking} (TOLLWAY_REQUIRE_NGINX=1)")
        pytest.skip(f"the fault run needs {lacking}")
    done = subprocess.run(
        [sys.executable, str(BENCH / "faults.py"), "--seconds", "40"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "| verdict | PASS |" in report
    assert "| max drift nano-USD | 0 |" in report
    assert "| charged twice | 0 |" in report
    assert "answers HTTP 500" not in report, report  # a 500 is a bug, faults or not
