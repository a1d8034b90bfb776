"""Routing a call across channels: which upstream accounts may serve it, in
what order they are tried, and what each one's failures teach the next call.

- ``plan.py``: the order of a call's candidates (priority, weighted random,
  cheapest, sticky, cooling last), pure.
- ``health.py``: each channel's recent latency and errors, and its circuit
  breaker (cooldown, then one trial call).
- ``sticky.py``: calls sharing a prompt-cache key go where the last one went.
- ``failures.py``: which upstream failures move a call to the next channel,
  and which say a key is dead.
- ``router.py``: the per-process router the pipeline asks (keys, health,
  sticky routes, the strategy).
- ``status.py``: what is written down: a key or channel auto-disabled, the
  last error, a passing test re-enabling it.
"""

from tollway.routing.failures import Failure, key_rejected, retryable
from tollway.routing.health import Health
from tollway.routing.plan import ordered
from tollway.routing.router import Router
from tollway.routing.sticky import StickyRoutes

__all__ = [
    "Failure",
    "Health",
    "Router",
    "StickyRoutes",
    "key_rejected",
    "ordered",
    "retryable",
]
