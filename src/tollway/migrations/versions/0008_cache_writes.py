"""usage records keep the tokens written to a prompt cache (5-minute and 1-hour)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ("cache_write_tokens", "cache_write_1h_tokens")


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rewrite on either database.
    for name in COLUMNS:
        op.add_column(
            "usage_records",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
