"""The Z reports' figures as the POS gave them, kept per vendor-day for reconciliation.

The nightly run reads the Z report(s) anyway (the validation compares the receipts with them);
keeping their payment and sales totals lets the reconciliation compare the ledger with the POS for
a month of days without reading every file or database again. A day's row is replaced each time
the day is read, so a late or corrected Z report is what the reconciliation sees next. A day with
no row is a day whose Z report kassebro never read: unknown, never zero.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Text, delete, insert, select

from kassebro.core.frames import SalesDay
from kassebro.core.tables import create_tables
from kassebro.posting.journal import Journal

metadata = MetaData()
zreports_table = Table(
    "kassebro_zreports",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    Column("business_day", Date, primary_key=True),
    Column("sales_gross_ore", Integer, nullable=False),  # the Z reports' sales per VAT code, summed (gross)
    Column("payments_json", Text, nullable=False),  # [[payment_type, payment_code, øre], ...]
    Column("reports", Integer, nullable=False),  # how many Z reports the day had
    Column("source", Text, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class ZDay:
    """A day's Z report figures, summed over its registers.

    Attributes:
      vendor_id, business_day: whose day.
      sales_gross: the Z reports' sales over every VAT code, gross of VAT (øre).
      payments: (POS payment type, SAF-T payment code, øre) per payment type, as the Z reports say.
      reports: how many Z reports the day had (0: the source had transactions but no Z report).
      source: where the figures were read.
      read_at: when.
    """

    vendor_id: str
    business_day: dt.date
    sales_gross: int
    payments: tuple[tuple[str, str, int], ...]
    reports: int
    source: str
    read_at: dt.datetime

    @property
    def payments_total(self) -> int:
        return sum(amount for _, _, amount in self.payments)


def z_day(sales: SalesDay, now: dt.datetime | None = None) -> ZDay:
    """The figures of a day's Z reports, from the frames the source gave."""
    z = sales.z_payments
    grouped = z.groupby(["payment_type", "payment_code"], sort=True, dropna=False)["amount"].sum() if len(z) else {}
    payments = tuple(
        (str(ptype) if ptype == ptype else "", str(pcode) if pcode == pcode else "", int(amount))
        for (ptype, pcode), amount in (grouped.items() if len(z) else ())
    )
    reports = len(sales.z_payments[["register_id", "report_id"]].drop_duplicates()) if len(z) else 0
    if sales.z_reports is not None and len(sales.z_reports):
        reports = max(reports, len(sales.z_reports))
    return ZDay(
        vendor_id=sales.vendor_id,
        business_day=sales.business_day,
        sales_gross=int(sales.z_vat["gross"].sum()) if len(sales.z_vat) else 0,
        payments=payments,
        reports=reports,
        source=sales.source,
        read_at=now or dt.datetime.now(dt.UTC),
    )


class ZReports:
    """Reads and replaces the kept Z figures; lives in the journal's database (same URL)."""

    def __init__(self, url: str | None = None) -> None:
        self.engine = Journal(url).engine
        create_tables(metadata, self.engine)

    def save(self, day: ZDay) -> None:
        c = zreports_table.c
        with self.engine.begin() as conn:
            conn.execute(delete(zreports_table).where(c.vendor_id == day.vendor_id, c.business_day == day.business_day))
            conn.execute(
                insert(zreports_table).values(
                    vendor_id=day.vendor_id,
                    business_day=day.business_day,
                    sales_gross_ore=day.sales_gross,
                    payments_json=json.dumps([list(p) for p in day.payments]),
                    reports=day.reports,
                    source=day.source[:2000],
                    read_at=day.read_at,
                )
            )

    def read(self, vendor_id: str, first: dt.date, last: dt.date) -> dict[dt.date, ZDay]:
        """The kept days first..last (inclusive); a day absent from the result was never read."""
        c = zreports_table.c
        query = select(zreports_table).where(c.vendor_id == vendor_id, c.business_day >= first, c.business_day <= last)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {
            r["business_day"]: ZDay(
                vendor_id=r["vendor_id"],
                business_day=r["business_day"],
                sales_gross=r["sales_gross_ore"],
                payments=tuple((str(t), str(c_), int(a)) for t, c_, a in json.loads(r["payments_json"])),
                reports=r["reports"],
                source=r["source"],
                read_at=r["read_at"],
            )
            for r in rows
        }
