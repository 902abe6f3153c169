"""The webshop transfers' own records, in the journal's database: where each web order stands in
Tripletex, which Tripletex customer each shop customer is, and how far each shop has been read.

The Tripletex order id is written the moment the order exists, before it is invoiced, so a retry
continues from that order and never makes a second one; a claim with a lease (renewed while the
holder works) keeps two runs off one order. The records are the fast path and the audit trail;
Tripletex stays the truth: a lost record is found again there (the order's number and tag).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from kassebro.core.tables import add_missing_columns, create_tables
from kassebro.posting.journal import Journal

STATES = ("new", "held", "failed", "ordered", "invoicing", "done")
"""new: seen, not yet sent; held: the order's data cannot be transferred as it is (nothing sent);
failed: Tripletex refused it; ordered: the Tripletex order exists, not yet invoiced; invoicing: the
invoice call went out and its outcome is not known yet; done: invoiced, or left as an order when
that is the method's transfer.

A done order the shop refunded afterwards keeps its state; the refund has columns of its own:
`refunded_ore` is the refund last dealt with (credited, or reported for a person), `credit_state`
is "crediting" once the credit note call went out (its outcome not known yet), "credited" once the
credit note is recorded, "failed" when Tripletex refused it (until a re-transfer)."""
CREDIT_STATES = ("crediting", "credited", "failed")

metadata = MetaData()
orders_table = Table(
    "kassebro_webshop_orders",
    metadata,
    Column("webshop_id", String(64), primary_key=True),
    Column("order_number", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("transfer", String(16), nullable=False, default=""),
    Column("claim", String(36)),
    Column("claimed_at", DateTime(timezone=True)),
    Column("customer_id", Integer),
    Column("tx_order_id", Integer),
    Column("order_date", Date),
    Column("invoice_date", Date),
    Column("invoicing_sent_at", DateTime(timezone=True)),
    Column("planned_invoice_number", Integer),  # the shop series' number, reserved before it is sent
    Column("invoice_id", Integer),
    Column("invoice_number", Integer),
    Column("invoice_amount_ore", Integer),
    Column("paid_ore", Integer),
    Column("total_ore", Integer),
    Column("emailed", Boolean),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # a refund after the transfer (added later: `_add_missing_columns` puts them on older tables)
    Column("refunded_ore", Integer),
    Column("credit_state", String(16)),
    Column("credit_date", Date),
    Column("credit_sent_at", DateTime(timezone=True)),
    Column("credit_note_id", Integer),
    Column("credit_note_number", Integer),
    Column("credit_emailed", Boolean),
)
ADDED_COLUMNS = (
    "refunded_ore",
    "credit_state",
    "credit_date",
    "credit_sent_at",
    "credit_note_id",
    "credit_note_number",
    "credit_emailed",
)
Index("kassebro_webshop_planned_invoice", orders_table.c.webshop_id, orders_table.c.planned_invoice_number, unique=True)
customers_table = Table(
    "kassebro_webshop_customers",
    metadata,
    Column("webshop_id", String(64), primary_key=True),
    Column("customer_key", String(200), primary_key=True),
    Column("tx_customer_id", Integer, nullable=False),  # 0 while a run is finding or creating it
    Column("customer_number", Integer, nullable=False),
    Column("claim", String(36)),
    Column("claimed_at", DateTime(timezone=True)),
)
cursors_table = Table(
    "kassebro_webshop_cursors",
    metadata,
    Column("webshop_id", String(64), primary_key=True),
    Column("read_until", DateTime(timezone=True), nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Transfer:
    """One web order's record (see the table for fields)."""

    webshop_id: str
    order_number: str
    state: str
    transfer: str
    customer_id: int | None
    tx_order_id: int | None
    order_date: dt.date | None
    invoice_date: dt.date | None
    invoicing_sent_at: dt.datetime | None
    planned_invoice_number: int | None
    invoice_id: int | None
    invoice_number: int | None
    invoice_amount_ore: int | None
    paid_ore: int | None
    total_ore: int | None
    emailed: bool | None
    attempts: int
    message: str
    updated_at: dt.datetime
    refunded_ore: int | None = None
    credit_state: str | None = None
    credit_date: dt.date | None = None
    credit_sent_at: dt.datetime | None = None
    credit_note_id: int | None = None
    credit_note_number: int | None = None
    credit_emailed: bool | None = None


class Transfers:
    """Reads and writes the transfer records; every method is one short transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.engine = Journal(url).engine
        create_tables(metadata, self.engine)
        _add_missing_columns(self.engine)

    # ---- orders ------------------------------------------------------------------------------

    def get(self, webshop_id: str, number: str) -> Transfer | None:
        c = orders_table.c
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(orders_table).where(c.webshop_id == webshop_id, c.order_number == number))
                .mappings()
                .first()
            )
        return _transfer(row) if row else None

    def all(self, webshop_id: str | None = None) -> list[Transfer]:
        c = orders_table.c
        query = select(orders_table).order_by(c.webshop_id, c.order_number)
        if webshop_id is not None:
            query = query.where(c.webshop_id == webshop_id)
        with self.engine.connect() as conn:
            return [_transfer(r) for r in conn.execute(query).mappings()]

    def states(self, webshop_id: str) -> dict[str, tuple[str, dt.datetime]]:
        """Order number -> (state, last written), for choosing what a run still has to do."""
        c = orders_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.order_number, c.state, c.updated_at).where(c.webshop_id == webshop_id))
            return {n: (state, at if at.tzinfo else at.replace(tzinfo=dt.UTC)) for n, state, at in rows}

    def refunds(self, webshop_id: str) -> dict[str, tuple[int, str | None]]:
        """Order number -> (the refund last dealt with in øre, credit state), of the done orders:
        for choosing which done orders a refund brings back."""
        c = orders_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.order_number, c.refunded_ore, c.credit_state).where(
                    c.webshop_id == webshop_id, c.state == "done"
                )
            )
            return {n: (int(refunded or 0), credit) for n, refunded, credit in rows}

    def claim(self, webshop_id: str, number: str, lease_seconds: int = 120, *, again: bool = False) -> str | None:
        """Take the right to work on an order; None when it is done (unless `again`, a
        re-transfer that only reports a done order) or another run holds a live claim."""
        token = str(uuid.uuid4())
        now = _now()
        try:  # a new order: recorded and claimed in one write
            with self.engine.begin() as conn:
                conn.execute(
                    insert(orders_table).values(
                        webshop_id=webshop_id,
                        order_number=number,
                        state="new",
                        transfer="",
                        attempts=1,
                        message="",
                        updated_at=now,
                        claim=token,
                        claimed_at=now,
                    )
                )
            return token
        except IntegrityError:
            pass  # known already: take it if it is free
        c = orders_table.c
        stale = now - dt.timedelta(seconds=lease_seconds)
        where = [c.webshop_id == webshop_id, c.order_number == number, c.claim.is_(None) | (c.claimed_at < stale)]
        if not again:
            where.append(c.state != "done")
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(orders_table).where(*where).values(claim=token, claimed_at=now, attempts=c.attempts + 1)
            ).rowcount
        return token if taken else None

    def renew(self, webshop_id: str, number: str, token: str) -> bool:
        c = orders_table.c
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(orders_table)
                    .where(c.webshop_id == webshop_id, c.order_number == number, c.claim == token)
                    .values(claimed_at=_now())
                ).rowcount
            )

    def update(self, webshop_id: str, number: str, token: str | None, *, release: bool = False, **values: Any) -> bool:
        """Write what is known now (under our claim when `token`); `release` gives the claim back.
        False when the claim is no longer ours (nothing is written then)."""
        c = orders_table.c
        where = [c.webshop_id == webshop_id, c.order_number == number]
        if token is not None:
            where.append(c.claim == token)
        values["updated_at"] = _now()
        if release:
            values.update(claim=None, claimed_at=None)
        with self.engine.begin() as conn:
            return bool(conn.execute(update(orders_table).where(*where).values(**values)).rowcount)

    def plan_invoice_number(self, webshop_id: str, number: str, start: int) -> int:
        """The shop series' invoice number of an order: the one reserved earlier, else the next
        free one from `start` (a unique index keeps two runs from taking the same)."""
        c = orders_table.c
        while True:
            with self.engine.connect() as conn:
                planned = conn.execute(
                    select(c.planned_invoice_number).where(c.webshop_id == webshop_id, c.order_number == number)
                ).scalar()
                if planned:
                    return int(planned)
                highest = conn.execute(
                    select(func.max(c.planned_invoice_number)).where(c.webshop_id == webshop_id)
                ).scalar()
            wanted = max(start, int(highest or 0) + 1)
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(orders_table)
                        .where(c.webshop_id == webshop_id, c.order_number == number, c.planned_invoice_number.is_(None))
                        .values(planned_invoice_number=wanted)
                    )
            except IntegrityError:
                continue  # another order took it meanwhile: the next one

    # ---- customers ---------------------------------------------------------------------------

    def customer(self, webshop_id: str, key: str) -> tuple[int, int] | None:
        """(Tripletex customer id, number) of a shop customer, if known."""
        c = customers_table.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.tx_customer_id, c.customer_number).where(
                    c.webshop_id == webshop_id, c.customer_key == key, c.tx_customer_id > 0
                )
            ).first()
        return (int(row[0]), int(row[1])) if row else None

    def claim_customer(self, webshop_id: str, key: str, lease_seconds: int = 60) -> str | None:
        """Take the right to find or create a shop customer in Tripletex, so two runs meeting a new
        customer at once make one; None while another run holds it (or it is known already)."""
        token = str(uuid.uuid4())
        now = _now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(customers_table).values(
                        webshop_id=webshop_id,
                        customer_key=key,
                        tx_customer_id=0,
                        customer_number=0,
                        claim=token,
                        claimed_at=now,
                    )
                )
            return token
        except IntegrityError:
            pass
        c = customers_table.c
        stale = now - dt.timedelta(seconds=lease_seconds)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(customers_table)
                .where(
                    c.webshop_id == webshop_id,
                    c.customer_key == key,
                    c.tx_customer_id == 0,
                    c.claim.is_(None) | (c.claimed_at < stale),
                )
                .values(claim=token, claimed_at=now)
            ).rowcount
        return token if taken else None

    def release_customer(self, webshop_id: str, key: str, token: str) -> None:
        c = customers_table.c
        with self.engine.begin() as conn:
            conn.execute(
                update(customers_table)
                .where(c.webshop_id == webshop_id, c.customer_key == key, c.claim == token)
                .values(claim=None, claimed_at=None)
            )

    def remember_customer(self, webshop_id: str, key: str, customer_id: int, number: int) -> None:
        c = customers_table.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(customers_table)
                .where(c.webshop_id == webshop_id, c.customer_key == key)
                .values(tx_customer_id=customer_id, customer_number=number, claim=None, claimed_at=None)
            ).rowcount
            if not done:
                conn.execute(
                    insert(customers_table).values(
                        webshop_id=webshop_id, customer_key=key, tx_customer_id=customer_id, customer_number=number
                    )
                )

    def highest_customer_number(self, webshop_id: str) -> int:
        c = customers_table.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.max(c.customer_number)).where(c.webshop_id == webshop_id)).scalar() or 0
            )

    # ---- how far the shop was read ------------------------------------------------------------

    def read_until(self, webshop_id: str) -> dt.datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(cursors_table.c.read_until).where(cursors_table.c.webshop_id == webshop_id)
            ).scalar()
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    def set_read_until(self, webshop_id: str, when: dt.datetime) -> None:
        c = cursors_table.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(cursors_table).where(c.webshop_id == webshop_id).values(read_until=when)
            ).rowcount
            if not done:
                conn.execute(insert(cursors_table).values(webshop_id=webshop_id, read_until=when))


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since the table was first made: added to an older table (as the journal's
    are), empty on its rows, which stay valid."""
    added = {name: orders_table.c[name].type.compile(dialect=engine.dialect) for name in ADDED_COLUMNS}
    add_missing_columns(engine, orders_table, added)


def _transfer(row: Any) -> Transfer:
    fields = {name: row[name] for name in Transfer.__dataclass_fields__}
    for name in ("invoicing_sent_at", "updated_at", "credit_sent_at"):
        value = fields[name]
        if value is not None and value.tzinfo is None:
            fields[name] = value.replace(tzinfo=dt.UTC)
    return Transfer(**fields)
