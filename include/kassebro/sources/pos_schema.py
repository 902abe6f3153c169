"""The POS database schema kassebro reads: SQLAlchemy Core tables and `create_schema(engine)`.

This is the contract a shop or POS vendor implements (as tables, or as views over their own
backoffice tables) so `kassebro.sources.sql.read_day` can read a business day over SQL. It is
documented column by column in `docs/pos-database.md`; the short version:

- **Money** is BIGINT øre (1/100 NOK) in columns named `*_ore`, signed like the canonical frames
  (a sale line is positive, a return line negative; a payment is positive when money came in).
  VAT rates are INTEGER basis points (25 % = 2500).
- **Time stamps** are TIMESTAMP WITH TIME ZONE. On a database without time zones (SQLite) they
  are stored as UTC; a naive value read back is taken as UTC (`UtcDateTime`).
- **Business day**: a receipt with a `z_report_id` belongs to that Z report's business day
  (`z_reports.business_day`, or the local date of `closed_at` minus the day-start hour when it is
  NULL); a receipt without one, to the local date of `sold_at` minus the day-start hour.
- Columns marked optional (`info={"optional": True}`) may be left out of a vendor's tables or
  views: the reader then uses NULL (read as "", 0 or false). Every other column must exist.

Table names avoid words some databases reserve (MySQL reserves LINES), so `receipt_lines`, not
`lines`. One database (or schema) holds one vendor's sales: there is no vendor column.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

from kassebro.core.tables import create_tables

__all__ = [
    "OPTIONAL_TABLES",
    "TABLE_NAMES",
    "UtcDateTime",
    "build_metadata",
    "create_schema",
    "metadata",
    "optional_columns",
]

# Databases whose timestamp type keeps no offset: kassebro stores UTC there.
_NAIVE_DIALECTS = frozenset({"sqlite", "mysql", "mariadb", "mssql"})


class UtcDateTime(sa.types.TypeDecorator):
    """TIMESTAMP WITH TIME ZONE that always hands back an aware UTC datetime.

    Binds: an aware value is converted to UTC (and stored without offset where the database has
    no time zones); a naive value is taken as UTC. Results: naive values are UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, not {type(value).__name__}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        utc = value.astimezone(dt.UTC)
        plain = dt.datetime(
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=dt.UTC
        )  # a plain datetime, also for subclasses (pandas.Timestamp) that drivers may not adapt
        return plain.replace(tzinfo=None) if dialect.name in _NAIVE_DIALECTS else plain

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a vendor's view may hand back text
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _id(name: str, *, optional: bool = False, nullable: bool = False, length: int = 64, **kw: Any) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable or optional, info={"optional": optional}, **kw)


def _ore(name: str, *, optional: bool = False) -> sa.Column:
    """A BIGINT øre column; optional ones default to 0."""
    extra: dict[str, Any] = {"server_default": "0"} if optional else {}
    return sa.Column(name, sa.BigInteger, nullable=optional, info={"optional": optional}, **extra)


def build_metadata(schema: str | None = None) -> sa.MetaData:
    """The POS tables, in database schema `schema` (None: the connection's default schema)."""
    md = sa.MetaData(schema=schema)
    prefix = f"{schema}." if schema else ""

    sa.Table(
        "articles",
        md,
        _id("article_id", primary_key=True),
        _id("art_group_id"),
        _id("art_group_code", length=5, optional=True),
        _id("description", length=255, optional=True),
        _id("vat_code", length=16, optional=True),
        _id("std_vat_code", length=8, optional=True),
        sa.Column("vat_rate_bp", sa.Integer, nullable=True, info={"optional": True}),
        comment="Article master data: what a line's article_id means",
    )
    sa.Table(
        "z_reports",
        md,
        _id("register_id", primary_key=True),
        _id("report_id", primary_key=True),
        sa.Column("closed_at", UtcDateTime, nullable=False, info={"optional": False}),
        sa.Column("business_day", sa.Date, nullable=True, info={"optional": True}),
        sa.Index("ix_z_reports_business_day", "business_day"),
        sa.Index("ix_z_reports_closed_at", "closed_at"),
        comment="Z reports (end-of-day reports): one per register and business day",
    )

    def z_key() -> sa.ForeignKeyConstraint:
        return sa.ForeignKeyConstraint(
            ["register_id", "report_id"], [f"{prefix}z_reports.register_id", f"{prefix}z_reports.report_id"]
        )

    sa.Table(
        "z_report_vat",
        md,
        _id("register_id", primary_key=True),
        _id("report_id", primary_key=True),
        _id("vat_code", length=16, primary_key=True),
        _id("std_vat_code", length=8, optional=True),
        sa.Column("vat_rate_bp", sa.Integer, nullable=False, info={"optional": False}),
        _ore("gross_ore"),
        _ore("vat_ore"),
        z_key(),
        comment="Z report totals per VAT code (gross, including VAT)",
    )
    sa.Table(
        "z_report_payments",
        md,
        _id("register_id", primary_key=True),
        _id("report_id", primary_key=True),
        _id("payment_type", primary_key=True),
        _id("payment_code", length=5, optional=True),
        _ore("amount_ore"),
        z_key(),
        comment="Z report totals per payment type",
    )
    sa.Table(
        "z_report_art_groups",
        md,
        _id("register_id", primary_key=True),
        _id("report_id", primary_key=True),
        _id("art_group_id", primary_key=True),
        _ore("amount_ore"),
        z_key(),
        comment="Z report totals per article group (gross); the whole table is optional",
    )
    sa.Table(
        "receipts",
        md,
        _id("register_id", primary_key=True),
        _id("trans_id", primary_key=True),
        sa.Column("nr", sa.BigInteger, nullable=False, info={"optional": False}),
        _id("trans_type"),
        _id("trans_code", length=5, optional=True),
        sa.Column("sold_at", UtcDateTime, nullable=False, info={"optional": False}),
        _ore("amount_ore"),
        _ore("rounding_ore", optional=True),
        _ore("bill_discount_ore", optional=True),
        _id("customer_id", optional=True),
        sa.Column("void", sa.Boolean, nullable=True, server_default=sa.false(), info={"optional": True}),
        sa.Column("training", sa.Boolean, nullable=True, server_default=sa.false(), info={"optional": True}),
        _id("z_report_id", optional=True),
        sa.ForeignKeyConstraint(
            ["register_id", "z_report_id"], [f"{prefix}z_reports.register_id", f"{prefix}z_reports.report_id"]
        ),
        sa.Index("ix_receipts_sold_at", "sold_at"),
        sa.Index("ix_receipts_z_report", "register_id", "z_report_id"),
        comment="Cash transactions (receipts), one row each",
    )

    def receipt_key() -> sa.ForeignKeyConstraint:
        return sa.ForeignKeyConstraint(
            ["register_id", "trans_id"], [f"{prefix}receipts.register_id", f"{prefix}receipts.trans_id"]
        )

    sa.Table(
        "receipt_lines",
        md,
        _id("register_id", primary_key=True),
        _id("trans_id", primary_key=True),
        _id("line_id", primary_key=True),
        _id("line_type", length=8),
        _id("article_id", nullable=True),  # NULL for tip lines; no foreign key: see the docs
        _id("description", length=255, optional=True),
        _id("quantity", length=32, optional=True),
        _ore("gross_ore"),
        _ore("net_ore"),
        _ore("vat_ore"),
        _id("vat_code", length=16, nullable=True),
        _id("std_vat_code", length=8, nullable=True),
        sa.Column("vat_rate_bp", sa.Integer, nullable=False, server_default="0", info={"optional": False}),
        _ore("discount_ore", optional=True),
        _id("project", optional=True),
        _id("cost_centre", optional=True),
        receipt_key(),
        sa.CheckConstraint("line_type IN ('sale', 'return', 'tip')", name="ck_receipt_lines_line_type"),
        comment="Receipt lines: sales, returns and tips",
    )
    sa.Table(
        "receipt_payments",
        md,
        _id("register_id", primary_key=True),
        _id("trans_id", primary_key=True),
        sa.Column("payment_no", sa.Integer, primary_key=True, info={"optional": False}),
        _id("payment_type"),
        _id("payment_code", length=5, optional=True),
        _ore("amount_ore"),
        _id("currency", length=3, optional=True),
        _id("exchange_rate", length=32, optional=True),
        receipt_key(),
        comment="Payments of a receipt, in NOK øre",
    )
    return md


metadata = build_metadata()
"""The tables in the default schema."""

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)
"""Every table of the schema, in dependency order."""

OPTIONAL_TABLES: frozenset[str] = frozenset({"z_report_art_groups"})
"""Tables a vendor may leave out entirely (the reader then gives `SalesDay.z_art_groups = None`)."""


def optional_columns(table: sa.Table) -> frozenset[str]:
    """Names of the table's columns a vendor may leave out (the reader reads them as NULL)."""
    return frozenset(c.name for c in table.columns if c.info.get("optional"))


def create_schema(engine: Engine, schema: str | None = None) -> sa.MetaData:
    """Create the POS tables (and indexes) that do not exist yet; return their metadata.

    `schema` is a database schema that must exist already (PostgreSQL: CREATE SCHEMA).
    """
    md = build_metadata(schema)
    create_tables(md, engine)
    return md
