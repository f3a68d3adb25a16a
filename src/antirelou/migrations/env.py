"""Alembic environment: runs on the connection that antirelou.migrate hands it."""

from __future__ import annotations

from alembic import context

from antirelou.evidence import tables as evidence_tables  # noqa: F401  (the evidence chain)
from antirelou.models import metadata
from antirelou.web import auth_tables  # noqa: F401  (the dashboard's tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `antirelou db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
