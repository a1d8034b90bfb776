"""Engines for the embedded SQLite default and for PostgreSQL, and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision (a test checks it against Alembic's head), so
# a database already up to date is seen without importing Alembic at all.
SCHEMA_HEAD = "0014"


def async_url(url: str) -> str:
    """Map the URLs operators write to the async drivers Tollway runs on (one
    PostgreSQL driver, psycopg, serves both SQLAlchemy and the ledger writer)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def make_engine(database_url: str, sqlite_synchronous: str = "NORMAL") -> AsyncEngine:
    url = make_url(async_url(database_url))
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=False)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    _sqlite_pragmas(engine, sqlite_synchronous)
    return engine


SYNCHRONOUS_SETTINGS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
# Past a burst, the ledger's log file is cut back to this when it starts over.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def sqlite_pragmas(synchronous: str, ledger: bool = False, busy_wait: bool = True) -> list[str]:
    """Every PRAGMA Tollway sets on a new SQLite connection, in one place.

    WAL lets readers run beside the one writer; in WAL mode NORMAL is durable
    across a process crash (only a power loss can drop the last commits). The
    ledger's own connections (``ledger``) leave checkpoints to the ledger's
    checkpointer thread, never inside a commit, and leave foreign keys
    unchecked: no table the ledger writes has one. Its writer's connection
    (not ``busy_wait``) never waits in SQLite's busy handler once set up: a
    thread of the writer's waits for the lock instead.
    """
    if synchronous not in SYNCHRONOUS_SETTINGS:
        raise ValueError(f"bad SQLite synchronous setting {synchronous!r}")
    pragmas = ["journal_mode=WAL", f"synchronous={synchronous}", "busy_timeout=30000"]
    if not ledger:
        return [*pragmas, "foreign_keys=ON"]
    pragmas += ["wal_autocheckpoint=0", f"journal_size_limit={WAL_SIZE_LIMIT}"]
    return pragmas if busy_wait else [*pragmas, "busy_timeout=0"]


def _sqlite_pragmas(engine: AsyncEngine, synchronous: str) -> None:
    pragmas = sqlite_pragmas(synchronous)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    async with engine.begin() as conn:
        if await conn.run_sync(_current_revision) == SCHEMA_HEAD:
            return
        await conn.run_sync(_upgrade)


def _current_revision(conn: Connection) -> str | None:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(conn: Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (down, restarting,
    a connection cut, SQLite's file locked or unreadable), not that a statement
    or the schema was wrong (that is a bug: a 500): the caller answers 503."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    try:
        import psycopg
    except ImportError:  # (psycopg is a dependency; kept safe for trimmed installs)
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None and isinstance(cause, psycopg.OperationalError):
        return True  # PostgreSQL's connection failures; a bad statement is another class
    import sqlite3

    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause)
        return any(sign in text for sign in SQLITE_OUTAGES)
    return False


# SQLite's OperationalError covers bad statements too ("no such table"): only
# these say the file could not be used.
SQLITE_OUTAGES = ("database is locked", "unable to open database", "disk I/O error")
