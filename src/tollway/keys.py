"""API keys and management keys: random, shown once, stored as a SHA-256 hash.

A fast hash is right here (unlike passwords): keys carry 256 bits of
randomness, so there is nothing to brute-force, and auth is on the hot path.
"""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "sk-"
MANAGEMENT_KEY_PREFIX = "tm-"


def new_key(prefix: str = API_KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """What lists show of a key: its start and its last four characters."""
    return f"{key[:7]}...{key[-4:]}"
