"""holds say whether they outlive their request (the stale-hold sweep skips those)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rewrite on either database.
    op.add_column(
        "holds",
        sa.Column("outlives_request", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # The holds of video jobs already running lived as long as their job
    # (the sweep used to look the job up): they keep doing so.
    holds = sa.table("holds", sa.column("request_id"), sa.column("outlives_request"))
    video_jobs = sa.table("video_jobs", sa.column("request_id"))
    op.execute(
        holds.update()
        .where(holds.c.request_id.in_(sa.select(video_jobs.c.request_id)))
        .values(outlives_request=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("outlives_request")
