"""What the gateway tells its operators: Prometheus metrics (``metrics.py``),
JSON log lines (``logs.py``) and the liveness and readiness probes
(``health.py``). See docs/observability.md."""

from tollway.observe.metrics import Metrics

__all__ = ["Metrics"]
