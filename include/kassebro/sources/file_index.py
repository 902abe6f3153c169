"""The index of a folder of SAF-T exports: read only the files that can hold the asked day.

A vendor's source is usually a folder of daily files that grows every night. Reading all of them
for each day makes the nightly cost grow with the archive, so each file is summarised once (a
pass without schema check or line detail, `saft.summarize`: per register its Z reports' instants,
its transactions' first and last instant, lowest and highest number) and kept in the journal's
database with its size and modification time. A file whose size or time changed, or a new one,
is summarised again; one that cannot be summarised is always read, so the read reports it.

A file can hold day D (in the vendor's zone and day start) when, for some register:
- it has a Z report of day D; or
- its transactions reach into what D's Z reports claim: after the register's last Z report
  before D's first, up to D's last (a register that ran days without a Z report included); or
- they reach into D's own window (transactions without a Z report belong to their own day).
That is the reader's rule for assigning transactions, applied to the summaries, so the files
chosen give the same day as all files would (tests check it on the demo folders).

The numbers just below and above the day's, in files not read, are handed to the reader as
`neighbours`, so a receipt missing between yesterday's file and today's still shows.
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine

from kassebro.core import tables
from kassebro.core.tables import create_tables

__all__ = ["FileIndex", "Selection"]

_metadata = MetaData()
files_table = Table(
    "kassebro_source_files",
    _metadata,
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("summary", Text),  # JSON: register -> {z: [instants], first, last, nr_min, nr_max}; NULL: unreadable
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)
_NS_PER_S = 1_000_000_000


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    engine = tables.engine(url)
    create_tables(_metadata, engine)
    return engine


@dataclass(frozen=True)
class Selection:
    """The files of a folder that can hold the day, and the number series of the others."""

    files: list[Path]
    spans: dict[str, list[tuple[int, int]]]  # register -> [(lowest, highest)] of files not read
    indexed: int  # files summarised now (new or changed)
    total: int  # files in the folder

    def neighbours(self, register: str, low: int, high: int) -> tuple[int | None, int | None]:
        """The highest number below `low` and the lowest above `high` in the files not read."""
        below = [last for _first, last in self.spans.get(register, []) if last < low]
        above = [first for first, _last in self.spans.get(register, []) if first > high]
        return (max(below) if below else None), (min(above) if above else None)


class FileIndex:
    """The summaries of SAF-T files, in the journal's database (`KASSEBRO_JOURNAL_URL` or SQLite)."""

    def __init__(self, url: str | None = None) -> None:
        from kassebro.config import journal_url

        self.engine = _engine(url or journal_url())

    def select(self, folder: Path, day: dt.date, day_start_hour: int = 0) -> Selection:
        """The files of `folder` that can hold `day` (summarising new and changed files first)."""
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
        summaries, indexed = self._summaries(paths)
        start = _wall(dt.datetime.combine(day, dt.time(day_start_hour)))
        end = _wall(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(day_start_hour)))
        claims = _claims(summaries, start, end)
        chosen: list[Path] = []
        spans: dict[str, list[tuple[int, int]]] = {}
        for path in paths:
            summary = summaries.get(path)
            if summary is None or _holds(summary, start, end, claims):
                chosen.append(path)
                continue
            for register, facts in summary.items():
                if facts.get("nr_min") is not None:
                    spans.setdefault(register, []).append((facts["nr_min"], facts["nr_max"]))
        return Selection(chosen, spans, indexed, len(paths))

    def _summaries(self, paths: list[Path]) -> tuple[dict[Path, dict | None], int]:
        from kassebro.sources.saft import summarize

        keys = {str(p.resolve()): p for p in paths}
        with self.engine.connect() as conn:
            rows = conn.execute(select(files_table).where(files_table.c.path.in_(list(keys)))).mappings().all()
        known = {row["path"]: row for row in rows}
        result: dict[Path, dict | None] = {}
        fresh: list[dict] = []
        for key, path in keys.items():
            stat = path.stat()
            row = known.get(key)
            if row is not None and row["size"] == stat.st_size and row["mtime_ns"] == stat.st_mtime_ns:
                result[path] = json.loads(row["summary"]) if row["summary"] is not None else None
                continue
            summary = summarize(path)
            result[path] = summary
            fresh.append(
                {
                    "path": key,
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "summary": json.dumps(summary, sort_keys=True) if summary is not None else None,
                    "indexed_at": dt.datetime.now(dt.UTC),
                }
            )
        if fresh:
            with self.engine.begin() as conn:
                _replace(conn, fresh)
        return result, len(fresh)


def _replace(conn: Connection, rows: list[dict]) -> None:
    """Write the summaries, replacing any row of the same file. Vendors that share a folder index it
    at once on a busy night: two writing the same new file must not fail one of them on the key
    (it did, on PostgreSQL, in `make bench-night`); both summaries are of the same file."""
    if conn.dialect.name in ("postgresql", "sqlite"):
        dialect = importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
        stmt = dialect.insert(files_table)
        columns = ("size", "mtime_ns", "summary", "indexed_at")
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[files_table.c.path], set_={c: stmt.excluded[c] for c in columns}
            ),
            rows,
        )
        return
    conn.execute(delete(files_table).where(files_table.c.path.in_([row["path"] for row in rows])))
    conn.execute(insert(files_table), rows)


def enabled() -> bool:
    """The index is on unless KASSEBRO_SOURCE_INDEX=off (for a folder on a read-only database)."""
    return os.environ.get("KASSEBRO_SOURCE_INDEX", "on").lower() not in ("off", "0", "false", "no")


def _wall(moment: dt.datetime) -> int:
    """A wall-clock time as the summaries keep it: nanoseconds since 1970 as if it were UTC."""
    return int(moment.replace(tzinfo=dt.UTC).timestamp()) * _NS_PER_S


def _claims(summaries: dict[Path, dict | None], start: int, end: int) -> dict[str, tuple[int, int]]:
    """Per register with Z reports on the day: the times they claim (after the last earlier one).

    Times are wall clock (the summaries read them in UTC: a naive SAF-T time is kept as written),
    and the day is [day start, next day start) on that clock, as the reader decides it.
    """
    reports: dict[str, list[int]] = {}
    for summary in summaries.values():
        for register, facts in (summary or {}).items():
            reports.setdefault(register, []).extend(facts.get("z", []))
    claims = {}
    for register, instants in reports.items():
        instants.sort()
        own = [z for z in instants if start <= z < end]
        if not own:
            continue
        earlier = instants[: bisect.bisect_left(instants, own[0])]
        claims[register] = (earlier[-1] if earlier else -(2**62), own[-1])
    return claims


def _holds(summary: dict, start: int, end: int, claims: dict[str, tuple[int, int]]) -> bool:
    for register, facts in summary.items():
        if any(start <= z < end for z in facts.get("z", [])):
            return True
        first, last = facts.get("first"), facts.get("last")
        if first is None:
            continue
        claimed = claims.get(register)
        if claimed is not None and first <= claimed[1] and last > claimed[0]:
            return True
        if first < end and last >= start:
            return True
    return False
