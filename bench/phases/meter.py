"""CPU accounting: who had the cores during a measurement (the gateway and
each of its workers, the upstream, PostgreSQL's backends, the load client,
everything else, and nobody)."""

from __future__ import annotations

import os
import time
from typing import Any

from procfs import (
    children_cpu_seconds,
    gateway_workers,
    group_cpu_seconds,
    machine_busy_jiffies,
    per_pid_cpu_seconds,
    pids_cpu_seconds,
    pids_with_cmdline,
)


class Meter:
    """Δ CPU of the gateway's processes, the upstream's group, this process's
    reaped children (wrk, once it has exited) and the whole machine.

    ``gateway_pgid`` and ``pg_db`` may also be lists: several gateways loaded
    at once (the independent scaling runs) count as one gateway, with every
    gateway's workers in ``gateway_worker_cores`` (in the order given)."""

    def __init__(
        self,
        gateway_pgid: int | list[int] | None,
        upstream_pgid: int | None,
        pg_db: str | list[str] | None = None,
    ) -> None:
        self.gws = _as_list(gateway_pgid)
        self.up = upstream_pgid
        self.pg_dbs = _as_list(pg_db)
        self.db0 = self._db_cpu()
        self.t0 = time.monotonic()
        self.busy0, self.total0 = machine_busy_jiffies()
        self.gw0 = self._gw_cpu()
        self.up0 = group_cpu_seconds(upstream_pgid) if upstream_pgid else 0.0
        self.children0 = children_cpu_seconds()
        self.workers = [pid for pgid in self.gws for pid in gateway_workers(pgid)]

    def _gw_cpu(self) -> dict[int, float]:
        return {pid: s for pgid in self.gws for pid, s in per_pid_cpu_seconds(pgid).items()}

    def _db_cpu(self) -> dict[int, float]:
        return {
            pid: s
            for name in self.pg_dbs
            for pid, s in pids_cpu_seconds(pids_with_cmdline(name)).items()
        }

    def stop(
        self, requests: int | None = None, client_cpu_s: float | None = None
    ) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        busy1, total1 = machine_busy_jiffies()
        cores = os.cpu_count() or 1
        machine = cores * (busy1 - self.busy0) / max(1, total1 - self.total0)
        gw1 = self._gw_cpu()
        gw_delta = {pid: gw1[pid] - self.gw0.get(pid, 0.0) for pid in gw1}
        gw_cpu = sum(gw_delta.values())
        up_cpu = (group_cpu_seconds(self.up) - self.up0) if self.up else 0.0
        client = (
            client_cpu_s if client_cpu_s is not None else children_cpu_seconds() - self.children0
        )
        db_cpu = 0.0
        if self.pg_dbs:
            db1 = self._db_cpu()
            db_cpu = sum(v - self.db0.get(pid, 0.0) for pid, v in db1.items())
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "database_cores": round(db_cpu / wall, 3),
            "gateway_cores": round(gw_cpu / wall, 3),
            "gateway_worker_cores": [
                round(gw_delta.get(pid, 0.0) / wall, 3) for pid in self.workers
            ],
            "upstream_cores": round(up_cpu / wall, 3),
            "client_cores": round(client / wall, 3),
            "machine_busy_cores": round(machine, 3),
            "idle_cores": round(max(0.0, cores - machine), 3),
            "other_cores": round(max(0.0, machine - (gw_cpu + up_cpu + client + db_cpu) / wall), 3),
        }
        if requests:
            out["gateway_cpu_ms_per_req"] = round(1000 * gw_cpu / requests, 4)
        return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
