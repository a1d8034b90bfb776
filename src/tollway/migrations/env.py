"""Alembic environment: runs on the connection Tollway hands it."""

from alembic import context

from tollway.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through tollway.db.engine.migrate (or `tollway migrate`)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
