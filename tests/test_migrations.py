"""The Alembic migrations build exactly the schema the code queries (antirelou.models).

Each test starts from a truly empty database (a new SQLite file, or a new PostgreSQL
database created for the test and dropped after it), not the suite's migrated template.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from antirelou import migrate, models
from antirelou.db import make_engine

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL)")
    yield from _empty_postgres()


def _empty_postgres() -> Iterator[Engine]:
    name = f"antirelou_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, models.metadata))


def test_empty_database_starts_with_nothing(empty_engine: Engine) -> None:
    assert inspect(empty_engine).get_table_names() == []
    assert migrate.current_revision(empty_engine) is None
    assert not migrate.is_up_to_date(empty_engine)


def test_upgrade_builds_exactly_the_models_schema(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert schema_differences(empty_engine) == []
    tables = set(inspect(empty_engine).get_table_names())
    assert tables == {*models.metadata.tables, "alembic_version"}


def test_upgrade_twice_is_a_no_op(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    revision = migrate.current_revision(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == revision == migrate.head_revision()
    assert schema_differences(empty_engine) == []


def test_is_up_to_date_after_upgrade(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert migrate.is_up_to_date(empty_engine)
    assert migrate.head_revision() is not None


def test_0015_keeps_the_trusted_browsers_and_keys_them_by_account_too(
    empty_engine: Engine,
) -> None:
    """The browsers trusted before the upgrade stay trusted; after it the same token can be
    trusted for a second account."""
    migrate.upgrade(empty_engine, "0014")
    at = "2026-11-30 12:00:00+00:00"
    with empty_engine.begin() as conn:
        for user in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role, language, disabled,"
                    " created_at) VALUES (:id, :email, 'x', 'admin', 'fr', false, :at)"
                ),
                {"id": user, "email": f"u{user}@example.org", "at": at},
            )
        conn.execute(
            text(
                "INSERT INTO trusted_devices (token_hash, user_id, created_at, last_used_at)"
                " VALUES ('h1', 1, :at, :at)"
            ),
            {"at": at},
        )
    migrate.upgrade(empty_engine)
    key = inspect(empty_engine).get_pk_constraint("trusted_devices")["constrained_columns"]
    assert key == ["token_hash", "user_id"]
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO trusted_devices (token_hash, user_id, created_at, last_used_at)"
                " VALUES ('h1', 2, :at, :at)"
            ),
            {"at": at},
        )
        rows = conn.execute(text("SELECT token_hash, user_id FROM trusted_devices")).all()
    assert sorted(rows) == [("h1", 1), ("h1", 2)]
    assert schema_differences(empty_engine) == []


KEYED_TABLES = ("senders", "traffic", "traffic_hours", "text_keys", "budget_counters")


def _table_sql(engine: Engine, table: str) -> str:
    with engine.connect() as conn:
        query = text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t")
        return str(conn.execute(query, {"t": table}).scalar())


def test_0018_stores_the_keyed_tables_by_their_key_and_keeps_their_rows(tmp_path: Path) -> None:
    """SQLite: the five tables are rebuilt WITHOUT ROWID, rows, keys and indexes kept; and
    back again on downgrade."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0017")
    with engine.begin() as conn:
        for insert in KEYED_ROWS.values():
            conn.execute(text(insert), {"at": "2017-10-30 15:00:00.000000"})
    before = _dump(engine)
    try:
        migrate.upgrade(engine)
        for table in KEYED_TABLES:
            assert _table_sql(engine, table).rstrip().endswith("WITHOUT ROWID"), table
        assert _dump(engine) == before
        assert schema_differences(engine) == []
        indexes = {index["name"] for index in inspect(engine).get_indexes("text_keys")}
        assert "ix_text_keys_recent" in indexes
        with pytest.raises(Exception, match="UNIQUE"), engine.begin() as conn:
            conn.execute(text(KEYED_ROWS["senders"]), {"at": "2017-10-30 16:00:00.000000"})
        _downgrade(engine, "0017")
        for table in KEYED_TABLES:
            assert "WITHOUT ROWID" not in _table_sql(engine, table), table
        assert _dump(engine) == before
    finally:
        engine.dispose()


KEYED_ROWS = {
    "senders": "INSERT INTO senders (line, number, first_seen, last_seen, message_count,"
    " recent_count, hostile_texts) VALUES ('+33939000021', '+33612345678', :at, :at, 2, 1, 0)",
    "traffic": "INSERT INTO traffic (line, bucket, shard, texts, new_senders, hostile_texts,"
    " new_hostile, new_odd_shape) VALUES ('+33939000021', :at, 3, 5, 4, 0, 0, 0)",
    "traffic_hours": "INSERT INTO traffic_hours (line, hour, shard, texts, new_senders)"
    " VALUES ('+33939000021', :at, 3, 5, 4)",
    "text_keys": "INSERT INTO text_keys (line, key, sender, first_at)"
    " VALUES ('+33939000021', 'x:abc', '+33612345678', :at)",
    "budget_counters": "INSERT INTO budget_counters (key, spent_micros, reserved_micros)"
    " VALUES ('total', 76270, 0)",
}


def _dump(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            name: sorted(conn.execute(select(models.metadata.tables[name])).all())
            for name in KEYED_TABLES
        }


def _downgrade(engine: Engine, revision: str) -> None:
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
