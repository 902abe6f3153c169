"""Our tables are made safely by many task processes at once, and the file index survives two
vendors indexing one new file at once (both failed a task on PostgreSQL in `make bench-night`).
The same on PostgreSQL, where the two really race: tests/integration/test_postgres_races.py."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import sqlalchemy as sa


def _metadatas() -> list[sa.MetaData]:
    from kassebro.posting import journal, transfers, zreports
    from kassebro.readback import findings, mapping
    from kassebro.sources import file_index

    return [m.metadata for m in (journal, zreports, transfers, findings, mapping)] + [file_index._metadata]


def _create(url: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    from kassebro.core.tables import create_tables

    engine = sa.create_engine(url)
    try:
        barrier.wait(timeout=60)
        for metadata in _metadatas():
            create_tables(metadata, engine)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}"[:300])
    finally:
        engine.dispose()


def tables_made_by_racers(url: str, racers: int = 8) -> list[str]:
    """Start `racers` processes that create all our tables on `url` at the same moment; their errors."""
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(racers), context.Queue()
    procs = [context.Process(target=_create, args=(url, barrier, errors)) for _ in range(racers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]
    names = set(sa.inspect(sa.create_engine(url)).get_table_names())
    wanted = {table for metadata in _metadatas() for table in metadata.tables}
    assert wanted <= names, wanted - names
    return found


def one_file_indexed_twice(url: str) -> dict:
    """Two vendors sharing a folder both write the same new file's summary: the second replaces it."""
    from kassebro.core.tables import create_tables
    from kassebro.sources import file_index

    engine = sa.create_engine(url)
    create_tables(file_index._metadata, engine)
    row = {"path": "/data/saft/shop/day.xml", "size": 10, "mtime_ns": 1, "summary": None}
    for size in (10, 12):  # the second writer read no row either, and its file had grown
        with engine.begin() as conn:
            file_index._replace(conn, [{**row, "size": size, "indexed_at": dt.datetime.now(dt.UTC)}])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(file_index.files_table)).mappings().all()
    engine.dispose()
    assert len(rows) == 1
    return dict(rows[0])


def test_eight_processes_create_every_table_of_a_fresh_sqlite_journal_at_once(tmp_path: Path) -> None:
    assert tables_made_by_racers(f"sqlite:///{tmp_path / 'journal.db'}") == []


def test_a_file_indexed_by_two_vendors_at_once_is_one_row_sqlite(tmp_path: Path) -> None:
    assert one_file_indexed_twice(f"sqlite:///{tmp_path / 'journal.db'}")["size"] == 12


def test_the_journal_the_file_index_and_the_z_reports_share_one_connection(tmp_path: Path) -> None:
    """One pool per database in a process: a `prepare` used to open two connections (two
    PostgreSQL backends per task process)."""
    from kassebro.posting.journal import Journal
    from kassebro.posting.zreports import ZReports
    from kassebro.sources.file_index import FileIndex

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal, index, zreports = Journal(url), FileIndex(url), ZReports(url)
    assert journal.engine is index.engine is zreports.engine
    connects: list[object] = []
    sa.event.listen(journal.engine.pool, "connect", lambda *_: connects.append(1))
    journal.engine.dispose()  # start counting from no connection
    assert journal.get("shop", dt.date(2026, 12, 4)) is None
    (tmp_path / "saft").mkdir()
    assert index.select(tmp_path / "saft", dt.date(2026, 12, 4)).files == []
    assert len(connects) == 1


def test_an_older_journal_gets_its_added_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    from kassebro.posting import journal

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    added = ("version", "claimed_from", "sent_at")
    old = sa.MetaData()
    columns = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in journal.journal_table.columns
        if c.name not in added
    ]
    sa.Table(journal.journal_table.name, old, *columns)
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO kassebro_journal (vendor_id, business_day, state, ledger_system, external_ref, lines, "
            "total_debit_ore, vat_difference_ore, attempts, message, updated_at) VALUES ('shop', '2026-11-30', "
            "'posted', 'fiken', 'kassebro:shop:2026-11-30', 2, 500, 0, 1, '', '2026-12-01 03:00:00')"
        )
    engine.dispose()
    entry = journal.Journal(url).get("shop", dt.date(2026, 11, 30))
    assert entry is not None and (entry.state, entry.version, entry.sent_at) == ("posted", 1, None)
    names = {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("kassebro_journal")}
    assert set(added) <= names


def count_statements(url: str) -> tuple[int, int]:
    """Statements our start in a new process sends once the tables exist: (all our tables checked,
    the journal opened); the caller made the tables first."""
    from kassebro.core import tables
    from kassebro.posting import journal

    counted: list[str] = []
    tables.engine.cache_clear()
    journal._engine.cache_clear()
    engine = tables.engine(url)
    sa.event.listen(engine, "before_cursor_execute", lambda *args: counted.append(args[2]))
    for metadata in _metadatas():
        tables.create_tables(metadata, engine)
    checked = len(counted)
    counted.clear()
    journal.Journal(url)
    opened = len(counted)
    tables.engine.cache_clear()
    journal._engine.cache_clear()
    engine.dispose()
    return checked, opened
