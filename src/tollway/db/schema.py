"""The tables. Money columns are BigInteger nano-USD, named *_nano.

The ledger is append-only; the balance and held columns on accounts and
tokens are kept in step with it in the same transaction, so a balance is
one row read and can always be re-derived from the ledger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Money = BigInteger


def limit_columns() -> list[Column[Any]]:
    """Rate limits (None: none) and a budget of money per period (day, week,
    month, UTC), the same on accounts and tokens; budget_used_nano counts what
    was spent in the period that began at budget_period_start."""
    return [
        Column("rpm_limit", Integer),
        Column("tpm_limit", Integer),
        Column("max_concurrent", Integer),
        Column("budget_nano", Money),
        Column("budget_period", String(8)),
        Column("budget_used_nano", Money, nullable=False, default=0),
        Column("budget_period_start", DateTime(timezone=True)),
    ]


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(255)),
    Column("role", String(16), nullable=False, default="user"),
    Column("management_key_hash", String(64), unique=True),
    Column("management_key_prefix", String(16)),
    Column("balance_nano", Money, nullable=False, default=0),
    Column("held_nano", Money, nullable=False, default=0),
    Column("enabled", Boolean, nullable=False, default=True),
    # The price groups its tokens may use (null: only "default").
    Column("groups", JSON),
    *limit_columns(),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A signed-in console session. The cookie carries a random id; the row is
# found by its SHA-256 (a copy of the table signs no one in). Sign-out deletes
# the row, a password change or a disabled account deletes all the account's,
# and rows past expires_at are swept at sign-in.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "account_id",
        Integer,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("billing_mode", String(32), nullable=False),
    Column("quota_nano", Money),
    Column("used_nano", Money, nullable=False, default=0),
    Column("held_nano", Money, nullable=False, default=0),
    Column("expires_at", DateTime(timezone=True)),
    Column("models", JSON),
    Column("group_name", String(64), nullable=False, default="default"),
    *limit_columns(),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

# Admin edits to the catalog: a full model entry that replaces (or adds to)
# the shipped data files' entry with the same id.
model_overrides = Table(
    "model_overrides",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# An upstream account: where calls for which models, billing methods and
# groups may be forwarded. ``api_keys`` is a list of {"key", "enabled", "reason"}
# (each key disabled on its own); ``status`` is enabled | disabled |
# auto_disabled (every key rejected by the upstream); ``cost`` what the
# upstream charges the operator: {"multiplier": "0.8"} of catalog prices, or
# {"prices": {model id: model prices}} (null: not recorded).
channels = Table(
    "channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("base_url", String(500), nullable=False),
    Column("api_keys", JSON, nullable=False),
    Column("key_strategy", String(16), nullable=False, default="round_robin"),
    Column("models", JSON, nullable=False),
    Column("model_mapping", JSON, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("weight", Integer, nullable=False, default=1),
    Column("groups", JSON, nullable=False),
    Column("methods", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="enabled"),
    Column("status_reason", Text),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    Column("cost", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)

# Price groups: every price a token of the group sees or pays is the catalog
# price x ``multiplier`` (a decimal string). ``default`` (x1) always exists.
# Groups with an ``auto_rank`` form, in its order, what a token of group
# ``auto`` walks: the first with a channel for the call wins.
groups = Table(
    "groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("multiplier", String(40), nullable=False),
    Column("description", Text),
    Column("auto_rank", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

holds = Table(
    "holds",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("token_id", Integer),
    Column("amount_nano", Money, nullable=False),
    Column("state", String(16), nullable=False),  # open | settled | released
    # Lives on after the request that opened it (a video job's hold, closed
    # by its job): the stale-hold sweep leaves it open.
    Column("outlives_request", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)

# A worker process's reserve of an account's (and token's) money: its
# amount counts in accounts.held_nano and tokens.held_nano, so no other
# process can spend it, and the process holds calls against it in memory.
# Settled charges add to ``spent_nano`` (with their usage records) until the
# lease is folded back: balance and token use are then charged by the spent
# amount and the reserve is freed. Until then an account's balance is
# balance_nano - Σ spent_nano of its leases (manage/ reads it so).
leases = Table(
    "leases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("token_id", Integer, index=True),
    Column("owner", String(64), nullable=False),  # the process that holds against it
    Column("amount_nano", Money, nullable=False),
    Column("spent_nano", Money, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    # never reuse an id (SQLite would, after a delete): a process that still
    # knows a returned lease's id must not find another lease under it
    sqlite_autoincrement=True,
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("token_id", Integer),
    Column("request_id", String(64)),
    # hold | release | settle | credit ; amount is the change to the balance
    # (settle: -cost, credit: +amount) or, for hold/release, to what is held.
    Column("kind", String(16), nullable=False),
    Column("amount_nano", Money, nullable=False),
    Column("reason", Text),
    Index("ix_ledger_account_time", "account_id", "created_at"),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("token_id", Integer),
    Column("model", String(200), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("billing_mode", String(32), nullable=False),
    Column("method", String(16), nullable=False),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("cached_input_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_1h_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("reasoning_tokens", BigInteger, nullable=False, default=0),
    Column("image_input_tokens", BigInteger, nullable=False, default=0),
    Column("image_output_tokens", BigInteger, nullable=False, default=0),
    Column("audio_input_tokens", BigInteger, nullable=False, default=0),
    Column("audio_output_tokens", BigInteger, nullable=False, default=0),
    # speech priced by the characters read; transcription by the audio heard
    Column("input_characters", BigInteger, nullable=False, default=0),
    Column("audio_input_ms", BigInteger, nullable=False, default=0),
    Column("items", Integer, nullable=False, default=0),
    Column("unit_prices", JSON, nullable=False),
    Column("cost_nano", Money, nullable=False),
    Column("usage_source", String(16), nullable=False),
    # ok | upstream_error | client_disconnected
    Column("status", String(32), nullable=False),
    Column("channel_id", Integer),  # the channel that served (or was tried last)
    Column("attempts", Integer, nullable=False, default=1),
    # The price group and its multiplier the call was billed at.
    Column("group_name", String(64)),
    Column("multiplier", String(40)),
    # What the serving channel's upstream charges the operator for it.
    Column("upstream_cost_nano", Money),
    Column("duration_ms", Integer),
    Column("detail", Text),
    # charged more than its hold (an upstream that reported more than asked for)
    Column("exceeded_hold", Boolean, nullable=False, default=False),
    Index("ix_usage_account_time", "account_id", "created_at"),
    Index("ix_usage_token_time", "token_id", "created_at"),
)

# Video generation jobs (POST /v1/videos): the gateway's id for each upstream
# job, who owns it, how it is billed, and its last known state. ``request_id``
# is the key of the job's hold in the ledger; ``closed_at`` is set once, by
# whichever poller first sees a final state (a conditional UPDATE), and
# ``cost_nano`` once the ledger has settled (or released, 0) the hold.
video_jobs = Table(
    "video_jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # list order and cursor
    Column("id", String(64), nullable=False, unique=True),  # video_<hex>, what clients see
    Column("upstream_id", String(200), nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("token_id", Integer),
    Column("channel_id", Integer, nullable=False),
    Column("model", String(200), nullable=False),
    Column("billing_mode", String(32), nullable=False),
    Column("method", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),  # videos | videos/remix
    Column("seconds", Integer, nullable=False),
    Column("size", String(32), nullable=False),
    Column("remixed_from", String(64)),  # the source job's gateway id
    Column("request_id", String(64), nullable=False, unique=True),
    Column("hold_nano", Money, nullable=False),
    Column("group_name", String(64)),
    Column("multiplier", String(40)),  # the group's, when the job was made
    # queued | in_progress | completed | failed | cancelled | expired
    Column("state", String(16), nullable=False),
    Column("error", JSON),
    Column("upstream_object", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("polled_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("cost_nano", Money),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_video_jobs_account_seq", "account_id", "seq"),
    Index("ix_video_jobs_open", "closed_at", "polled_at"),
)

# One row (id=1): bumped on every management change, polled by each replica
# so caches everywhere drop stale entries within a poll interval.
state_version = Table(
    "state_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Every running gateway process and the state version it has taken in: an edit
# that lowers what may be spent waits until each live one has seen it.
processes = Table(
    "processes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seen_version", BigInteger, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


# Alerts (tollway.alerts): an account's webhooks, and every event they were
# sent, at most once per key (a budget threshold per period, a low balance per
# day), with its delivery attempts.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("events", JSON, nullable=False),
    Column("thresholds", JSON, nullable=False),  # budget percentages, e.g. [50, 80, 100]
    Column("low_balance_nano", Money),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("event_key", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("webhook_id", "event_key", name="uq_webhook_events_key"),
    Index("ix_webhook_events_due", "status", "next_at"),
)


# Who changed what (tollway.manage.audit): credits and debits, prices,
# channels, groups, accounts, and tokens edited by admins.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_account_id", Integer),
    Column("actor", String(200), nullable=False),  # "alice (admin)", "cli"
    Column("action", String(64), nullable=False),  # "account.credit", "channel.update", ...
    Column("target", String(200), nullable=False),  # "account:5", "model:gpt-4o"
    Column("detail", JSON),  # what changed (never a key or a password)
    Index("ix_audit_log_at", "at"),
)

# Responses stored by POST /v1/responses (``store``, the default): what GET
# /v1/responses/{id} and ``previous_response_id`` read. A response belongs to
# the account that made it; no other account can read or continue it.
stored_responses = Table(
    "stored_responses",
    metadata,
    Column("id", String(64), primary_key=True),  # resp_<hex>, what clients see
    Column("account_id", Integer, nullable=False),
    Column("token_id", Integer),
    Column("model", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("previous_response_id", String(64)),
    Column("input_items", JSON, nullable=False),  # the input, as items, with ids
    Column("response", JSON, nullable=False),  # the response object as answered
    Index("ix_stored_responses_account", "account_id", "created_at"),
)
