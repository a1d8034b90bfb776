"""usage measured in characters and audio time (speech, transcription)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 03:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as table:
        table.add_column(
            sa.Column("input_characters", sa.BigInteger(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("audio_input_ms", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("audio_input_ms")
        table.drop_column("input_characters")
