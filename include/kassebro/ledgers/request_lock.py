"""One request at a time per ledger company, across every task process and host.

Fiken answers a request sent while another for the same company is in progress with 429, and
warns that parallel requests can lead to a ban (brief apis.md §2). Airflow's pool for the company
used to let one task in at a time, and a task holds its slot for its whole life: in a busy night a
`post` task lives a second or more for a few tens of milliseconds of requests, so a chain's shops
in one Fiken company posted one after the other at the end of the night while the cores idled
(docs/operations.md, "A chain of many shops"). Now the company's pool lets a few tasks in
(`registry`: `pool_slots`) and each request takes this lock first, for just that request:

- the journal's database on PostgreSQL (what every host of a distributed deployment shares): a
  transaction-level advisory lock, held while the request runs and released at commit or when
  the connection drops (a killed worker cannot leave it held);
- otherwise (SQLite: one host) an exclusive `flock` on a file in the data directory's `locks/`,
  released by the kernel when the process dies.

Waiting longer than `WAIT` seconds raises LedgerRateLimited: nothing was sent, and the Airflow
layer reschedules the task without holding its slots.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from kassebro.ledgers.base import LedgerRateLimited

WAIT = 60.0
"""Seconds a request waits for its turn: a company's pool lets a few tasks in, each request takes
tens of milliseconds (a slow one at most the client's timeout)."""


def lock_key(name: str) -> int:
    """A signed 64-bit key for `name` (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.blake2b(f"kassebro request lock {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def one_at_a_time(system: str, name: str, url: str | None = None, wait: float = WAIT) -> Iterator[None]:
    """Hold the lock `name` (e.g. "fiken:<company>") in the journal's database at `url` (default:
    the configured one) while the block runs; `system` names the ledger in the error."""
    from kassebro.config import journal_url

    url = url or journal_url()
    if url.startswith("postgresql"):
        with _advisory(system, name, url, wait):
            yield
    else:
        with _flock(system, name, wait):
            yield


@contextlib.contextmanager
def _advisory(system: str, name: str, url: str, wait: float) -> Iterator[None]:
    import sqlalchemy as sa

    from kassebro.core import tables

    with tables.engine(url).connect() as conn, conn.begin():
        conn.execute(sa.text(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}"))
        try:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
        except sa.exc.OperationalError as exc:
            if "lock timeout" not in str(exc):
                raise
            raise _waited_too_long(system, name, wait) from None
        yield


@contextlib.contextmanager
def _flock(system: str, name: str, wait: float) -> Iterator[None]:
    from kassebro.config import data_dir

    folder = Path(data_dir()) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _waited_too_long(system, name, wait) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


def _waited_too_long(system: str, name: str, wait: float) -> LedgerRateLimited:
    return LedgerRateLimited(
        system, f"{name}: another request held the one-at-a-time lock for more than {wait:g} s", retry_after=5.0
    )
