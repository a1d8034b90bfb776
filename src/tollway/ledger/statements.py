"""The SQL of the ledger's steps, written once for both databases: named
parameters (``:name``), which the PostgreSQL dialect rewrites to its own
style (``Dialect.sql``)."""

from __future__ import annotations

from tollway.ledger.budgets import PERIOD_START, USED_THIS_PERIOD
from tollway.types import USAGE_CLASSES

TOKEN_COLUMNS = USAGE_CLASSES  # the token counts, characters and audio ms

# A hold fits the balance (a token: its quota) and, with a budget, what is
# left of it this period (docs/ledger.md#budgets).
FITS_BUDGET = f"(budget_nano IS NULL OR budget_nano - {USED_THIS_PERIOD} - held_nano >= :amount)"
HOLD_ACCOUNT = f"""UPDATE accounts SET held_nano = held_nano + :amount
WHERE id = :id AND enabled AND balance_nano - held_nano >= :amount AND {FITS_BUDGET}
RETURNING id"""
HOLD_TOKEN = f"""UPDATE tokens SET held_nano = held_nano + :amount
WHERE id = :id AND (quota_nano IS NULL OR quota_nano - used_nano - held_nano >= :amount)
AND {FITS_BUDGET} RETURNING id"""
# A charge also counts in the row's budget period (0 again once it has ended).
SPEND_IN_PERIOD = f"""budget_used_nano = {USED_THIS_PERIOD} + :spent,
budget_period_start = {PERIOD_START}"""
UNHOLD_ACCOUNT = "UPDATE accounts SET held_nano = held_nano - :amount WHERE id = :id"
UNHOLD_TOKEN = "UPDATE tokens SET held_nano = held_nano - :amount WHERE id = :id"
AVAILABLE_BALANCE = "SELECT balance_nano - held_nano FROM accounts WHERE id = :id"
AVAILABLE_QUOTA = "SELECT quota_nano - used_nano - held_nano FROM tokens WHERE id = :id"
# What is left of a budget this period, and the period (None: no budget).
ACCOUNT_BUDGET_LEFT = f"""SELECT budget_nano - {USED_THIS_PERIOD} - held_nano, budget_period
FROM accounts WHERE id = :id"""
TOKEN_BUDGET_LEFT = f"""SELECT budget_nano - {USED_THIS_PERIOD} - held_nano, budget_period
FROM tokens WHERE id = :id"""
CLOSE_HOLD = """UPDATE holds SET state = :state, closed_at = :now
WHERE request_id = :request_id AND state = 'open' RETURNING amount_nano"""
RECORDED_COST = "SELECT cost_nano FROM usage_records WHERE request_id = :request_id"
CHARGE_ACCOUNT = f"""UPDATE accounts SET held_nano = held_nano - :held,
balance_nano = balance_nano - :spent, {SPEND_IN_PERIOD} WHERE id = :id"""
CHARGE_TOKEN = f"""UPDATE tokens SET held_nano = held_nano - :held, used_nano = used_nano + :spent,
last_used_at = :now, {SPEND_IN_PERIOD} WHERE id = :id"""
# The balance stays within +-MAX_NANO: checked against bounds computed in
# Python, so the database never adds past 64 bits (SQLite would turn the
# column into a float, PostgreSQL would fail the batch).
CREDIT_ACCOUNT = """UPDATE accounts SET balance_nano = balance_nano + :amount
WHERE id = :id AND balance_nano BETWEEN :lowest AND :highest
RETURNING balance_nano - COALESCE((SELECT SUM(spent_nano) FROM leases WHERE account_id = :id), 0)"""
LEASE_SPEND = """UPDATE leases SET spent_nano = spent_nano + :cost, renewed_at = :now
WHERE id = :id AND owner = :owner RETURNING amount_nano, spent_nano"""
LEASE_RAISE = "UPDATE leases SET amount_nano = spent_nano WHERE id = :id"
RAISE_ACCOUNT = "UPDATE accounts SET held_nano = held_nano + :amount WHERE id = :id"
RAISE_TOKEN = "UPDATE tokens SET held_nano = held_nano + :amount WHERE id = :id"
LEASE_LOCK = """UPDATE leases SET renewed_at = :now WHERE id = :id AND owner = :owner
RETURNING spent_nano"""
LEASE_FOLD_ACCOUNT = f"""UPDATE accounts SET balance_nano = balance_nano - :spent,
held_nano = held_nano - :amount, {SPEND_IN_PERIOD} WHERE id = :id"""
LEASE_FOLD_TOKEN = f"""UPDATE tokens SET used_nano = used_nano + :spent,
held_nano = held_nano - :amount, last_used_at = :now, {SPEND_IN_PERIOD} WHERE id = :id"""
LEASE_REGRANT = """UPDATE leases SET amount_nano = amount_nano - :spent + :granted,
spent_nano = spent_nano - :spent WHERE id = :id"""
LEASE_INSERT = """INSERT INTO leases (account_id, token_id, owner, amount_nano, spent_nano,
created_at, renewed_at) VALUES (:account_id, :token_id, :owner, :amount, 0, :now, :now)
RETURNING id"""
LEASE_DELETE = """DELETE FROM leases WHERE id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASE_DELETE_STALE = """DELETE FROM leases WHERE id = :id AND renewed_at < :before
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASE_RENEW = """UPDATE leases SET renewed_at = :now WHERE id = :id AND owner = :owner
RETURNING id"""
LEASES_OF_ACCOUNT_DELETE = """DELETE FROM leases WHERE account_id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASES_OF_TOKEN_DELETE = """DELETE FROM leases WHERE token_id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
STATE_BUMP = "UPDATE state_version SET version = version + 1 WHERE id = 1"
# What a lease may take: the balance (a token: its quota) and budget left.
ACCOUNT_SPARE = f"""SELECT balance_nano - held_nano, enabled,
budget_nano - {USED_THIS_PERIOD} - held_nano FROM accounts WHERE id = :id"""
TOKEN_SPARE = f"""SELECT quota_nano - used_nano - held_nano,
budget_nano - {USED_THIS_PERIOD} - held_nano FROM tokens WHERE id = :id"""
INSERT_HOLD = """INSERT INTO holds (request_id, account_id, token_id, amount_nano, state,
outlives_request, created_at)
VALUES (:request_id, :account_id, :token_id, :amount, 'open', :outlives_request, :now)"""
INSERT_LEDGER = """INSERT INTO ledger (created_at, account_id, token_id, request_id, kind,
amount_nano, reason) VALUES (:now, :account_id, :token_id, :request_id, :kind, :amount, :reason)"""
INSERT_USAGE = f"""INSERT INTO usage_records (request_id, created_at, account_id, token_id, model,
endpoint, billing_mode, method, {", ".join(TOKEN_COLUMNS)}, items, unit_prices, cost_nano,
usage_source, status, channel_id, duration_ms, detail, exceeded_hold, attempts, group_name,
multiplier, upstream_cost_nano) VALUES (:request_id, :now,
:account_id, :token_id, :model, :endpoint, :billing_mode, :method,
{", ".join(":" + c for c in TOKEN_COLUMNS)}, :items, :unit_prices, :cost_nano, :usage_source,
:status, :channel_id, :duration_ms, :detail, :exceeded_hold, :attempts, :group_name, :multiplier,
:upstream_cost_nano)"""
