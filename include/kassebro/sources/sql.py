"""Read a POS database (the shop's own backoffice DB) over SQL into a canonical `SalesDay`.

The database implements the schema in `kassebro.sources.pos_schema` (documented column by column
in `docs/pos-database.md`), as tables or as views over the vendor's own tables. Any SQLAlchemy URL
works (`sqlite:///pos.db`, `postgresql+psycopg2://kassebro@pos-host/backoffice`, ...); the reader
only runs SELECTs.

How a day is read (the choices, mirroring `kassebro.sources.saft`):

- **Business day, in the database.** The Z reports of the day are those with
  `business_day = :day`, or with `business_day` NULL and `closed_at` in the day's UTC window. A
  receipt with a `z_report_id` belongs to its Z report's day; one without (or whose Z report
  does not exist) to the day whose window holds `sold_at`. The window is [day + day_start_hour,
  next day + day_start_hour) on the wall clock of `tz`, turned into UTC instants in Python with
  zoneinfo, so a 05:00 day start stays 05:00 across DST (the autumn business day before the
  change is 25 hours long, the spring one 23). A wall time that occurs twice is its first
  occurrence (fold=0), as in the SAF-T reader. Only the day's rows leave the database: every
  query filters on the window or joins the day's receipts.
- **Voids and training** receipts (`void` or `training` true) are left out with their lines and
  payments (NULL counts as false); they are listed in `SalesDay.skipped` (register, trans_id, nr,
  reason), so their numbers do not read as gaps in the number series.
- **Articles.** Lines get `art_group_id`, `art_group_code` and (unless the line has its own)
  `description` from `articles` by a LEFT JOIN: an unknown article gives `art_group_id` "", which
  validation then reports, rather than a lost line.
- **Codes.** An empty `trans_code`, `payment_code` or `art_group_code` whose own id already is a
  predefined SAF-T code (e.g. payment_type "12001") becomes that id, as in the SAF-T reader.
- **Payments** without `currency` are NOK; a NOK payment without `exchange_rate` gets "1".
- **Types.** Money must be whole øre: a NUMERIC or REAL value that is not a whole number is an
  error, never rounded. `quantity` and `exchange_rate` are exact decimal text; a NUMERIC column is
  accepted and written without trailing zeros. NULL text is "".
- **Snapshot.** On PostgreSQL the queries run in one read-only REPEATABLE READ transaction, so a
  POS writing meanwhile cannot make lines and receipts disagree.
- **Errors** are collected as `Issue(source=<URL without password>, rule="pos_database")`: an
  unreachable database, a missing table or column (all of them at once, with the SQL error
  class); bad values are rule "bad_value". They are raised together as one `SourceError`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from kassebro.core import saft_codes
from kassebro.core.errors import Issue, SourceError
from kassebro.core.frames import FRAME_COLUMNS, OPTIONAL_FRAMES, SalesDay, conform, empty_frame
from kassebro.sources import pos_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RULE", "day_window", "read_day", "redact_url"]

RULE = "pos_database"
"""The Issue rule of database problems (unreachable, missing table or column, failed query)."""

_DECIMAL_TEXT_COLUMNS = {"quantity", "exchange_rate"}
_TABLE_OF = {  # frame -> the table its rows come from, for messages
    "lines": "receipt_lines",
    "payments": "receipt_payments",
    "skipped": "receipts",
    "z_vat": "z_report_vat",
    "z_payments": "z_report_payments",
    "z_art_groups": "z_report_art_groups",
}
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def day_window(
    business_day: dt.date, tz: str = "Europe/Oslo", day_start_hour: int = 0
) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) of a business day: its wall-clock day start to the next one's.

    A business day is 23 or 25 hours long when it spans a DST change.
    """
    if not 0 <= day_start_hour <= 23:
        raise ValueError(f"day_start_hour must be 0..23, not {day_start_hour}")
    zone = ZoneInfo(tz)
    clock = dt.time(day_start_hour)
    start = dt.datetime.combine(business_day, clock, tzinfo=zone)
    end = dt.datetime.combine(business_day + dt.timedelta(days=1), clock, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def redact_url(url: str | URL) -> str:
    """The URL with its password shown as ***, also when it cannot be parsed."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: hide what looks like a password
        return _PASSWORD_IN_URL.sub(r"\1***@", str(url))


def read_day(
    url: str,
    vendor_id: str,
    business_day: dt.date,
    *,
    tz: str = "Europe/Oslo",
    day_start_hour: int = 0,
    schema: str | None = None,
    engine: Engine | None = None,
) -> SalesDay:
    """Read one vendor's business day from a POS database.

    `url` is any SQLAlchemy URL; or pass `engine` to reuse one (`url` is then ignored). `schema`
    is the database schema holding the tables (None: the default). Raises SourceError listing
    every problem (unreachable database, missing tables or columns, bad values). A day without
    receipts or Z reports gives a SalesDay with empty frames. `SalesDay.source` is the URL with
    the password hidden.
    """
    start, end = day_window(business_day, tz, day_start_hour)
    own_engine = engine is None
    source = redact_url(url if engine is None else engine.url)
    headline = f"{vendor_id} {business_day}: POS database {source} unreadable"
    issues: list[Issue] = []
    if engine is None:
        try:
            engine = sa.create_engine(url)
        except Exception as exc:  # bad URL, unknown dialect, driver not installed
            raise SourceError(
                Issue(source, RULE, f"cannot use the URL: {_describe(exc, None)}"), headline=headline
            ) from None
    password = engine.url.password
    database = engine.url.database or ""
    sqlite_file = engine.dialect.name == "sqlite" and database not in ("", ":memory:") and "file:" not in database
    if sqlite_file and not Path(database).is_file():  # SQLite would create an empty file
        if own_engine:
            engine.dispose()
        raise SourceError(Issue(source, RULE, f"no such SQLite database file {database}"), headline=headline)
    try:
        with _connect(engine) as conn:
            tables = _present_tables(conn, schema, source, issues, password)
            if issues:
                raise SourceError(issues, headline=headline)
            frames = _read(conn, tables, business_day, start, end, source, issues, password)
    except SourceError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        issues.append(Issue(source, RULE, _describe(exc, password)))
        raise SourceError(issues, headline=headline) from None
    finally:
        if own_engine:
            engine.dispose()
    if issues:
        raise SourceError(issues, headline=headline)
    return SalesDay(
        vendor_id=vendor_id,
        business_day=business_day,
        source=source if schema is None else f"{source} (schema {schema})",
        **frames,
    )


# ---------------------------------------------------------------------------------------------
# Connection and schema checks


def _connect(engine: Engine) -> Connection:
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def _describe(exc: BaseException, secret: str | None) -> str:
    """'<ErrorClass>: <first line of the driver's message>', with any password masked."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()
    text = f"{type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")
    if secret:
        text = text.replace(secret, "***")
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


class _Tables:
    """The schema's tables as the database has them: present columns, and NULL for the missing optional ones."""

    def __init__(self, md: sa.MetaData, present: dict[str, set[str]]) -> None:
        self.md = md
        self.present = present

    def has(self, table: str) -> bool:
        return table in self.present

    def table(self, name: str) -> sa.Table:
        return self.md.tables[_key(self.md, name)]

    def col(self, table: str | sa.Table, name: str, *, alias: Any = None) -> Any:
        """The column, or a typed NULL when the database leaves out this optional column."""
        t = self.table(table) if isinstance(table, str) else table
        source = alias if alias is not None else t
        if name in self.present[t.name]:
            return source.c[name]
        return sa.null().cast(t.c[name].type)


def _key(md: sa.MetaData, name: str) -> str:
    return f"{md.schema}.{name}" if md.schema else name


def _present_tables(
    conn: Connection, schema: str | None, source: str, issues: list[Issue], password: str | None
) -> _Tables:
    md = pos_schema.build_metadata(schema)
    inspector = sa.inspect(conn)
    present: dict[str, set[str]] = {}
    where = f"{schema}." if schema else ""
    for name in pos_schema.TABLE_NAMES:
        table = md.tables[_key(md, name)]
        try:
            columns = {c["name"].lower() for c in inspector.get_columns(name, schema=schema)}
        except sa.exc.NoSuchTableError:
            if name not in pos_schema.OPTIONAL_TABLES:
                issues.append(Issue(source, RULE, f"table {where}{name} is missing (NoSuchTableError)"))
            continue
        except sa.exc.SQLAlchemyError as exc:
            issues.append(Issue(source, RULE, f"cannot inspect table {where}{name}: {_describe(exc, password)}"))
            continue
        optional = pos_schema.optional_columns(table)
        missing = [c.name for c in table.columns if c.name not in columns and c.name not in optional]
        if missing:
            issues.append(
                Issue(source, RULE, f"table {where}{name} lacks column(s) {', '.join(missing)} (missing column)")
            )
        present[name] = columns
    return _Tables(md, present)


# ---------------------------------------------------------------------------------------------
# The queries


def _read(
    conn: Connection,
    t: _Tables,
    day: dt.date,
    start: dt.datetime,
    end: dt.datetime,
    source: str,
    issues: list[Issue],
    password: str | None,
) -> dict[str, pd.DataFrame | None]:
    z = t.table("z_reports")
    r = t.table("receipts")
    lines = t.table("receipt_lines")
    pays = t.table("receipt_payments")
    arts = t.table("articles")

    business_day = t.col(z, "business_day")
    day_z = (
        sa.select(z.c.register_id, z.c.report_id)
        .where(
            sa.or_(business_day == day, sa.and_(business_day.is_(None), z.c.closed_at >= start, z.c.closed_at < end))
        )
        .cte("day_z")
    )
    receipt_cols = [
        r.c.register_id,
        r.c.trans_id,
        r.c.nr,
        r.c.trans_type,
        t.col(r, "trans_code").label("trans_code"),
        r.c.amount_ore.label("amount"),
        sa.func.coalesce(t.col(r, "rounding_ore"), 0).label("rounding"),
        r.c.sold_at.label("timestamp"),
        sa.func.coalesce(t.col(r, "bill_discount_ore"), 0).label("bill_discount"),
        t.col(r, "customer_id").label("customer_id"),
        sa.case(
            (t.col(r, "void").is_(sa.true()), "void"), (t.col(r, "training").is_(sa.true()), "training"), else_=""
        ).label("skipped"),
    ]
    z_report_id = t.col(r, "z_report_id")
    by_z = sa.select(*receipt_cols).join(
        day_z, sa.and_(r.c.register_id == day_z.c.register_id, z_report_id == day_z.c.report_id)
    )
    any_z = z.alias("any_z")
    by_time = (
        sa.select(*receipt_cols)
        .outerjoin(any_z, sa.and_(r.c.register_id == any_z.c.register_id, z_report_id == any_z.c.report_id))
        .where(any_z.c.report_id.is_(None), r.c.sold_at >= start, r.c.sold_at < end)
    )
    day_r = sa.union_all(by_z, by_time).cte("day_receipts")  # with the void and training ones
    kept = day_r.c.skipped == ""

    receipts_q = (
        sa.select(*[day_r.c[name] for name in FRAME_COLUMNS["receipts"]])
        .where(kept)
        .order_by(day_r.c.register_id, day_r.c.nr, day_r.c.trans_id)
    )
    skipped_q = (
        sa.select(day_r.c.register_id, day_r.c.trans_id, day_r.c.nr, day_r.c.skipped.label("reason"))
        .where(day_r.c.skipped != "")
        .order_by(day_r.c.register_id, day_r.c.nr, day_r.c.trans_id)
    )
    description = sa.func.coalesce(t.col(lines, "description"), t.col(arts, "description"))
    lines_q = (
        sa.select(
            lines.c.register_id,
            lines.c.trans_id,
            lines.c.line_id,
            lines.c.line_type,
            sa.func.coalesce(arts.c.art_group_id, "").label("art_group_id"),
            t.col(arts, "art_group_code").label("art_group_code"),
            lines.c.article_id,
            description.label("description"),
            t.col(lines, "quantity").label("quantity"),
            lines.c.gross_ore.label("gross"),
            lines.c.net_ore.label("net"),
            lines.c.vat_ore.label("vat"),
            lines.c.vat_code,
            lines.c.std_vat_code,
            sa.func.coalesce(lines.c.vat_rate_bp, 0).label("vat_rate_bp"),
            day_r.c.timestamp,
            sa.func.coalesce(t.col(lines, "discount_ore"), 0).label("discount"),
            t.col(lines, "project").label("project"),
            t.col(lines, "cost_centre").label("cost_centre"),
        )
        .select_from(lines)
        .join(day_r, sa.and_(lines.c.register_id == day_r.c.register_id, lines.c.trans_id == day_r.c.trans_id))
        .outerjoin(arts, lines.c.article_id == arts.c.article_id)
        .where(kept)
        .order_by(day_r.c.register_id, day_r.c.nr, lines.c.trans_id, lines.c.line_id)
    )
    payments_q = (
        sa.select(
            pays.c.register_id,
            pays.c.trans_id,
            pays.c.payment_type,
            t.col(pays, "payment_code").label("payment_code"),
            pays.c.amount_ore.label("amount"),
            sa.func.coalesce(t.col(pays, "currency"), "NOK").label("currency"),
            t.col(pays, "exchange_rate").label("exchange_rate"),
        )
        .join(day_r, sa.and_(pays.c.register_id == day_r.c.register_id, pays.c.trans_id == day_r.c.trans_id))
        .where(kept)
        .order_by(day_r.c.register_id, day_r.c.nr, pays.c.trans_id, pays.c.payment_no)
    )

    def z_query(name: str, *columns: Any) -> sa.Select:
        zt = t.table(name)
        return (
            sa.select(*columns)
            .join(day_z, sa.and_(zt.c.register_id == day_z.c.register_id, zt.c.report_id == day_z.c.report_id))
            .order_by(zt.c.register_id, zt.c.report_id, *columns[2:3])
        )

    zv, zp = t.table("z_report_vat"), t.table("z_report_payments")
    queries: dict[str, sa.Select] = {
        "receipts": receipts_q,
        "lines": lines_q,
        "payments": payments_q,
        "skipped": skipped_q,
        "z_vat": z_query(
            "z_report_vat",
            zv.c.register_id,
            zv.c.report_id,
            zv.c.vat_code,
            t.col(zv, "std_vat_code").label("std_vat_code"),
            zv.c.vat_rate_bp,
            zv.c.gross_ore.label("gross"),
            zv.c.vat_ore.label("vat"),
        ),
        "z_payments": z_query(
            "z_report_payments",
            zp.c.register_id,
            zp.c.report_id,
            zp.c.payment_type,
            t.col(zp, "payment_code").label("payment_code"),
            zp.c.amount_ore.label("amount"),
        ),
    }
    if t.has("z_report_art_groups"):
        za = t.table("z_report_art_groups")
        queries["z_art_groups"] = z_query(
            "z_report_art_groups", za.c.register_id, za.c.report_id, za.c.art_group_id, za.c.amount_ore.label("amount")
        )

    frames: dict[str, pd.DataFrame | None] = {"z_art_groups": None}
    for name, query in queries.items():
        try:
            result = conn.execute(query)
            rows = result.fetchall()
            columns = list(result.keys())
        except sa.exc.SQLAlchemyError as exc:
            table = _TABLE_OF.get(name, name)
            issues.append(Issue(source, RULE, f"query for {table} failed: {_describe(exc, password)}"))
            continue
        frames[name] = _frame(name, rows, columns, source, issues)
    for name in FRAME_COLUMNS:  # the POS database has no file header, master data or number series
        if name not in OPTIONAL_FRAMES and frames.get(name) is None:
            frames[name] = empty_frame(name)
    return frames


# ---------------------------------------------------------------------------------------------
# Rows -> frames


def _frame(name: str, rows: list[Any], columns: list[str], source: str, issues: list[Issue]) -> pd.DataFrame:
    import pandas as pd

    if not rows:
        return empty_frame(name)
    df = pd.DataFrame.from_records(rows, columns=columns)
    table = _TABLE_OF.get(name, name)
    bad = False
    for column, dtype in FRAME_COLUMNS[name].items():
        if column not in df.columns:
            continue
        values = df[column]
        if dtype == "string":
            if column in _DECIMAL_TEXT_COLUMNS:
                df[column] = values.map(_decimal_text).astype("string")
            else:
                df[column] = values.astype("string").fillna("")
        elif dtype == "int64":
            whole, problem = _whole_numbers(values)
            if problem is not None:
                row = df.iloc[problem[0]]
                where = " ".join(str(row[k]) for k in ("register_id", "trans_id", "report_id") if k in df.columns)
                issues.append(
                    Issue(source, "bad_value", f"{table} {where}: {column} {problem[1]!r} is not a whole number")
                )
                bad = True
            else:
                df[column] = pd.Series(whole, index=df.index, dtype="int64")
        elif dtype.startswith("datetime64"):
            df[column] = pd.to_datetime(values, utc=True)
    if bad:
        return empty_frame(name)
    _fill_codes(name, df)
    return conform(name, df)


def _decimal_text(value: Any) -> str:
    """Exact decimal text: NULL -> "", Decimal('2.000') -> '2', 1.5 -> '1.5'."""
    if value is None or value != value:  # None or NaN
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        number = Decimal(str(value)).normalize()
    except InvalidOperation:
        return str(value)
    return format(number, "f")


def _whole_numbers(values: pd.Series) -> tuple[list[int] | None, tuple[int, Any] | None]:
    """(the values as ints, None), or (None, (position, value)) of the first NULL or non-whole value."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(values.dtype):
        return values.tolist(), None
    whole: list[int] = []
    for position, value in enumerate(values.tolist()):
        try:
            if value is None or isinstance(value, bool) or value != int(value):
                return None, (position, value)
        except (TypeError, ValueError, OverflowError):  # NaN, text
            return None, (position, value)
        whole.append(int(value))
    return whole, None


def _fill_codes(name: str, df: pd.DataFrame) -> None:
    """An empty predefined code whose own id already is an official code takes that id; a NOK
    payment without exchange rate gets "1" (as the SAF-T reader gives it)."""
    if name == "payments":
        df.loc[(df["exchange_rate"] == "") & (df["currency"] == "NOK"), "exchange_rate"] = "1"
    pairs = {
        "receipts": [("trans_type", "trans_code", "TRANSACTION_CODES")],
        "lines": [("art_group_id", "art_group_code", "ARTICLE_GROUP_CODES")],
        "payments": [("payment_type", "payment_code", "PAYMENT_CODES")],
        "z_payments": [("payment_type", "payment_code", "PAYMENT_CODES")],
    }
    for ident, code, official in pairs.get(name, []):
        missing = df[code] == ""
        if missing.any():
            known = missing & df[ident].isin(list(getattr(saft_codes, official)))
            df.loc[known, code] = df.loc[known, ident]
