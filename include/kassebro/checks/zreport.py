"""Rules that hold the transactions against the day's Z reports: every total a Z report gives.

The Z report is the POS's own statement of the day; the voucher is built from the transactions.
Every figure the report gives is compared with the same figure summed from the transactions:
the grand total (totalCashSaleAmnt), sales and VAT per VAT code, payments per type, sales per
article group, tips and returns. A report that contradicts itself (its per-VAT amounts fit
neither reading of its total) holds the day back as well.

The per-VAT-code sales are after bill discounts, split by the one allocator
(`kassebro.core.allocation.bill_discount_parts`, also used by booking and the demo POS); the
article-group totals are the lines' own, before bill discounts (as the demo POS writes them;
inferred: neither official example holds a bill discount).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from kassebro.checks.rules import (
    DayContext,
    Rule,
    column_is,
    difference_is_zero,
    has_z_report,
    memo,
    plural,
    rate,
    sales_lines,
    totals,
)
from kassebro.core.allocation import bill_discount_parts
from kassebro.core.money import format_ore

if TYPE_CHECKING:
    from kassebro.core.frames import SalesDay

_KEYS = ["register_id", "trans_id"]


def _presence_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame:
    """Per register with transactions: how many transactions and how many Z reports it has."""
    transactions = pd.concat([day.receipts[_KEYS], day.lines[_KEYS], day.payments[_KEYS]], ignore_index=True)
    counts = transactions.drop_duplicates().groupby("register_id", dropna=False).size().rename("transactions")
    reports = pd.concat([day.z_vat[["register_id", "report_id"]], day.z_payments[["register_id", "report_id"]]])
    z_counts = reports.drop_duplicates().groupby("register_id", dropna=False).size().rename("z_reports")
    frame = counts.to_frame().join(z_counts, how="left").reset_index()
    frame["z_reports"] = frame["z_reports"].fillna(0).astype("int64")
    return frame.astype({"transactions": "int64"})


def _amounts_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    if day.z_reports is None or day.z_reports.empty:
        return None
    frame = day.z_reports[["register_id", "report_id", "amounts", "amounts_basis"]].copy()
    frame["decided"] = (frame["amounts"] != "unknown").astype("int64")
    return frame


def _amounts_passed(frame: pd.DataFrame) -> str:
    readings = ", ".join(
        f"register {r} report {z}: {a} ({b})"
        for r, z, a, b in zip(
            frame["register_id"], frame["report_id"], frame["amounts"], frame["amounts_basis"], strict=True
        )
    )
    kinds = sorted(set(frame["amounts"]))
    return f"cashSaleAmnt read as written ({' and '.join(kinds)}) in {plural(len(frame), 'Z report')}: {readings}"


def _amounts_details(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"register_id": r, "report_id": z, "amounts": a, "basis": b}
        for r, z, a, b in zip(
            frame["register_id"], frame["report_id"], frame["amounts"], frame["amounts_basis"], strict=True
        )
    ]


def discount_parts(day: SalesDay) -> pd.DataFrame:
    """`bill_discount_parts` of the day, computed once for the Z rules that all need it."""
    return memo(day, "discount_parts", lambda d: bill_discount_parts(d.lines, d.receipts))


def _sales_after_discounts(day: SalesDay) -> dict[str, tuple[pd.DataFrame, str]]:
    return {
        "lines": (sales_lines(day), "gross"),
        "bill_discount": (discount_parts(day), "discount"),
    }


def _grand_total_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """Per register whose Z reports state totalCashSaleAmnt: it against the sales after discounts."""
    reports = day.z_reports
    if reports is None or reports.empty:
        return None
    stated = reports.groupby("register_id", sort=True)["total_sales"]
    complete = stated.count() == stated.size()  # every report of the register states its total
    registers = complete[complete].index
    if registers.empty:
        return None
    z_totals = reports[reports["register_id"].isin(registers)].astype({"total_sales": "int64"})
    parts = _sales_after_discounts(day)
    frame = totals(["register_id"], {**parts, "z_report": (z_totals, "total_sales")})
    frame = frame[frame["register_id"].isin(registers)]
    frame["difference"] = frame["lines"] - frame["bill_discount"] - frame["z_report"]
    return frame


def _vat_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    if not has_z_report(day):
        return None
    frame = totals(
        ["std_vat_code", "vat_rate_bp"],
        {**_sales_after_discounts(day), "z_report": (day.z_vat, "gross")},
    )
    frame["difference"] = frame["lines"] - frame["bill_discount"] - frame["z_report"]
    return frame


def _vat_amount_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """Per VAT code: the Z report's VAT against the lines' VAT less the VAT of the bill discounts.

    A POS that reports VAT on each code's discounted sum can differ by an øre per discounted
    receipt and line from the lines' own VAT, so that much is allowed (`allowed`).
    """
    if not has_z_report(day):
        return None
    parts = discount_parts(day)
    parts = parts.assign(vat=_vat_of(parts["discount"], parts["vat_rate_bp"]), allowed=parts["lines"] + 1)
    frame = totals(
        ["std_vat_code", "vat_rate_bp"],
        {
            "lines_vat": (sales_lines(day), "vat"),
            "discount_vat": (parts, "vat"),
            "allowed": (parts, "allowed"),
            "z_report": (day.z_vat, "vat"),
        },
    )
    frame["difference"] = frame["lines_vat"] - frame["discount_vat"] - frame["z_report"]
    frame["excess"] = (frame["difference"].abs() - frame["allowed"]).clip(lower=0)
    return frame


def _vat_of(gross: pd.Series, rate_bp: pd.Series) -> pd.Series:
    from kassebro.checks.receipts import vat_from_gross_column

    return vat_from_gross_column(gross, rate_bp)


def _payment_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    if not has_z_report(day):
        return None
    frame = totals(["payment_type"], {"payments": (day.payments, "amount"), "z_report": (day.z_payments, "amount")})
    frame["difference"] = frame["payments"] - frame["z_report"]
    return frame


def _art_group_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    groups = day.z_art_groups
    if groups is None or groups.empty:
        return None
    lines = sales_lines(day)
    lines = lines[lines["art_group_id"].fillna("") != ""]
    frame = totals(["art_group_id"], {"lines": (lines, "gross"), "z_report": (groups, "amount")})
    frame["difference"] = frame["lines"] - frame["z_report"]
    return frame


def _registers_stating(day: SalesDay, column: str) -> pd.DataFrame | None:
    """The day's Z reports that state `column` (tips, returns), summed per register."""
    reports = day.z_reports
    if reports is None or reports.empty:
        return None
    stating = reports[reports[column].notna()]
    if stating.empty:
        return None
    return stating.astype({column: "int64"})


def _tip_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    stating = _registers_stating(day, "tip_amount")
    if stating is None:
        return None
    tips = day.lines[day.lines["line_type"] == "tip"]
    frame = totals(["register_id"], {"tips": (tips, "gross"), "z_report": (stating, "tip_amount")})
    frame = frame[frame["register_id"].isin(set(stating["register_id"]))]
    frame["difference"] = frame["tips"] - frame["z_report"]
    return frame


def _return_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    stating = _registers_stating(day, "return_amount")
    if stating is None:
        return None
    returns = day.lines[day.lines["line_type"] == "return"]
    returns = returns.assign(returned=-returns["gross"])
    frame = totals(["register_id"], {"returns": (returns, "returned"), "z_report": (stating, "return_amount")})
    frame = frame[frame["register_id"].isin(set(stating["register_id"]))]
    frame["difference"] = frame["returns"] - frame["z_report"]
    return frame


def _between(r: dict[str, Any], ours: str, label: str) -> str:
    return f"{label} {r[ours + '_kr']} != Z report {r['z_report_kr']} (difference {r['difference_kr']})"


RULES: tuple[Rule, ...] = (
    Rule(
        name="z_report_present",
        build=_presence_frame,
        expectations=lambda gxe: [gxe.ExpectColumnValuesToBeBetween(column="z_reports", min_value=1)],
        describe=lambda r: (
            f"register {r['register_id']} has {plural(r['transactions'], 'transaction')} but no Z report"
        ),
        passed=lambda f: f"every register with transactions has a Z report ({plural(len(f), 'register')})",
        failed=lambda n, total: (
            f"{n} of {total} registers with transactions have no Z report (Z totals cannot be checked for them)"
        ),
    ),
    Rule(
        name="z_report_amounts",
        build=_amounts_frame,
        expectations=column_is("decided", 1),
        describe=lambda r: f"Z report {r['report_id']} on register {r['register_id']}: {r['amounts_basis']}",
        passed=_amounts_passed,
        failed=lambda n, total: f"{n} of {total} Z reports cannot be read: gross or net cannot be told",
        details=_amounts_details,
    ),
    Rule(
        name="z_grand_total",
        build=_grand_total_frame,
        expectations=difference_is_zero,
        money=("lines", "bill_discount", "z_report", "difference"),
        describe=lambda r: (
            f"register {r['register_id']}: sales {r['lines_kr']}"
            + (f" - bill discounts {r['bill_discount_kr']}" if r["bill_discount"] else "")
            + f" != Z report totalCashSaleAmnt {r['z_report_kr']} (difference {r['difference_kr']})"
        ),
        passed=lambda f: f"sales after discounts equal totalCashSaleAmnt on {plural(len(f), 'register')}",
        failed=lambda n, total: f"{n} of {total} registers differ from their Z report's grand total",
    ),
    Rule(
        name="z_vat_totals",
        build=_vat_frame,
        expectations=difference_is_zero,
        money=("lines", "bill_discount", "z_report", "difference"),
        describe=lambda r: (
            f"VAT code {r['std_vat_code']} ({rate(r['vat_rate_bp'])}): sales lines {r['lines_kr']}"
            + (f" - bill discounts {r['bill_discount_kr']}" if r["bill_discount"] else "")
            + f" != Z report {r['z_report_kr']} (difference {r['difference_kr']})"
        ),
        passed=lambda f: f"sales per VAT code after bill discounts equal the Z report ({plural(len(f), 'VAT code')})",
        failed=lambda n, total: f"{n} of {total} VAT codes differ from the Z report",
    ),
    Rule(
        name="z_vat_amounts",
        build=_vat_amount_frame,
        expectations=column_is("excess", 0),
        money=("lines_vat", "discount_vat", "z_report", "difference"),
        describe=lambda r: (
            f"VAT code {r['std_vat_code']} ({rate(r['vat_rate_bp'])}): VAT of the lines {r['lines_vat_kr']}"
            + (f" - of bill discounts {r['discount_vat_kr']}" if r["discount_vat"] else "")
            + f" != Z report VAT {r['z_report_kr']} (difference {r['difference_kr']}, "
            f"{format_ore(r['allowed'])} allowed for discount rounding)"
        ),
        passed=lambda f: f"VAT per VAT code equals the Z report ({plural(len(f), 'VAT code')})",
        failed=lambda n, total: f"{n} of {total} VAT codes carry another VAT than the Z report",
    ),
    Rule(
        name="z_payment_totals",
        build=_payment_frame,
        expectations=difference_is_zero,
        money=("payments", "z_report", "difference"),
        describe=lambda r: f"payment type {r['payment_type']}: " + _between(r, "payments", "payments"),
        passed=lambda f: f"payments per type equal the Z report ({plural(len(f), 'payment type')})",
        failed=lambda n, total: f"{n} of {total} payment types differ from the Z report",
    ),
    Rule(
        name="z_art_group_totals",
        build=_art_group_frame,
        expectations=difference_is_zero,
        money=("lines", "z_report", "difference"),
        describe=lambda r: f"article group {r['art_group_id']}: " + _between(r, "lines", "sales lines"),
        passed=lambda f: f"sales per article group equal the Z report ({plural(len(f), 'article group')})",
        failed=lambda n, total: f"{n} of {total} article groups differ from the Z report",
    ),
    Rule(
        name="z_tip_total",
        build=_tip_frame,
        expectations=difference_is_zero,
        money=("tips", "z_report", "difference"),
        describe=lambda r: f"register {r['register_id']}: " + _between(r, "tips", "tips in the receipts"),
        passed=lambda f: f"tips equal the Z report's reportTip on {plural(len(f), 'register')}",
        failed=lambda n, total: f"{n} of {total} registers differ from their Z report's tips",
    ),
    Rule(
        name="z_return_total",
        build=_return_frame,
        expectations=difference_is_zero,
        money=("returns", "z_report", "difference"),
        describe=lambda r: f"register {r['register_id']}: " + _between(r, "returns", "return lines"),
        passed=lambda f: f"returns equal the Z report's reportReturnAmnt on {plural(len(f), 'register')}",
        failed=lambda n, total: f"{n} of {total} registers differ from their Z report's returns",
    ),
)
