"""Integration fixtures: a fresh PostgreSQL database per test on the machine's server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

SERVER = os.environ.get("KASSEBRO_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database kassebro_it_<random>, dropped WITH (FORCE) afterwards."""
    name = f"kassebro_it_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
