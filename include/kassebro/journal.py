"""The posting journal: one row per (vendor, business day) with its state, voucher and ledger id.

It is the audit trail and the fast path; the ledger stays the source of truth for what is posted.
A post first *claims* the day (an atomic conditional UPDATE, so two overlapping runs cannot both
post), then looks the external reference up in the ledger, and only then posts.
SQLite by default; PostgreSQL (or any SQLAlchemy URL) through `KASSEBRO_JOURNAL_URL`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kassebro.voucher import Voucher

STATES = ("extracted", "validated", "built", "posting", "unknown", "posted", "parked", "failed", "empty")
"""posted = in the ledger; parked = waiting for approval in the ledger (send to ledger off);
posting = claimed by a worker; unknown = a post whose outcome is unknown (timeout, dropped
connection): the next attempt looks the voucher up in the ledger before posting."""
DONE = ("posted", "parked", "empty")

metadata = MetaData()
journal_table = Table(
    "kassebro_journal",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    Column("business_day", Date, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("external_ref", String(120), nullable=False),
    Column("ledger_system", String(32), nullable=False, default=""),
    Column("ledger_id", String(64)),
    Column("ledger_number", String(64)),
    Column("lines", Integer, nullable=False, default=0),
    Column("total_debit_ore", Integer, nullable=False, default=0),
    Column("vat_difference_ore", Integer, nullable=False, default=0),
    Column("voucher_hash", String(64)),
    Column("voucher_json", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim", String(36)),
    Column("message", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, default=1, server_default="1"),
)

history_table = Table(
    "kassebro_journal_vouchers",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    Column("business_day", Date, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # original | correction | reversal | repost
    Column("external_ref", String(120), nullable=False),
    Column("ledger_id", String(64), nullable=False),
    Column("ledger_number", String(64)),
    Column("day_hash", String(64), nullable=False),  # digest of the day's voucher once this was booked ("" mid-way)
    Column("voucher_json", Text, nullable=False),  # the voucher sent: the whole day (v1) or the difference
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""Every voucher confirmed in the ledger for a day (original, then corrections), in version order."""


@dataclass(frozen=True)
class Booked:
    """A voucher confirmed in the ledger for a day: version 1 is the original, later ones corrections."""

    version: int
    kind: str
    external_ref: str
    ledger_id: str
    ledger_number: str
    day_hash: str
    voucher: Voucher


@dataclass(frozen=True)
class Entry:
    """A journal row (see the table for fields)."""

    vendor_id: str
    business_day: dt.date
    state: str
    external_ref: str
    ledger_system: str
    ledger_id: str | None
    ledger_number: str | None
    lines: int
    total_debit_ore: int
    vat_difference_ore: int
    voucher_hash: str | None
    attempts: int
    message: str
    updated_at: dt.datetime
    version: int = 1


def default_url() -> str:
    url = os.environ.get("KASSEBRO_JOURNAL_URL")
    if url:
        return url
    from kassebro.config import data_dir

    path = data_dir() / "journal.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, future=True)
    metadata.create_all(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("kassebro_journal")}
    if "version" not in columns:  # journals made before corrections existed
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE kassebro_journal ADD COLUMN version INTEGER NOT NULL DEFAULT 1"))
    return engine


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Journal:
    """Reads and writes journal rows. Every method is one short transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = _engine(self.url)

    def get(self, vendor_id: str, day: dt.date) -> Entry | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(journal_table).where(
                        journal_table.c.vendor_id == vendor_id, journal_table.c.business_day == day
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Entry(**{f: row[f] for f in Entry.__dataclass_fields__})

    def voucher(self, vendor_id: str, day: dt.date) -> Voucher | None:
        with self.engine.connect() as conn:
            text = conn.execute(
                select(journal_table.c.voucher_json).where(
                    journal_table.c.vendor_id == vendor_id, journal_table.c.business_day == day
                )
            ).scalar()
        return Voucher.from_json(json.loads(text)) if text else None

    def entries(self, vendor_id: str | None = None) -> list[Entry]:
        query = select(journal_table).order_by(journal_table.c.vendor_id, journal_table.c.business_day)
        if vendor_id:
            query = query.where(journal_table.c.vendor_id == vendor_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [Entry(**{f: r[f] for f in Entry.__dataclass_fields__}) for r in rows]

    def record(
        self,
        vendor_id: str,
        day: dt.date,
        state: str,
        *,
        external_ref: str,
        ledger_system: str = "",
        voucher: Voucher | None = None,
        message: str = "",
    ) -> None:
        """Record a state reached before posting (extracted, validated, built, failed, empty).

        Never moves a day back from posted/parked/posting: those are owned by claim/finish.
        """
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        values: dict = {
            "state": state,
            "message": message,
            "updated_at": _now(),
            "external_ref": external_ref,
        }
        if ledger_system:
            values["ledger_system"] = ledger_system
        if voucher is not None:
            values.update(
                lines=len(voucher.lines),
                total_debit_ore=voucher.total_debit,
                vat_difference_ore=voucher.vat_difference,
                voucher_hash=voucher.digest(),
                voucher_json=json.dumps(voucher.to_json(), sort_keys=True),
            )
        with self.engine.begin() as conn:
            done = conn.execute(
                update(journal_table)
                .where(
                    journal_table.c.vendor_id == vendor_id,
                    journal_table.c.business_day == day,
                    journal_table.c.state.notin_(("posted", "parked", "posting", "unknown")),
                )
                .values(**values)
            ).rowcount
            if done:
                return
            exists = conn.execute(
                select(journal_table.c.state).where(
                    journal_table.c.vendor_id == vendor_id, journal_table.c.business_day == day
                )
            ).first()
            if exists is None:
                # a concurrent writer may insert first: its state stands (savepoint keeps PG's txn usable)
                with contextlib.suppress(IntegrityError), conn.begin_nested():
                    conn.execute(
                        insert(journal_table).values(
                            vendor_id=vendor_id,
                            business_day=day,
                            attempts=0,
                            **{"ledger_system": "", **values},
                        )
                    )

    def claim(self, vendor_id: str, day: dt.date, lease_seconds: int = 900, *, correction: bool = False) -> str | None:
        """Take the right to post a day; None if it is done or another worker holds a fresh claim.

        A stale claim (older than the lease: a worker killed mid-call) can be taken over; the new
        holder must still look the voucher up in the ledger before posting. `correction` also
        claims a day that is already posted, to book a correction voucher for it.
        """
        token = str(uuid.uuid4())
        stale = _now() - dt.timedelta(seconds=lease_seconds)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(journal_table)
                .where(
                    journal_table.c.vendor_id == vendor_id,
                    journal_table.c.business_day == day,
                    journal_table.c.state.notin_(("empty",) if correction else DONE),
                    (journal_table.c.state != "posting") | (journal_table.c.updated_at < stale),
                )
                .values(
                    state="posting",
                    claim=token,
                    attempts=journal_table.c.attempts + 1,
                    updated_at=_now(),
                )
            ).rowcount
        return token if taken else None

    def release(self, vendor_id: str, day: dt.date, token: str, message: str, state: str = "failed") -> None:
        """Give a claim back after a failure: "failed" when nothing was saved, "unknown" when it may have been."""
        with self.engine.begin() as conn:
            conn.execute(
                update(journal_table)
                .where(
                    journal_table.c.vendor_id == vendor_id,
                    journal_table.c.business_day == day,
                    journal_table.c.claim == token,
                )
                .values(state=state, claim=None, message=message, updated_at=_now())
            )

    def booked(self, vendor_id: str, day: dt.date) -> list[Booked]:
        """The vouchers confirmed in the ledger for a day, oldest first."""
        h = history_table.c
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(history_table).where(h.vendor_id == vendor_id, h.business_day == day).order_by(h.version)
                )
                .mappings()
                .all()
            )
        booked = [
            Booked(
                r["version"],
                r["kind"],
                r["external_ref"],
                r["ledger_id"],
                r["ledger_number"] or "",
                r["day_hash"],
                Voucher.from_json(json.loads(r["voucher_json"])),
            )
            for r in rows
        ]
        if not booked:  # a day posted before the history table existed: its journal row is version 1
            entry = self.get(vendor_id, day)
            voucher = self.voucher(vendor_id, day)
            if entry and entry.state in ("posted", "parked") and entry.ledger_id and voucher is not None:
                booked = [
                    Booked(
                        1,
                        "original",
                        entry.external_ref,
                        entry.ledger_id,
                        entry.ledger_number or "",
                        voucher.digest(),
                        voucher,
                    )
                ]
        return booked

    def finish(
        self,
        vendor_id: str,
        day: dt.date,
        token: str | None,
        *,
        state: str,
        ledger_id: str,
        ledger_number: str = "",
        message: str = "",
        sent: Voucher | None = None,
        day_voucher: Voucher | None = None,
        version: int = 1,
        kind: str = "",
    ) -> None:
        """Record a voucher confirmed in the ledger: `sent` is what was posted (the whole day, or a
        correction), `day_voucher` the whole day it brings the ledger to."""
        if state not in ("posted", "parked"):
            raise ValueError(f"finish() takes posted or parked, not {state!r}")
        cond = [journal_table.c.vendor_id == vendor_id, journal_table.c.business_day == day]
        if token is not None:
            cond.append((journal_table.c.claim == token) | journal_table.c.state.notin_(("posting",)))
        values: dict = {
            "state": state,
            "ledger_id": ledger_id,
            "ledger_number": ledger_number,
            "claim": None,
            "message": message,
            "updated_at": _now(),
            "version": version,
        }
        if day_voucher is not None:
            values.update(
                lines=len(day_voucher.lines),
                total_debit_ore=day_voucher.total_debit,
                vat_difference_ore=day_voucher.vat_difference,
                voucher_hash=day_voucher.digest(),
                voucher_json=json.dumps(day_voucher.to_json(), sort_keys=True),
            )
        with self.engine.begin() as conn:
            conn.execute(update(journal_table).where(*cond).values(**values))
            if sent is not None:
                with contextlib.suppress(IntegrityError), conn.begin_nested():
                    conn.execute(
                        insert(history_table).values(
                            vendor_id=vendor_id,
                            business_day=day,
                            version=version,
                            kind=kind or ("original" if version == 1 else "correction"),
                            external_ref=sent.external_ref,
                            ledger_id=ledger_id,
                            ledger_number=ledger_number,
                            day_hash="" if kind == "reversal" else (day_voucher or sent).digest(),
                            voucher_json=json.dumps(sent.to_json(), sort_keys=True),
                            created_at=_now(),
                        )
                    )
