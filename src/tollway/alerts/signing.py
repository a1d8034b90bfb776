"""How a webhook's body is signed: HMAC-SHA256 of ``<timestamp>.<body>`` with
the webhook's secret, sent as ``x-tollway-signature: t=<timestamp>,v1=<hex>``.
A receiver recomputes it and refuses a stale timestamp (replays)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-tollway-signature"
EVENT_HEADER = "x-tollway-event"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``, within TOLERANCE_S of ``now``."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_S:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
