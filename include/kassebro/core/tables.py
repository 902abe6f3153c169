"""Our database: one engine per database in a process, and creating our tables when many task
processes may do it at once.

The journal, the SAF-T file index and the Z reports live in one database (`KASSEBRO_JOURNAL_URL`).
Each had its own engine, so a `prepare` opened two connections, two PostgreSQL backends started
for one task process: at a night's 32 task processes that is 64 of PostgreSQL's default 100
connections. `engine(url)` gives them one pool.

On a fresh journal database the first night starts dozens of task processes that each create the
tables they use (`CREATE TABLE` after SQLAlchemy's "does it exist?"). On PostgreSQL two of them
racing fail with `UniqueViolation` on `pg_type_typname_nsp_index` or `DuplicateTable` (seen in
`make bench-night`, 1,000 shops: 4 task instances retried). A transaction-level advisory lock
makes one create and the others find the tables. SQLite has no such lock: there each table is made
on its own, and "already exists" means a racer made it (with its indexes).

Every task process checks its tables when it first opens the database. Done as SQLAlchemy does it
(the lock, then "does it exist?" for each table, and the journal's columns read from the
catalogue), that was about ten statements per task process, three task processes per vendor-day,
all of them to find the tables there. So PostgreSQL is first asked once whether every table, and
every column added since, is there; only when something is missing is the work above done.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_LOCK = zlib.crc32(b"kassebro create tables")
"""The advisory lock's key: one for all our tables, taken only while creating them."""


@lru_cache(maxsize=8)
def engine(url: str) -> Engine:
    """The process's one engine for the database at `url` (pinged before each use: a long-lived
    process, the API server's journal view, may hold a connection the server has closed)."""
    return sa.create_engine(url, pool_pre_ping=True, future=True)


def create_tables(metadata: sa.MetaData, engine: Engine) -> None:
    """Create `metadata`'s tables (and indexes) that do not exist yet, safely beside other processes."""
    if engine.dialect.name == "postgresql":
        if _all_exist(metadata, engine):
            return
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            metadata.create_all(conn, checkfirst=True)
        return
    for table in metadata.sorted_tables:  # one at a time: a racer may be making any of them
        try:
            table.create(engine, checkfirst=True)
        except sa.exc.OperationalError as exc:
            if "already exists" not in str(exc):
                raise  # another process made it between our look and our create: it makes its indexes too


def _all_exist(metadata: sa.MetaData, engine: Engine) -> bool:
    """Whether PostgreSQL finds every table of `metadata` (each looked up as an unqualified name
    is, through the search path, as SQLAlchemy's own check does): one statement."""
    names = [engine.dialect.identifier_preparer.format_table(table) for table in metadata.sorted_tables]
    query = sa.text("SELECT bool_and(to_regclass(name) IS NOT NULL) FROM unnest(CAST(:names AS text[])) AS name")
    with engine.connect() as conn:
        return bool(conn.execute(query, {"names": names}).scalar())


def add_missing_columns(engine: Engine, table: sa.Table, added: Mapping[str, str]) -> None:
    """Add the columns `added` since `table` was first made (name -> what follows `ADD COLUMN
    name`: its type and default) to an older table. One statement when none is missing. Two
    processes adding one at once: the loser finds it there."""
    probe = sa.select(*(table.c[name] for name in added)).where(sa.false())
    try:
        with engine.connect() as conn:
            conn.execute(probe)
        return
    except sa.exc.DBAPIError:  # a column (or the table) is missing: look in the catalogue
        pass
    for name, definition in added.items():
        if name in _columns(engine, table):
            continue
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {definition}"))
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            if name not in _columns(engine, table):
                raise


def _columns(engine: Engine, table: sa.Table) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table.name, schema=table.schema)}
