"""The benchmark's phases, one module each, called from run.py:

- main_phase: direct versus through each gateway, latency, throughput,
  streaming time to first byte, exact billing (summary: the medians and
  comparisons; profiling: py-spy under load);
- open_streams: N concurrent slow streams through each gateway;
- scaling (scaling_runs): `tollway serve --workers N` against one worker, and
  against N independent one-worker gateways;
- idle: a fresh and a restarted gateway's memory.

meter is their CPU accounting. Loopback only; every loop is bounded; every
process goes through the Supervisor (own process group, stopped at the end or
on Ctrl+C).
"""
