"""Canonical sales frames -> one balanced voucher per vendor and business day (the booking rules).

Revenue is grouped per (account, VAT code, department, project) in gross, because every target
ledger recomputes VAT from gross and a VAT code; the øre difference between the POS's own VAT and
that recomputation is reported on the voucher. Payments are grouped per payment account, tips go
to a liability without VAT, and cash rounding gets its own line, so the voucher sums to exactly 0.
"""

from __future__ import annotations

from kassebro.config import Vendor
from kassebro.errors import Issue, ValidationFailed
from kassebro.frames import SalesDay
from kassebro.money import format_ore, vat_from_gross
from kassebro.voucher import Voucher, VoucherLine, external_ref

# VAT rate (basis points) -> standard tax code for sales, used when a POS leaves the code out.
_SALES_CODE_BY_RATE = {2500: "3", 1500: "31", 1200: "33", 1100: "33", 0: "6"}


def _std_code(code: str, rate_bp: int) -> str:
    return code or _SALES_CODE_BY_RATE.get(rate_bp, "")


def build_voucher(day: SalesDay, vendor: Vendor) -> Voucher:
    """Build the day's voucher; raise ValidationFailed listing every unmapped key or payment type.

    An empty day gives a voucher with no lines: it is recorded, never posted.
    """
    mapping = vendor.mapping
    source = f"{vendor.id}/{day.business_day.isoformat()}"
    issues: list[Issue] = []
    lines: list[VoucherLine] = []
    dims = {"department": vendor.department, "project": vendor.project}

    sales = day.lines[day.lines["line_type"] != "tip"]
    revenue: dict[tuple[str, str | None], list[int]] = {}  # (account, vat code) -> [gross, pos vat, rate]
    for (group, code, std, rate), frame in sales.groupby(
        ["art_group_id", "art_group_code", "std_vat_code", "vat_rate_bp"], sort=True, dropna=False
    ):
        key = mapping.key_for(str(group), str(code))
        if key is None:
            products = sorted(set(frame["description"].astype(str)) | set(frame["article_id"].astype(str)))
            issues.append(
                Issue(
                    source,
                    "key_mapped",
                    f"accounting key {group!r} (SAF-T code {code or 'none'}) has no account; "
                    f"products under it: {', '.join(p for p in products if p)[:300]}",
                )
            )
            continue
        account = key.account_for(int(rate))
        vat_code = _std_code(str(std), int(rate)) if key.vat else None
        bucket = revenue.setdefault((account, vat_code), [0, 0, int(rate)])
        bucket[0] += int(frame["gross"].sum())
        bucket[1] += int(frame["vat"].sum())

    vat_difference = 0
    for (account, vat_code), (gross, pos_vat, rate) in sorted(
        revenue.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        if vat_code is not None:
            vat_difference += pos_vat - vat_from_gross(gross, rate)
        text = f"Salg {rate / 100:g} % mva" if vat_code else "Salg uten mva"
        lines.append(VoucherLine(account, -gross, vat_code, f"{text} ({account})", **dims))

    tips = int(day.lines.loc[day.lines["line_type"] == "tip", "gross"].sum())
    if tips:
        lines.append(VoucherLine(mapping.tips_account, -tips, None, "Tips til ansatte", **dims))

    for (ptype, pcode), frame in day.payments.groupby(["payment_type", "payment_code"], sort=True):
        account = mapping.payment_account(str(ptype), str(pcode))
        if account is None:
            issues.append(
                Issue(
                    source,
                    "payment_mapped",
                    f"payment type {ptype!r} (SAF-T code {pcode or 'none'}) has no account",
                )
            )
            continue
        lines.append(VoucherLine(account, int(frame["amount"].sum()), None, f"Betaling {ptype}", **dims))

    rounding = int(day.receipts["rounding"].sum())
    if abs(rounding) > mapping.max_rounding_ore:
        issues.append(
            Issue(
                source,
                "rounding_limit",
                f"cash rounding {format_ore(rounding)} exceeds the maximum {format_ore(mapping.max_rounding_ore)}",
            )
        )
    if rounding:
        lines.append(VoucherLine(mapping.rounding_account, -rounding, None, "Øreavrunding", **dims))

    if issues:
        raise ValidationFailed(issues, headline=f"vendor {vendor.id}, business day {day.business_day}: cannot book")

    merged = _merge(lines)
    total = sum(line.amount for line in merged)
    if total != 0:
        raise ValidationFailed(
            Issue(source, "voucher_balances", f"postings sum to {format_ore(total)}, not 0.00; lines: {merged}"),
            headline=f"vendor {vendor.id}, business day {day.business_day}: voucher does not balance",
        )
    return Voucher(
        vendor_id=vendor.id,
        business_day=day.business_day,
        external_ref=external_ref(vendor.id, day.business_day),
        description=f"POS dagsoppgjør {vendor.name} {day.business_day.isoformat()}",
        lines=tuple(merged),
        vat_difference=vat_difference,
    )


def _merge(lines: list[VoucherLine]) -> list[VoucherLine]:
    """Add up lines that land on the same (account, VAT code, dimensions, side) and drop zero lines."""
    merged: dict[tuple, VoucherLine] = {}
    for line in lines:
        key = (line.account, line.vat_code, line.department, line.project, line.amount > 0)
        if key in merged:
            prev = merged[key]
            merged[key] = VoucherLine(
                prev.account,
                prev.amount + line.amount,
                prev.vat_code,
                prev.description,
                prev.department,
                prev.project,
            )
        else:
            merged[key] = line
    return [line for line in merged.values() if line.amount != 0]
