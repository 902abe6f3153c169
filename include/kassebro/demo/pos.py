"""A demo POS database: one demo vendor's sales in the schema of `kassebro.sources.pos_schema`.

The sales are the SAF-T demo's (`kassebro.demo.data`): each day is written as a SAF-T file into a
temporary directory, read back with `kassebro.sources.saft.read_day`, and its frames are inserted
row by row. So the POS database and the SAF-T export of a demo vendor hold the same sales, and
`kassebro.sources.sql.read_day` must give the same `SalesDay` as the SAF-T reader (the tests
check that). Deterministic: the same arguments always give the same rows.

How the frames become rows:

- One Z report per register and day, `closed_at` = the Z event's time in the SAF-T file and
  `business_day` set (a POS knows which day it closed); receipts point at it by `z_report_id`.
- `articles` is the profile's whole catalogue (with the article group's SAF-T code and the
  article's usual VAT code); lines keep their own VAT (the café's take-away lines are 15 %).
- A line's `description` is stored only where it differs from the article's (tips), so the reader's
  LEFT JOIN to `articles` is exercised.
- `z_report_art_groups` holds the Z report's totals per article group.
- The demo has no void or training receipts (`SalesDay.skipped` is empty); the tests add some.
- A day already in the database is replaced (its receipts and Z reports are deleted first), so
  building twice gives the same database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from lxml import etree

from kassebro.core.frames import SalesDay
from kassebro.demo import data as demo_data
from kassebro.sources import pos_schema, saft

__all__ = ["build_demo_pos", "demo_identity"]

_T = "{" + saft.NAMESPACE + "}"
_CHUNK = 500  # ids per IN (...) list when deleting a day


def demo_identity(vendor_id: str) -> tuple[str, str]:
    """(orgnr, company name) of a demo vendor: the demo's own for its vendors, else derived from the id."""
    import yaml

    from kassebro.config import PROJECT_DIR
    from kassebro.demo.home import DEMO_VENDORS

    for vendor in DEMO_VENDORS:
        if vendor.vendor_id == vendor_id:
            path = PROJECT_DIR / "config" / "vendors" / f"{vendor_id}.yaml"
            return str(yaml.safe_load(path.read_text(encoding="utf-8"))["organisation_number"]), vendor.company
    digits = int.from_bytes(hashlib.blake2b(vendor_id.encode(), digest_size=8).digest(), "big") % 10**8
    return f"9{digits:08d}", vendor_id


def build_demo_pos(
    url: str,
    vendor_id: str,
    first: dt.date,
    last: dt.date,
    profile: str = "cafe",
    *,
    tz: str = "Europe/Oslo",
    schema: str | None = None,
    engine: sa.Engine | None = None,
) -> None:
    """Create the POS schema at `url` (tables that exist are kept) and fill it with the demo
    profile's business days `first`..`last` (inclusive) for one demo vendor, with Z reports.

    `profile` is a `kassebro.demo.data.PROFILES` name ("cafe", "bar", "shop"); a bar's days are
    read with its `day_start_hour` (5). Pass `engine` to reuse one (then `url` is ignored).
    """
    demo = demo_data.PROFILES.get(profile)
    if demo is None:
        raise ValueError(f"unknown demo profile {profile!r}; choose one of {sorted(demo_data.PROFILES)}")
    if last < first:
        raise ValueError(f"last ({last}) is before first ({first})")
    orgnr, company = demo_identity(vendor_id)
    own_engine = engine is None
    engine = engine if engine is not None else sa.create_engine(url)
    try:
        md = pos_schema.create_schema(engine, schema)
        tables = {t.name: t for t in md.sorted_tables}
        with engine.begin() as conn:
            descriptions = _replace_articles(conn, tables["articles"], demo)
        with tempfile.TemporaryDirectory(prefix="kassebro-demo-pos-") as tmp:
            day = first
            while day <= last:
                path = demo_data.write_day(profile, orgnr, company, day, Path(tmp) / day.isoformat(), tz=tz)
                sales = saft.read_day(path, vendor_id, day, tz=tz, day_start_hour=demo.day_start_hour)
                rows = _rows(sales, _z_closed_at(path, tz), descriptions)
                with engine.begin() as conn:
                    _delete_day(conn, tables, rows)
                    for name in pos_schema.TABLE_NAMES:
                        if name != "articles" and rows[name]:
                            conn.execute(tables[name].insert(), rows[name])
                day += dt.timedelta(days=1)
    finally:
        if own_engine:
            engine.dispose()


def _replace_articles(conn: sa.Connection, table: sa.Table, demo: demo_data.DemoProfile) -> dict[str, str]:
    """Write the profile's catalogue; return article id -> description."""
    group_codes = {group_id: code for group_id, code, _desc in demo.groups}
    rows = []
    for article in demo.articles:
        # the article's usual VAT: the demo's own mapping (shop food 15 %, gift cards outside VAT)
        vat_code = demo_data._GROUP_VAT.get(article.group, "1") if demo.name == "shop" else demo.vat_codes[0]
        rate_bp, std_code, _desc = demo_data._VAT_CODES[vat_code]
        rows.append(
            {
                "article_id": article.art_id,
                "art_group_id": article.group,
                "art_group_code": group_codes.get(article.group),
                "description": article.desc,
                "vat_code": vat_code,
                "std_vat_code": std_code,
                "vat_rate_bp": rate_bp,
            }
        )
    conn.execute(table.delete().where(table.c.article_id.in_([row["article_id"] for row in rows])))
    conn.execute(table.insert(), rows)
    return {row["article_id"]: row["description"] for row in rows}


def _z_closed_at(path: Path, tz: str) -> dict[tuple[str, str], dt.datetime]:
    """(register, report id) -> the Z report's time (UTC), from the SAF-T file's Z events."""
    zone = ZoneInfo(tz)
    result: dict[tuple[str, str], dt.datetime] = {}
    parser_options = {"resolve_entities": False, "no_network": True, "load_dtd": False}
    for _event, elem in etree.iterparse(str(path), events=("end",), tag=_T + "event", **parser_options):
        report = elem.find(_T + "eventReport")
        if report is not None and report.findtext(_T + "reportType") == "Z report":
            day = elem.findtext(_T + "eventDate") or report.findtext(_T + "reportDate") or ""
            clock = elem.findtext(_T + "eventTime") or report.findtext(_T + "reportTime") or ""
            local = dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(clock), tzinfo=zone)
            key = (report.findtext(_T + "registerID") or "", report.findtext(_T + "reportID") or "")
            result[key] = local.astimezone(dt.UTC)
        elem.clear()
    return result


def _none_if_empty(value: str) -> str | None:
    return value if value else None


def _utc(stamp: Any) -> dt.datetime:
    return stamp.to_pydatetime().astimezone(dt.UTC)


def _rows(
    sales: SalesDay, closed_at: dict[tuple[str, str], dt.datetime], descriptions: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """The day's rows per table (articles excepted)."""
    report_of: dict[str, str] = {}
    for frame in (sales.z_vat, sales.z_payments):
        for register, report in zip(frame["register_id"], frame["report_id"], strict=True):
            report_of[register] = report
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (register, report), closed in sorted(closed_at.items()):
        if report_of.get(register) == report:
            rows["z_reports"].append(
                {"register_id": register, "report_id": report, "closed_at": closed, "business_day": sales.business_day}
            )
    for z in sales.z_vat.to_dict("records"):
        rows["z_report_vat"].append(
            {
                "register_id": z["register_id"],
                "report_id": z["report_id"],
                "vat_code": z["vat_code"],
                "std_vat_code": _none_if_empty(z["std_vat_code"]),
                "vat_rate_bp": z["vat_rate_bp"],
                "gross_ore": z["gross"],
                "vat_ore": z["vat"],
            }
        )
    for z in sales.z_payments.to_dict("records"):
        rows["z_report_payments"].append(
            {
                "register_id": z["register_id"],
                "report_id": z["report_id"],
                "payment_type": z["payment_type"],
                "payment_code": _none_if_empty(z["payment_code"]),
                "amount_ore": z["amount"],
            }
        )
    for r in sales.receipts.to_dict("records"):
        rows["receipts"].append(
            {
                "register_id": r["register_id"],
                "trans_id": r["trans_id"],
                "nr": r["nr"],
                "trans_type": r["trans_type"],
                "trans_code": _none_if_empty(r["trans_code"]),
                "sold_at": _utc(r["timestamp"]),
                "amount_ore": r["amount"],
                "rounding_ore": r["rounding"],
                "bill_discount_ore": r["bill_discount"],
                "customer_id": _none_if_empty(r["customer_id"]),
                "void": False,
                "training": False,
                "z_report_id": report_of.get(r["register_id"]),
            }
        )
    groups: dict[tuple[str, str], int] = defaultdict(int)
    for line in sales.lines.to_dict("records"):
        article_id = line["article_id"]
        own_text = line["description"] if line["description"] != descriptions.get(article_id) else ""
        rows["receipt_lines"].append(
            {
                "register_id": line["register_id"],
                "trans_id": line["trans_id"],
                "line_id": line["line_id"],
                "line_type": line["line_type"],
                "article_id": _none_if_empty(article_id),
                "description": _none_if_empty(own_text),
                "quantity": _none_if_empty(line["quantity"]),
                "gross_ore": line["gross"],
                "net_ore": line["net"],
                "vat_ore": line["vat"],
                "vat_code": _none_if_empty(line["vat_code"]),
                "std_vat_code": _none_if_empty(line["std_vat_code"]),
                "vat_rate_bp": line["vat_rate_bp"],
                "discount_ore": line["discount"],
                "project": _none_if_empty(line["project"]),
                "cost_centre": _none_if_empty(line["cost_centre"]),
            }
        )
        if line["line_type"] != "tip" and line["register_id"] in report_of:
            groups[(line["register_id"], line["art_group_id"])] += line["gross"]
    if sales.z_art_groups is not None:  # the Z report's own article-group totals
        for z in sales.z_art_groups.to_dict("records"):
            rows["z_report_art_groups"].append(
                {
                    "register_id": z["register_id"],
                    "report_id": z["report_id"],
                    "art_group_id": z["art_group_id"],
                    "amount_ore": z["amount"],
                }
            )
    else:  # a reader without them: the lines' gross per group
        for (register, group), amount in sorted(groups.items()):
            rows["z_report_art_groups"].append(
                {"register_id": register, "report_id": report_of[register], "art_group_id": group, "amount_ore": amount}
            )
    numbers: dict[tuple[str, str], int] = defaultdict(int)
    for p in sales.payments.to_dict("records"):
        key = (p["register_id"], p["trans_id"])
        numbers[key] += 1
        rows["receipt_payments"].append(
            {
                "register_id": p["register_id"],
                "trans_id": p["trans_id"],
                "payment_no": numbers[key],
                "payment_type": p["payment_type"],
                "payment_code": _none_if_empty(p["payment_code"]),
                "amount_ore": p["amount"],
                "currency": p["currency"],
                "exchange_rate": _none_if_empty(p["exchange_rate"]),
            }
        )
    return rows


def _delete_day(conn: sa.Connection, tables: dict[str, sa.Table], rows: dict[str, list[dict[str, Any]]]) -> None:
    """Delete the receipts and Z reports the day's rows will insert (children first)."""
    trans: dict[str, list[str]] = defaultdict(list)
    for receipt in rows["receipts"]:
        trans[receipt["register_id"]].append(receipt["trans_id"])
    reports: dict[str, list[str]] = defaultdict(list)
    for report in rows["z_reports"]:
        reports[report["register_id"]].append(report["report_id"])
    for child in ("receipt_lines", "receipt_payments", "receipts"):
        table = tables[child]
        for register, ids in trans.items():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                conn.execute(table.delete().where(table.c.register_id == register, table.c.trans_id.in_(chunk)))
    for child in ("z_report_vat", "z_report_payments", "z_report_art_groups", "z_reports"):
        table = tables[child]
        for register, ids in reports.items():
            conn.execute(table.delete().where(table.c.register_id == register, table.c.report_id.in_(ids)))
