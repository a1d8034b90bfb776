"""channels route by priority, weight, group and method with several keys;
price groups; usage records name the attempts, group and upstream cost

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 08:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BOTH_METHODS = ["per_use", "per_call"]


def upgrade() -> None:
    _channels()
    op.create_table(
        "groups",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("multiplier", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("auto_rank", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_groups")),
    )
    groups = sa.table("groups", sa.column("name"), sa.column("multiplier"), sa.column("created_at"))
    op.execute(groups.insert().values(name="default", multiplier="1", created_at=sa.func.now()))
    op.add_column("accounts", sa.Column("groups", sa.JSON(), nullable=True))
    op.add_column(
        "tokens",
        sa.Column("group_name", sa.String(64), nullable=False, server_default="default"),
    )
    op.add_column(
        "usage_records",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
    )
    for table in ("usage_records", "video_jobs"):
        op.add_column(table, sa.Column("group_name", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("multiplier", sa.String(40), nullable=True))
    op.add_column("usage_records", sa.Column("upstream_cost_nano", sa.BigInteger(), nullable=True))


def _channels() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("api_keys", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("key_strategy", sa.String(16), nullable=False, server_default="round_robin")
        )
        batch.add_column(sa.Column("model_mapping", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("weight", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("methods", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="enabled")
        )
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cost", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    channels = sa.table(
        "channels",
        sa.column("id"),
        sa.column("api_key"),
        sa.column("enabled"),
        sa.column("api_keys", sa.JSON()),
        sa.column("model_mapping", sa.JSON()),
        sa.column("groups", sa.JSON()),
        sa.column("methods", sa.JSON()),
        sa.column("status"),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(channels.c.id, channels.c.api_key, channels.c.enabled)):
        bind.execute(
            channels.update()
            .where(channels.c.id == row.id)
            .values(
                api_keys=[{"key": row.api_key, "enabled": True, "reason": None}],
                model_mapping={},
                groups=["default"],
                methods=BOTH_METHODS,
                status="enabled" if row.enabled else "disabled",
            )
        )
    with op.batch_alter_table("channels") as batch:
        for name in ("api_keys", "model_mapping", "groups", "methods"):
            batch.alter_column(name, existing_type=sa.JSON(), nullable=False)
        batch.drop_column("api_key")
        batch.drop_column("enabled")


def downgrade() -> None:
    for table in ("usage_records", "video_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("group_name")
            batch.drop_column("multiplier")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("attempts")
        batch.drop_column("upstream_cost_nano")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("group_name")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("groups")
    op.drop_table("groups")
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("api_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("enabled", sa.Boolean(), nullable=True))
    channels = sa.table(
        "channels",
        sa.column("id"),
        sa.column("api_key"),
        sa.column("enabled"),
        sa.column("api_keys", sa.JSON()),
        sa.column("status"),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(channels.c.id, channels.c.api_keys, channels.c.status)):
        first = row.api_keys[0]["key"] if row.api_keys else ""
        bind.execute(
            channels.update()
            .where(channels.c.id == row.id)
            .values(api_key=first, enabled=row.status != "disabled")
        )
    with op.batch_alter_table("channels") as batch:
        batch.alter_column("api_key", existing_type=sa.Text(), nullable=False)
        batch.alter_column("enabled", existing_type=sa.Boolean(), nullable=False)
        for name in (
            "api_keys",
            "key_strategy",
            "model_mapping",
            "weight",
            "groups",
            "methods",
            "status",
            "status_reason",
            "last_error",
            "last_error_at",
            "cost",
            "updated_at",
        ):
            batch.drop_column(name)
