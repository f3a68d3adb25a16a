"""Fixtures shared by the suite.

Database tests run on a fresh SQLite file, and on a fresh PostgreSQL database when
TEST_POSTGRES_URL points at a server (CI sets it; TEST_REQUIRE_POSTGRES=1
turns a missing server into a failure instead of a skip).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from antirelou import migrate
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.service import Service
from antirelou.web.app import create_app
from tests.helpers import make_settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES") == "1"
# One template per test session, so concurrent sessions on one server never collide.
TEMPLATE_DB = f"antirelou_tpl_{uuid.uuid4().hex[:8]}"
START = datetime(2017, 10, 27, 14, 0, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError("TEST_REQUIRE_POSTGRES=1 but no POSTGRES_URL given")


def _files_in_var() -> set[str]:
    var = Path("var")  # what the default settings' relative paths point at
    return {p.name for p in var.iterdir()} if var.is_dir() else set()


@pytest.fixture(autouse=True)
def _nothing_written_in_the_checkout() -> Iterator[None]:
    """./var belongs to the operator (`make run`): a test, and any process it starts, keeps
    its files in its own tmp_path. Fails the very test that left something there."""
    before = _files_in_var()
    yield
    left = sorted(_files_in_var() - before)
    assert not left, f"this test left {left} in ./var: give its processes paths of their own"


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """Create (once per run) a migrated template database to clone per test."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    url = make_url(POSTGRES_URL).set(database=TEMPLATE_DB).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database per test, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'antirelou.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    request.getfixturevalue("postgres_template")
    yield from fresh_postgres()


def fresh_postgres(template: str = TEMPLATE_DB) -> Iterator[str]:
    """A new database made from `template` (the migrated one, or template0: empty), dropped
    when the caller is done with it."""
    name = f"antirelou_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A service on a fresh database with one sandbox line."""
    svc = Service(make_settings(database_url), make_engine(database_url), clock)
    svc.sync_lines()
    yield svc
    svc.dispose()


@pytest.fixture
def hook_service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A service whose one line is a Twilio number, behind https://decoy.example.org."""
    settings = make_settings(
        database_url,
        public_url="https://decoy.example.org",
        lines=[{"number": "+33939000021", "provider": "twilio"}],
        twilio={"account_sid": "AC" + "0" * 32, "auth_token": "test-token"},
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    yield service
    service.dispose()


@pytest.fixture
def app(hook_service: Service) -> FastAPI:
    return create_app(hook_service)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
