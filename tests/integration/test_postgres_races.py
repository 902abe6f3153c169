"""On PostgreSQL: tables made by eight processes at once on a fresh journal database (a first night's
tasks do that; without the advisory lock, `UniqueViolation` on pg_type or `DuplicateTable`), and one
file indexed by two vendors at once (without the upsert, a primary key violation)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from tests.unit.test_tables import tables_made_by_racers

pytestmark = pytest.mark.integration


def test_eight_processes_create_every_table_of_a_fresh_postgres_journal_at_once(database: str) -> None:
    for _ in range(3):  # each round on tables made by the one before, the first on none
        assert tables_made_by_racers(database) == []


def test_a_file_indexed_by_two_vendors_at_once_is_one_row_postgres(database: str) -> None:
    from kassebro.core.tables import create_tables
    from kassebro.sources import file_index

    engine = sa.create_engine(database)
    create_tables(file_index._metadata, engine)
    row = {"path": "/data/saft/shop/day.xml", "mtime_ns": 1, "summary": None}
    errors: list[str] = []
    first = engine.connect()
    transaction = first.begin()
    file_index._replace(first, [{**row, "size": 10, "indexed_at": dt.datetime.now(dt.UTC)}])  # not committed yet

    def second() -> None:  # read no row either (the first's is not committed), so it writes too
        try:
            with engine.begin() as conn:
                file_index._replace(conn, [{**row, "size": 12, "indexed_at": dt.datetime.now(dt.UTC)}])
        except sa.exc.DBAPIError as exc:
            errors.append(type(exc.orig).__name__)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second now waits on the first's row
    transaction.commit()
    first.close()
    thread.join(30)
    with engine.connect() as conn:
        sizes = conn.execute(sa.select(file_index.files_table.c.size)).scalars().all()
    engine.dispose()
    assert errors == [] and sizes == [12]


def test_a_task_process_finds_the_tables_in_one_statement_each(database: str) -> None:
    """Every task process checks its tables at start (three per vendor-day): once they exist, one
    statement per group of tables and one for the journal's added columns, no lock taken."""
    from tests.unit.test_tables import _metadatas, count_statements

    assert tables_made_by_racers(database, racers=2) == []
    checked, opened = count_statements(database)
    assert checked == len(_metadatas())
    assert opened == 2  # its tables, its added columns
