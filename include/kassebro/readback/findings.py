"""Reconciliation findings: what a reading of the ledger found that disagrees with the journal or the
Z report, stored with its evidence in the journal's database. A finding changes nothing by itself:
a person reads it (the morning view, `kassebro reconcile`) and decides.

A finding is keyed by (vendor, business day, kind, reference); a later reconciliation of the same
day replaces the day's findings, so a mended day loses its finding and a still-wrong one keeps a
single row with the newest evidence.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Date, DateTime, MetaData, String, Table, Text, and_, delete, insert, or_, select
from sqlalchemy.engine import Engine

from kassebro.core.tables import create_tables
from kassebro.posting.journal import Journal

KINDS = ("missing", "extra", "changed", "duplicated", "unbalanced", "pos_accounts", "unreadable")
"""missing: the journal says posted, the ledger has no voucher with the day's reference;
extra: the ledger holds a voucher with a kassebro reference the journal does not know as booked;
changed: the voucher in the ledger differs from the one we booked (a person edited it);
duplicated: two or more vouchers carry one reference;
unbalanced: what the ledger holds for the day does not add up to the Z report;
pos_accounts: over a period, the movement on the POS's own accounts differs from the POS payments;
unreadable: the ledger could not be read for the day (the reconciliation's verdict is unknown)."""

metadata = MetaData()
findings_table = Table(
    "kassebro_findings",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    Column("business_day", Date, primary_key=True),  # a period finding is filed under its last day
    Column("kind", String(16), primary_key=True),
    Column("reference", String(160), primary_key=True),  # the external reference or account it is about
    Column("ledger_system", String(32), nullable=False, default=""),
    Column("message", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: what was compared, both sides
    Column("found_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Finding:
    """One disagreement, with what shows it.

    Attributes:
      vendor_id, business_day: the vendor-day (a period finding carries the period's last day).
      kind: one of KINDS.
      reference: the external reference (or account) it is about, so two findings of a kind differ.
      message: one sentence a person reads.
      evidence: both sides of the comparison, JSON-able.
      ledger_system: the ledger read.
    """

    vendor_id: str
    business_day: dt.date
    kind: str
    reference: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    ledger_system: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; known: {', '.join(KINDS)}")


class Findings:
    """Reads and replaces findings; lives in the journal's database (same URL)."""

    def __init__(self, url: str | None = None) -> None:
        self.engine: Engine = Journal(url).engine
        create_tables(metadata, self.engine)

    def replace(self, checked: Iterable[tuple[str, dt.date]], found: Sequence[Finding]) -> None:
        """Store `found` as the whole truth for the vendor-days in `checked` (one transaction)."""
        c = findings_table.c
        days = sorted(set(checked) | {(f.vendor_id, f.business_day) for f in found})
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            for start in range(0, len(days), 500):
                chunk = days[start : start + 500]
                conn.execute(
                    delete(findings_table).where(or_(*(and_(c.vendor_id == v, c.business_day == d) for v, d in chunk)))
                )
            unique = {(f.vendor_id, f.business_day, f.kind, f.reference): f for f in found}
            if unique:
                conn.execute(
                    insert(findings_table),
                    [
                        {
                            "vendor_id": f.vendor_id,
                            "business_day": f.business_day,
                            "kind": f.kind,
                            "reference": f.reference[:160],
                            "ledger_system": f.ledger_system,
                            "message": f.message,
                            "evidence": json.dumps(f.evidence, default=str, sort_keys=True),
                            "found_at": now,
                        }
                        for f in unique.values()
                    ],
                )

    def read(
        self,
        vendor_ids: Sequence[str] | None = None,
        first: dt.date | None = None,
        last: dt.date | None = None,
    ) -> list[Finding]:
        """Findings for these vendors (all when None) from `first` to `last`, both included."""
        c = findings_table.c
        query = select(findings_table).order_by(c.vendor_id, c.business_day, c.kind, c.reference)
        if vendor_ids is not None:
            query = query.where(c.vendor_id.in_(list(vendor_ids)))
        if first is not None:
            query = query.where(c.business_day >= first)
        if last is not None:
            query = query.where(c.business_day <= last)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Finding(
                vendor_id=r["vendor_id"],
                business_day=r["business_day"],
                kind=r["kind"],
                reference=r["reference"],
                message=r["message"],
                evidence=json.loads(r["evidence"]),
                ledger_system=r["ledger_system"],
            )
            for r in rows
        ]
