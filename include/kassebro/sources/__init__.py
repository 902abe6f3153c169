"""Sales sources: each turns one vendor's business day into a canonical `kassebro.core.frames.SalesDay`.

`read_sales` is the one way in: the DAG, every CLI command and the tests read a day through it,
from the vendor's configured source or from one given on the command line (a SAF-T file or
directory, or a POS database URL). Whatever goes wrong while reading ends as a `SourceError`
naming the source and the problem, never as a driver's traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from kassebro.core.errors import InputError, Issue, SourceError

if TYPE_CHECKING:
    from kassebro.config import Vendor
    from kassebro.core.frames import SalesDay

__all__ = ["is_database_url", "read_sales", "source_path", "source_url"]

log = logging.getLogger(__name__)


def is_database_url(source: str) -> bool:
    return "://" in source


def read_sales(vendor: Vendor, day: dt.date, source: str | None = None) -> SalesDay:
    """The vendor's business day from `source` (a path or a database URL), else its configured source."""
    if source is not None:
        if is_database_url(source):
            return _read_database(source, vendor, day)
        return _read_saft(Path(source), vendor, day)
    if vendor.source.kind == "sql":
        return _read_database(source_url(vendor), vendor, day)
    return _read_saft(source_path(vendor), vendor, day)


def source_path(vendor: Vendor) -> Path:
    """The vendor's SAF-T file or folder; a relative path is under the data directory."""
    from kassebro.config import data_dir

    path = Path(vendor.source.path or "")
    return path if path.is_absolute() else data_dir() / path


def source_url(vendor: Vendor) -> str:
    """The POS database URL: from an Airflow connection (`source.connection`) or `source.url`.

    A connection keeps the password out of vendor files; `source.url` suits passwordless
    databases such as the demo's SQLite file (relative paths are under the data directory).
    """
    from kassebro.config import data_dir

    if vendor.source.connection:
        from airflow.sdk import BaseHook

        uri = BaseHook.get_connection(vendor.source.connection).get_uri()
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", uri)
    url = vendor.source.url or ""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{data_dir() / url.removeprefix('sqlite:///')}"
    return url


def _read_saft(path: Path, vendor: Vendor, day: dt.date) -> SalesDay:
    """A file as it is; a folder through its index (`file_index`): only the files that can hold the day."""
    from kassebro.sources import file_index
    from kassebro.sources.saft import read_day

    paths: Path | list[Path] = path
    neighbours = None
    if path.is_dir() and file_index.enabled():
        selection = file_index.FileIndex().select(path, day, vendor.day_start_hour)
        log.info(
            "%s %s: reading %d of %d files in %s (%d indexed now)",
            vendor.id,
            day,
            len(selection.files),
            selection.total,
            path,
            selection.indexed,
        )
        paths, neighbours = selection.files, selection.neighbours
    return read_day(
        paths,
        vendor.id,
        day,
        tz=vendor.timezone,
        day_start_hour=vendor.day_start_hour,
        z_report_amounts=vendor.source.z_report_amounts,
        neighbours=neighbours,
    )


def _read_database(url: str, vendor: Vendor, day: dt.date) -> SalesDay:
    from kassebro.sources import sql

    try:
        return sql.read_day(url, vendor.id, day, tz=vendor.timezone, day_start_hour=vendor.day_start_hour)
    except InputError:
        raise
    except Exception as exc:  # a driver's own error (connection refused, unknown table): say it plainly
        safe = sql.redact_url(url)
        raise SourceError(
            Issue(safe, "source_unreadable", f"{type(exc).__name__}: {exc}".replace(url, safe)),
            headline=f"{vendor.id} {day}: the POS database could not be read",
        ) from None
