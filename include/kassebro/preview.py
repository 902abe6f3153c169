"""`kassebro voucher preview`: build one vendor's day from a source and show the voucher; post nothing.

The JSON form is documented in docs/booking-rules.md ("Preview output") and kept stable: keys
are only ever added, never renamed or removed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from kassebro.config import Vendor, load_vendor
from kassebro.errors import InputError, Issue, SourceError
from kassebro.frames import SalesDay
from kassebro.money import format_ore
from kassebro.voucher import Voucher

PREVIEW_SCHEMA_VERSION = 1


def load_vendor_file(path: Path | str) -> Vendor:
    """Load a vendor file with its directory's parent as the config root, so its template resolves."""
    path = Path(path)
    return load_vendor(path.stem, root=path.resolve().parent.parent)


def is_database_url(source: str) -> bool:
    return "://" in source


def read_source(source: str, vendor: Vendor, business_day: dt.date) -> SalesDay:
    """Read the vendor's day from a SAF-T file or directory, or from a POS database URL."""
    if is_database_url(source):
        try:
            from kassebro.sources import sql
        except ImportError as exc:
            raise SourceError(
                [],
                headline=f"cannot read {_safe_url(source)}: the POS database source (kassebro.sources.sql) "
                f"is not available ({exc})",
            ) from None
        try:
            return sql.read_day(
                source, vendor.id, business_day, tz=vendor.timezone, day_start_hour=vendor.day_start_hour
            )
        except InputError:
            raise
        except Exception as exc:  # a driver's own error (connection refused, unknown table): say it plainly
            raise SourceError(
                Issue(_safe_url(source), "source_unreadable", f"{type(exc).__name__}: {exc}"),
                headline=f"{vendor.id} {business_day}: the POS database could not be read",
            ) from None
    from kassebro.sources.saft import read_day

    return read_day(Path(source), vendor.id, business_day, tz=vendor.timezone, day_start_hour=vendor.day_start_hour)


def _safe_url(url: str) -> str:
    """A URL without its password, for messages."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def preview_json(voucher: Voucher) -> dict[str, Any]:
    """The voucher as the stable preview document (docs/booking-rules.md)."""
    vat_by_code = json.loads(voucher.meta.get("vat_by_code", "{}"))
    return {
        "schema_version": PREVIEW_SCHEMA_VERSION,
        "vendor": voucher.vendor_id,
        "business_day": voucher.business_day.isoformat(),
        "external_ref": voucher.external_ref,
        "description": voucher.description,
        "state": "built" if voucher.lines else "empty",
        "lines": [
            {
                "account": line.account,
                "vat_code": line.vat_code,
                "amount": format_ore(line.amount),
                "amount_ore": line.amount,
                "description": line.description,
                "department": line.department,
                "project": line.project,
            }
            for line in voucher.lines
        ],
        "total_debit": format_ore(voucher.total_debit),
        "total_debit_ore": voucher.total_debit,
        "vat_difference_ore": voucher.vat_difference,
        "vat_by_code": {
            code: {"pos_ore": fig["pos"], "recomputed_ore": fig["recomputed"], "difference_ore": fig["difference"]}
            for code, fig in sorted(vat_by_code.items())
        },
        "digest": voucher.digest(),
    }


def failure_json(vendor_id: str, business_day: dt.date, error: InputError) -> dict[str, Any]:
    return {
        "schema_version": PREVIEW_SCHEMA_VERSION,
        "vendor": vendor_id,
        "business_day": business_day.isoformat(),
        "state": "failed",
        "error": error.headline,
        "issues": [{"source": i.source, "rule": i.rule, "message": i.message} for i in error.issues],
    }


def render_table(voucher: Voucher) -> str:
    """A readable table: one row per line, then totals and the VAT difference."""
    head = [
        f"{voucher.description}",
        f"vendor {voucher.vendor_id}, business day {voucher.business_day.isoformat()}, ref {voucher.external_ref}",
    ]
    if not voucher.lines:
        return "\n".join([*head, "no sales this business day: an empty voucher (nothing would be posted)"])
    rows = [("account", "vat", "debit", "credit", "dept", "project", "description")]
    for line in voucher.lines:
        rows.append(
            (
                line.account,
                line.vat_code or "-",
                format_ore(line.amount) if line.amount > 0 else "",
                format_ore(-line.amount) if line.amount < 0 else "",
                line.department or "",
                line.project or "",
                line.description,
            )
        )
    total = format_ore(voucher.total_debit)
    rows.append(("total", "", total, total, "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    right = {2, 3}
    out = list(head)
    for n, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i]) for i in range(6)]
        out.append("  ".join([*cells, row[6]]).rstrip())
        if n == 0 or n == len(rows) - 2:
            out.append("  ".join("-" * w for w in widths))
    figures = json.loads(voucher.meta.get("vat_by_code", "{}"))
    detail = ", ".join(f"code {code}: {fig['difference']:+d}" for code, fig in sorted(figures.items()))
    out.append(
        f"VAT difference (POS - recomputed from gross): {voucher.vat_difference:+d} øre"
        + (f" ({detail})" if detail else "")
    )
    return "\n".join(out)


def run(vendor_file: str, source: str, business_day: dt.date, *, as_json: bool = False) -> tuple[int, str, str]:
    """Preview a day: (exit code, stdout text, stderr text). Exit 1 when the day cannot be booked."""
    from kassebro.vouchers import build_voucher

    vendor_id = Path(vendor_file).stem
    try:
        vendor = load_vendor_file(vendor_file)
        day = read_source(source, vendor, business_day)
        voucher = build_voucher(day, vendor)
    except InputError as exc:
        text = str(exc)
        body = json.dumps(failure_json(vendor_id, business_day, exc), indent=2, sort_keys=True) if as_json else ""
        return 1, body, text
    if as_json:
        return 0, json.dumps(preview_json(voucher), indent=2, sort_keys=True, ensure_ascii=False), ""
    return 0, render_table(voucher), ""
