"""rate limits (requests and tokens a minute, calls at once) and budgets (money
a day, week or month) on tokens and accounts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 16:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("accounts", "tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("rpm_limit", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("tpm_limit", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("max_concurrent", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("budget_nano", sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column("budget_period", sa.String(8), nullable=True))
            batch.add_column(
                sa.Column("budget_used_nano", sa.BigInteger(), nullable=False, server_default="0")
            )
            batch.add_column(
                sa.Column("budget_period_start", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in (
                "budget_period_start",
                "budget_used_nano",
                "budget_period",
                "budget_nano",
                "max_concurrent",
                "tpm_limit",
                "rpm_limit",
            ):
                batch.drop_column(column)
