"""Creating our tables when many task processes may do it at once.

On a fresh journal database the first night starts dozens of task processes that each create the
tables they use (`CREATE TABLE` after SQLAlchemy's "does it exist?"). On PostgreSQL two of them
racing fail with `UniqueViolation` on `pg_type_typname_nsp_index` or `DuplicateTable` (seen in
`make bench-night`, 1,000 shops: 4 task instances retried). A transaction-level advisory lock
makes one create and the others find the tables. SQLite has no such lock: there each table is made
on its own, and "already exists" means a racer made it (with its indexes).
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_LOCK = zlib.crc32(b"kassebro create tables")
"""The advisory lock's key: one for all our tables, taken only while creating them."""


def create_tables(metadata: sa.MetaData, engine: Engine) -> None:
    """Create `metadata`'s tables (and indexes) that do not exist yet, safely beside other processes."""
    if engine.dialect.name == "postgresql":
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
