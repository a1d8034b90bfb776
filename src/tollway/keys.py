"""API keys and management keys: random, shown once, stored as a SHA-256 hash.
Request ids: time-ordered, so the records' index on them grows at its end.

A fast hash is right here (unlike passwords): keys carry 256 bits of
randomness, so there is nothing to brute-force, and auth is on the hot path.
"""

from __future__ import annotations

import hashlib
import secrets
import time

API_KEY_PREFIX = "sk-"
MANAGEMENT_KEY_PREFIX = "tm-"


def new_key(prefix: str = API_KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_request_id() -> str:
    """``req_`` + the time in microseconds (13 hex digits) + 48 random bits.
    Ids made later sort later, so each usage record lands at the end of the
    unique index on request_id (with random ids every call dirtied a random
    page of it: more to write to the log and copy back, fewer cache hits)."""
    return f"req_{time.time_ns() // 1000:013x}{secrets.token_hex(6)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """What lists show of a key: its start and its last four characters."""
    return f"{key[:7]}...{key[-4:]}"
