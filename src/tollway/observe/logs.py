"""Log lines: text (the default) or one JSON object a line
(TOLLWAY_LOG_FORMAT=json), and the line each call leaves.

A call's line names who called (account and token ids), what (model, billing
mode and method), how it ended (status, cost, time, channel) and its request
id; it never carries a key: nothing here is given one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from tollway.ledger.records import UsageRecord
from tollway.types import nano_to_usd

CALLS_LOGGER = "tollway.calls"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord attributes every record has: what is not among them came in ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

calls_log = logging.getLogger(CALLS_LOGGER)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the fields
    passed in ``extra``, and the traceback (``exc_info``) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(log_format: str, level: str = "warning") -> None:
    """The root logger's one handler, in ``log_format``; in JSON the call
    lines are on (INFO on ``tollway.calls``) whatever the level."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if log_format == "json":
        calls_log.setLevel(logging.INFO)


def log_call(record: UsageRecord) -> None:
    """The call's line, when INFO is on for ``tollway.calls`` (a level check otherwise)."""
    if not calls_log.isEnabledFor(logging.INFO):
        return
    calls_log.info("call", extra=call_fields(record))


def call_fields(record: UsageRecord) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "account_id": record.account_id,
        "token_id": record.token_id,
        "model": record.model,
        "endpoint": record.endpoint,
        "method": record.method,
        "billing_mode": record.billing_mode,
        "cost_usd": nano_to_usd(record.cost_nano),
        "status": str(record.status),
        "duration_ms": record.duration_ms,
        "channel_id": record.channel_id,
        "attempts": record.attempts,
    }
