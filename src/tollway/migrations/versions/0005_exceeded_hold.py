"""usage records say when a charge went beyond its hold

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rewrite on either database.
    op.add_column(
        "usage_records",
        sa.Column("exceeded_hold", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("exceeded_hold")
