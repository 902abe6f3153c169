"""`kassebro voucher preview`: one vendor's day through the path the DAG takes; post nothing.

It calls `verdict.evaluate_day`, as the DAG's `prepare` task does: the same read, every
validation and booking rule, the same voucher. It prints the verdict (every failed rule) and the
voucher, and exits non-zero exactly when the DAG would hold the day back. The JSON form is
documented in docs/booking-rules.md ("Preview output") and kept stable: keys are only ever added,
never renamed or removed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from kassebro.booking.verdict import DayVerdict
from kassebro.booking.voucher import Voucher
from kassebro.config import Vendor, load_vendor
from kassebro.core.errors import InputError, ValidationFailed
from kassebro.core.money import format_ore

PREVIEW_SCHEMA_VERSION = 1


def load_vendor_file(path: Path | str) -> Vendor:
    """Load a vendor file with its directory's parent as the config root, so its template resolves."""
    path = Path(path)
    return load_vendor(path.stem, root=path.resolve().parent.parent)


def preview_json(voucher: Voucher, verdict: DayVerdict | None = None) -> dict[str, Any]:
    """The voucher as the stable preview document (docs/booking-rules.md)."""
    vat_by_code = json.loads(voucher.meta.get("vat_by_code", "{}"))
    doc = {
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
    invoiced = _credit_invoices(voucher)
    if invoiced:  # made before the voucher is posted, and left out of it (credit_sales: invoice)
        doc["state"] = "built"
        doc["credit_invoices"] = [
            {"number": o.number, "customer": o.customer.name, "total": format_ore(o.total), "total_ore": o.total}
            for o in invoiced
        ]
    if verdict is not None:
        doc["verdict"] = verdict.to_json()
    return doc


def _credit_invoices(voucher: Voucher) -> list:
    from kassebro.booking.credit_invoices import orders_in

    return orders_in(voucher.meta, voucher.vendor_id)


def _invoice_lines(voucher: Voucher) -> list[str]:
    invoiced = _credit_invoices(voucher)
    if not invoiced:
        return []
    total = format_ore(sum(o.total for o in invoiced))
    return [
        f"credit sales invoiced in Tripletex before the voucher, and not in it: {len(invoiced)}, {total}",
        *(f"  {o.number}  {o.customer.name}  {format_ore(o.total)}" for o in invoiced),
    ]


def failure_json(
    vendor_id: str, business_day: dt.date, error: InputError, verdict: DayVerdict | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": PREVIEW_SCHEMA_VERSION,
        "vendor": vendor_id,
        "business_day": business_day.isoformat(),
        "state": "waiting" if verdict is not None and verdict.waiting else "failed",
        "error": error.headline,
        "issues": [{"source": i.source, "rule": i.rule, "message": i.message} for i in error.issues],
    }
    if verdict is not None:
        doc["verdict"] = verdict.to_json()
    return doc


def render_table(voucher: Voucher) -> str:
    """A readable table: one row per line, then totals and the VAT difference."""
    head = [
        f"{voucher.description}",
        f"vendor {voucher.vendor_id}, business day {voucher.business_day.isoformat()}, ref {voucher.external_ref}",
    ]
    if not voucher.lines and _invoice_lines(voucher):
        return "\n".join([*head, "no voucher: every sale was on account", *_invoice_lines(voucher)])
    if not voucher.lines:
        return "\n".join([*head, "closed: no sales this business day (nothing would be posted)"])
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
    return "\n".join([*out, *_invoice_lines(voucher)])


def render_verdict(verdict: DayVerdict) -> str:
    """The verdict for a person: the headline, then every failed (and not checked) rule."""
    report = verdict.report
    lines = [report.headline]
    for check in report.checks:
        if check.status != "pass":
            lines.append(f"- [{check.rule}] {'NOT CHECKED' if check.success else 'FAILED'}: {check.message}")
    return "\n".join(lines)


EXIT_HELD_BACK = 1
EXIT_WAITING = 3


def run(vendor_file: str, source: str, business_day: dt.date, *, as_json: bool = False) -> tuple[int, str, str]:
    """Preview a day: (exit code, stdout text, stderr text). Exit 1 exactly when the DAG would hold
    the day back (or the vendor file does not load); 3 when the source holds nothing yet for a day
    the shop's calendar has open (the DAG waits for its data, then fails at the deadline)."""
    from kassebro.booking.verdict import evaluate_day

    vendor_id = Path(vendor_file).stem
    try:
        vendor = load_vendor_file(vendor_file)
    except InputError as exc:
        body = json.dumps(failure_json(vendor_id, business_day, exc), indent=2, sort_keys=True) if as_json else ""
        return 1, body, str(exc)
    verdict = evaluate_day(vendor, business_day, source)
    if verdict.voucher is None:
        error = ValidationFailed(verdict.issues(), headline=verdict.report.headline)
        body = (
            json.dumps(
                failure_json(vendor.id, business_day, error, verdict), indent=2, sort_keys=True, ensure_ascii=False
            )
            if as_json
            else ""
        )
        return EXIT_WAITING if verdict.waiting else EXIT_HELD_BACK, body, render_verdict(verdict)
    if as_json:
        return 0, json.dumps(preview_json(verdict.voucher, verdict), indent=2, sort_keys=True, ensure_ascii=False), ""
    return 0, render_table(verdict.voucher) + "\n" + render_verdict(verdict), ""
