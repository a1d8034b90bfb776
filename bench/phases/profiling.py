"""py-spy on a gateway under load (--profile): where its time goes."""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any

import profile_summary
from load import run_wrk
from plan import Plan
from procs import BENCH_DIR, BenchError, Supervisor
from progress import log
from stack import Gateway


def profile(sup: Supervisor, wrk: str, gw: Gateway, plan: Plan, upstream: str) -> dict[str, Any]:
    """py-spy the gateway while wrk keeps it busy (--profile-connections), twice:

    - "gil": only the thread holding the GIL, i.e. where the interpreter's
      time goes (robust on a busy machine: at most one sample per tick);
    - "active": every thread py-spy sees as not idle (includes the aiosqlite
      worker threads while in SQLite's C code; on an oversubscribed machine a
      runnable thread waiting for a core also counts as active).
    """
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        raise BenchError("py-spy is missing: pip install py-spy")
    seconds = max(1, round(plan.profile_s))
    c = plan.profile_connections
    log(f"profiling {gw.name} for 2×{seconds} s (py-spy --gil, then all active threads; wrk -c{c})")
    load: dict[str, Any] = {}

    def drive() -> None:
        load["wrk"] = run_wrk(sup, wrk, gw.chat_url, c, 2 * seconds + 4, gw.token, plan.wrk_threads)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    time.sleep(1.0)  # let the load ramp up first
    out: dict[str, Any] = {}
    for mode, extra in (("gil", ["--gil"]), ("active", [])):
        raw_path = BENCH_DIR / "results" / f"profile-{upstream}-{gw.db}-{mode}.txt"
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [pyspy, "record", "--pid", str(gw.pid), "--duration", str(seconds),
                "--rate", "200", "--threads", "--format", "raw", "--output", str(raw_path),
                *extra]  # fmt: skip
        sup.run("py-spy", argv, dict(os.environ), timeout=seconds + 60)
        summary = profile_summary.summarise(raw_path.read_text(), top=12)
        print(f"\n--- py-spy {mode}: {gw.name}, upstream {upstream} ---")
        print(profile_summary.render(summary))
        out[mode] = {"raw": str(raw_path.relative_to(BENCH_DIR.parent)), "summary": summary}
    driver.join(2 * seconds + 120)
    if "wrk" not in load:
        raise BenchError("the profiling load did not finish")
    out["wrk"] = load["wrk"]
    out["rps_under_profiler"] = round(load["wrk"]["rps"], 1)
    return out
