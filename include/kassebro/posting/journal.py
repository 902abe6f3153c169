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
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kassebro.booking.voucher import Voucher
from kassebro.config import journal_url
from kassebro.core import tables
from kassebro.core.tables import create_tables

log = logging.getLogger(__name__)

STATES = (
    "extracted",
    "validated",
    "built",
    "posting",
    "unknown",
    "posted",
    "parked",
    "failed",
    "waiting",
    "missing",
    "closed",
    "closed_calendar",
    "empty",
)
"""posted = in the ledger; parked = waiting for approval in the ledger (send to ledger off);
posting = claimed by a worker; unknown = a post whose outcome is unknown (timeout, dropped
connection): the next attempt looks the voucher up in the ledger before posting.
waiting = no sales data yet; missing = none by the data deadline; closed = the POS says no sales
(a Z report with zero sales); closed_calendar = no data on a day the shop's calendar has closed;
empty = a day without data recorded before kassebro told waiting from closed."""
DONE = ("posted", "parked", "closed", "closed_calendar", "empty")
NOTHING_TO_POST = ("closed", "closed_calendar", "empty")
LOOK_AGAIN = ("waiting", "missing", "closed_calendar", "empty", "failed")
"""Days a later run reads again (`pipeline.days_to_look_again`): their data may come late, or
what held them back may be mended (a late file fills a gap in the receipt numbers)."""

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
    Column("claimed_from", String(16)),  # the state before the claim: what a release with nothing sent restores
    Column("sent_at", DateTime(timezone=True)),  # a post was sent then and its voucher not yet seen
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
    sent_at: dt.datetime | None = None
    """When a post was last sent whose voucher has not been seen since (its outcome may still appear)."""


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    engine = tables.engine(url)
    create_tables(metadata, engine)
    timestamp = "TIMESTAMP WITH TIME ZONE" if engine.dialect.name == "postgresql" else "DATETIME"
    added = {
        "version": "INTEGER NOT NULL DEFAULT 1",  # journals made before corrections existed
        "claimed_from": "VARCHAR(16)",  # before claims could be given back as they were
        "sent_at": timestamp,  # before the visibility window
    }
    tables.add_missing_columns(engine, journal_table, added)
    return engine


class ClaimLost(Exception):  # noqa: N818 - a state, not a failure of ours
    """The claim on a day is no longer ours: its lease ran out and another run took it over.

    The holder that lost it must neither post nor record: the new holder looks the day up in the
    ledger first, so whatever the old holder sent is found and recorded exactly once.
    """


def _booked(r: Any) -> Booked:
    return Booked(
        r["version"],
        r["kind"],
        r["external_ref"],
        r["ledger_id"],
        r["ledger_number"] or "",
        r["day_hash"],
        Voucher.from_json(json.loads(r["voucher_json"])),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Journal:
    """Reads and writes journal rows. Every method is one short transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or journal_url()
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

    def days_in(self, vendor_id: str, states: tuple[str, ...], first: dt.date, last: dt.date) -> list[dt.date]:
        """The vendor's days from `first` to `last` (both included) whose state is one of `states`."""
        c = journal_table.c
        query = (
            select(c.business_day)
            .where(c.vendor_id == vendor_id, c.state.in_(states), c.business_day >= first, c.business_day <= last)
            .order_by(c.business_day)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

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

    def claim(self, vendor_id: str, day: dt.date, lease_seconds: int = 120, *, correction: bool = False) -> str | None:
        """Take the right to post a day; None if it is done or another worker holds a live claim.

        A claim lives `lease_seconds` from its last renewal (`renew`). One whose holder stopped
        renewing (a killed worker) is taken over as soon as it expires; the new holder must still
        look the voucher up in the ledger before posting. `correction` also claims a day that is
        already posted, to book a correction voucher for it.
        """
        token = str(uuid.uuid4())
        stale = _now() - dt.timedelta(seconds=lease_seconds)
        c = journal_table.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(journal_table)
                .where(
                    c.vendor_id == vendor_id,
                    c.business_day == day,
                    c.state.notin_(NOTHING_TO_POST if correction else DONE),
                    (c.state != "posting") | (c.updated_at < stale),
                )
                .values(
                    # a taken-over claim keeps what the dead holder's claim was taken from
                    claimed_from=case((c.state == "posting", c.claimed_from), else_=c.state),
                    state="posting",
                    claim=token,
                    attempts=c.attempts + 1,
                    updated_at=_now(),
                )
            ).rowcount
        return token if taken else None

    def renew(self, vendor_id: str, day: dt.date, token: str, *, sending: bool = False) -> bool:
        """Extend our claim's lease from now; False when it is no longer ours (fencing: checked
        immediately before every post, so a holder that lost its lease never posts). `sending`
        also notes that a post goes out now (`sent_at`), for whoever must wait for it to show."""
        c = journal_table.c
        values: dict = {"updated_at": _now()}
        if sending:
            values["sent_at"] = values["updated_at"]
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(journal_table)
                    .where(c.vendor_id == vendor_id, c.business_day == day, c.claim == token, c.state == "posting")
                    .values(**values)
                ).rowcount
            )

    def release(self, vendor_id: str, day: dt.date, token: str, message: str, state: str | None = None) -> bool:
        """Give a claim back after a failure: "unknown" when a voucher may have been saved,
        "failed" when the ledger refused it, None for the state it was claimed from (nothing was
        sent). False when the claim was no longer ours (nothing is changed then)."""
        c = journal_table.c
        values: dict = {"claim": None, "message": message, "updated_at": _now()}
        values["state"] = state if state is not None else func.coalesce(c.claimed_from, "built")
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(journal_table)
                    .where(c.vendor_id == vendor_id, c.business_day == day, c.claim == token)
                    .values(**values)
                ).rowcount
            )

    def restore(
        self,
        vendor_id: str,
        day: dt.date,
        booked: list[Booked],
        *,
        state: str,
        ledger_system: str,
        day_voucher: Voucher,
    ) -> None:
        """Write a day back as the ledger holds it (`kassebro journal rebuild`): its vouchers'
        history replaces what the journal had, and the row says the last of them."""
        last = booked[-1]
        c, h = journal_table.c, history_table.c
        row = {
            "state": state,
            "external_ref": day_voucher.external_ref,
            "ledger_system": ledger_system,
            "ledger_id": last.ledger_id,
            "ledger_number": last.ledger_number,
            "lines": len(day_voucher.lines),
            "total_debit_ore": day_voucher.total_debit,
            "vat_difference_ore": day_voucher.vat_difference,
            "voucher_hash": day_voucher.digest(),
            "voucher_json": json.dumps(day_voucher.to_json(), sort_keys=True),
            "claim": None,
            "sent_at": None,
            "message": f"rebuilt from the ledger: {len(booked)} voucher(s)",
            "updated_at": _now(),
            "version": last.version,
        }
        with self.engine.begin() as conn:
            conn.execute(history_table.delete().where(h.vendor_id == vendor_id, h.business_day == day))
            for b in booked:
                conn.execute(
                    insert(history_table).values(
                        vendor_id=vendor_id,
                        business_day=day,
                        version=b.version,
                        kind=b.kind,
                        external_ref=b.external_ref,
                        ledger_id=b.ledger_id,
                        ledger_number=b.ledger_number,
                        day_hash=b.day_hash,
                        voucher_json=json.dumps(b.voucher.to_json(), sort_keys=True),
                        created_at=_now(),
                    )
                )
            if not conn.execute(
                update(journal_table).where(c.vendor_id == vendor_id, c.business_day == day).values(**row)
            ).rowcount:
                conn.execute(insert(journal_table).values(vendor_id=vendor_id, business_day=day, attempts=0, **row))

    def day_vouchers(self, vendor_id: str, first: dt.date, last: dt.date) -> dict[dt.date, Voucher]:
        """The day's voucher as last built, for each of the vendor's days first..last that has one."""
        c = journal_table.c
        query = select(c.business_day, c.voucher_json).where(
            c.vendor_id == vendor_id, c.business_day >= first, c.business_day <= last, c.voucher_json.is_not(None)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {day: Voucher.from_json(json.loads(text)) for day, text in rows if text}

    def booked_between(self, vendor_id: str, first: dt.date, last: dt.date) -> dict[dt.date, list[Booked]]:
        """The vouchers confirmed in the ledger for each of the vendor's days first..last (inclusive),
        oldest first: one query, for reconciling many days."""
        h = history_table.c
        query = (
            select(history_table)
            .where(h.vendor_id == vendor_id, h.business_day >= first, h.business_day <= last)
            .order_by(h.business_day, h.version)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        found: dict[dt.date, list[Booked]] = {}
        for r in rows:
            found.setdefault(r["business_day"], []).append(_booked(r))
        return found

    def booked(self, vendor_id: str, day: dt.date) -> list[Booked]:
        """The vouchers confirmed in the ledger for a day, oldest first."""
        booked = self.booked_between(vendor_id, day, day).get(day, [])
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
        day_hash: str | None = None,
    ) -> None:
        """Record a voucher confirmed in the ledger: `sent` is what was posted (the whole day, or a
        correction), `day_voucher` the whole day it brings the ledger to. With a `token`, only while
        that claim is still ours (else ClaimLost, and nothing is written). `day_hash` overrides the
        day's digest this brings the ledger to (a voucher read back that differs from the day's)."""
        if state not in ("posted", "parked"):
            raise ValueError(f"finish() takes posted or parked, not {state!r}")
        cond = [journal_table.c.vendor_id == vendor_id, journal_table.c.business_day == day]
        if token is not None:
            cond.append(journal_table.c.claim == token)
        values: dict = {
            "state": state,
            "ledger_id": ledger_id,
            "ledger_number": ledger_number,
            "claim": None,
            "message": message,
            "updated_at": _now(),
            "version": version,
            "sent_at": None,  # the voucher is seen: nothing is on its way any more
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
            if not conn.execute(update(journal_table).where(*cond).values(**values)).rowcount and token is not None:
                raise ClaimLost(f"{vendor_id} {day}: the claim ran out and another run holds the day; it records it")
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
                            day_hash=(
                                day_hash
                                if day_hash is not None
                                else ""
                                if kind == "reversal"
                                else (day_voucher or sent).digest()
                            ),
                            voucher_json=json.dumps(sent.to_json(), sort_keys=True),
                            created_at=_now(),
                        )
                    )


class RenewedLease:
    """Keeps a claim alive while its holder works: `renew(sending)` is called every third of the
    lease's length in a background thread, so only a dead or frozen holder loses it. `fence()`
    renews at once and raises ClaimLost when the claim is no longer ours; call it immediately
    before a write to the ledger. Used for a vendor-day (`Lease`) and a web order alike."""

    def __init__(self, renew: Callable[[bool], bool], label: str, seconds: int) -> None:
        self.renew, self.label, self.seconds = renew, label, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease {label}", daemon=True)

    def __enter__(self) -> RenewedLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self._stop.wait(max(self.seconds / 3, 0.05)):
            try:
                if not self.renew(False):
                    return  # taken over: fence() says so before any post
            except Exception:  # noqa: BLE001 - a failed renewal is retried; fence() is the judge
                log.warning("renewing the claim on %s failed; trying again", self.label)

    def fence(self, *, sending: bool = True) -> None:
        if not self.renew(sending):
            raise ClaimLost(
                f"{self.label}: the claim is no longer ours (its {self.seconds} s lease ran out "
                "and another run took it over); nothing was sent or posted"
            )


class Lease(RenewedLease):
    """The lease on a vendor-day's claim (`Journal.claim`)."""

    def __init__(self, journal: Journal, vendor_id: str, day: dt.date, token: str, seconds: int) -> None:
        self.journal, self.vendor_id, self.day, self.token = journal, vendor_id, day, token
        super().__init__(
            lambda sending: journal.renew(vendor_id, day, token, sending=sending), f"{vendor_id} {day}", seconds
        )
