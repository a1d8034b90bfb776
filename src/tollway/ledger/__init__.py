"""The ledger: money held, settled, released and credited, exactly (integer
nano-USD), append-only, group-committed, on SQLite or PostgreSQL.

The modules, from the top:

- ``book``: ``Ledger``, the one entry point.
- ``leases``: calls held in memory against a slice of an account's money
  this process reserved (a lease).
- ``reconciler``: closing what stopped processes left open.
- ``writers``: the batches' writer (on the event loop, or a thread), with
  ``turns`` (SQLite's write lock between processes) and ``checkpointer``.
- ``sql``, ``lease_sql``, ``batch``, ``statements``, ``dialects``: one batch
  of steps as one transaction, in plain SQL on the DB-API drivers.
- ``records`` and ``steps``: the vocabulary, plain data.
"""

from tollway.ledger.book import Ledger
from tollway.ledger.records import (
    BalanceOutOfRange,
    InsufficientFunds,
    LedgerError,
    Settlement,
    UsageRecord,
    UsageStatus,
)

__all__ = [
    "BalanceOutOfRange",
    "InsufficientFunds",
    "Ledger",
    "LedgerError",
    "Settlement",
    "UsageRecord",
    "UsageStatus",
]
