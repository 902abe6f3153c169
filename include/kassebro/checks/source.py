"""Rules on what the source says about itself: whose it is, its currency, and the codes it declares.

A SAF-T file names its company (header and every Z report), its currency, and in its master data
every VAT code (with the standard tax code it stands for), transaction type, line type, payment
type and article group it uses. A file of another company, in another currency, or using a code
it never declared cannot be booked as this vendor's day.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from kassebro.checks.rules import DayContext, NotChecked, Rule, column_is, plural
from kassebro.core import saft_codes

if TYPE_CHECKING:
    from kassebro.core.frames import SalesDay

# Where a used code may be declared: basic types per kind, and the official list of its
# predefined codes (a POS may write a predefined code itself, e.g. paymentType 12001).
# Line types: type 05 (ticket line codes); a tip line may name its raise code (type 10), and
# Skatteetaten's 2016 example writes the transaction type (type 11, "CASHSAL") as line type.
_BASIC_KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "transaction type": ("11", ("11",), "transType"),
    "line type": ("05", ("05", "10", "11"), "lineType"),
    "payment type": ("12", ("12",), "paymentType"),
    "article group": ("04", ("04",), "artGroupID"),
}
_OFFICIAL = {"11": "TRANSACTION_CODES", "05": "", "12": "PAYMENT_CODES", "04": "ARTICLE_GROUP_CODES"}


def normalise_org_number(text: str | None) -> str:
    """'NO 999 999 999 MVA' -> '999999999': the digits an organisation number is compared by."""
    value = re.sub(r"\s", "", text or "").upper()
    value = value.removeprefix("NO").removesuffix("MVA")
    return value


def _company_frame(day: SalesDay, context: DayContext) -> pd.DataFrame | NotChecked | None:
    rows: list[tuple[str, str]] = []
    if day.headers is not None:
        rows += [
            (f"file {source}", ident)
            for source, ident in zip(day.headers["source"], day.headers["company_ident"], strict=True)
        ]
    if day.z_reports is not None:
        rows += [
            (f"Z report {report} on register {register}", ident)
            for register, report, ident in zip(
                day.z_reports["register_id"], day.z_reports["report_id"], day.z_reports["company_ident"], strict=True
            )
        ]
    if day.headers is None and day.z_reports is None:
        return NotChecked("the source names no company (a POS database): nothing to compare")
    if not context.organisation_number:
        return NotChecked("the vendor has no organisation_number: set it in the vendor file")
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["where", "company_ident"])
    wanted = normalise_org_number(context.organisation_number)
    frame["vendor"] = wanted
    frame["matches"] = [int(normalise_org_number(ident) == wanted) for ident in frame["company_ident"]]
    return frame


def _currency_file_frame(day: SalesDay, context: DayContext) -> pd.DataFrame | None:
    if day.headers is None or day.headers.empty:
        return None
    frame = day.headers[["source", "currency"]].copy()
    frame["vendor_currency"] = context.currency
    frame["matches"] = (frame["currency"].fillna("").str.upper() == context.currency.upper()).astype("int64")
    return frame


def _currency_frame(day: SalesDay, context: DayContext) -> pd.DataFrame | None:
    if day.payments.empty:
        return None
    columns = ["register_id", "trans_id", "payment_type", "currency", "exchange_rate", "amount"]
    frame = day.payments[columns].reset_index(drop=True)
    rate = frame["exchange_rate"].fillna("").str.strip()
    has_rate = (rate != "") & ~rate.str.fullmatch(r"[0.]*").fillna(False).astype(bool)
    known = (frame["currency"].fillna("").str.upper() == context.currency.upper()) | has_rate
    frame["known"] = known.astype("int64")
    return frame


def _codes_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """One row per code the day uses: declared in the file's master data or not, and why not."""
    if day.codes is None:
        return None
    declared: dict[str, dict[str, str]] = {}
    for kind, code, standard in zip(day.codes["kind"], day.codes["code"], day.codes["standard"], strict=True):
        declared.setdefault(str(kind), {})[str(code)] = "" if pd.isna(standard) else str(standard)
    rows: list[tuple[str, str, int, str, int, str]] = []
    sales = day.lines[day.lines["line_type"].isin(("sale", "return")).fillna(False).astype(bool)]
    vat_codes = declared.get("vat", {})
    standard_codes = saft_codes.standard_vat_codes()
    for code, uses, example in _uses([(sales, "vat_code"), (day.z_vat, "vat_code")]):
        standard = vat_codes.get(code)
        if standard is None:
            problem = "not declared in vatCodeDetails"
        elif not standard:
            problem = "declared without a standardVatCode"
        elif standard not in standard_codes:
            problem = f"declared as standard code {standard!r}, which is not a standard tax code"
        else:
            problem = ""
        rows.append(("VAT code", code, uses, example, int(not problem), problem))
    sources = {
        "transaction type": [(day.receipts, "trans_type")],
        "line type": [(day.lines, "line_type_id")],
        "payment type": [(day.payments, "payment_type"), (day.z_payments, "payment_type")],
        "article group": [(day.lines, "art_group_id")]
        + ([(day.z_art_groups, "art_group_id")] if day.z_art_groups is not None else []),
    }
    for kind, (own_type, accepted, element) in _BASIC_KINDS.items():
        official_name = _OFFICIAL[own_type]
        official = getattr(saft_codes, official_name) if official_name else {}
        for code, uses, example in _uses(sources[kind]):
            ok = any(code in declared.get(basic_type, {}) for basic_type in accepted) or code in official
            problem = "" if ok else f"{element} {code!r} is not declared as a basic of type {own_type}"
            rows.append((kind, code, uses, example, int(ok), problem))
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["kind", "code", "uses", "example", "declared", "problem"])


def _uses(sources: list[tuple[pd.DataFrame, str]]) -> list[tuple[str, int, str]]:
    """(code, how many rows use it, an example of where) for each non-empty code in the columns.

    The example is the first row using the code, in the first source that uses it. Plain Python
    over the columns' values: a day's lines are hundreds of rows, and a filter, copy and
    value_counts per source cost more than the loop.
    """
    counts: dict[str, list[Any]] = {}
    for frame, column in sources:
        if frame is None or frame.empty or column not in frame.columns:
            continue
        place = "trans_id" if "trans_id" in frame.columns else "report_id"
        for code, where in zip(frame[column].tolist(), frame[place].tolist(), strict=True):
            if code is None or code is pd.NA or code != code or code == "":  # missing (NA, NaN) or empty
                continue
            entry = counts.get(str(code))
            if entry is None:
                counts[str(code)] = [1, str(where)]
            else:
                entry[0] += 1
    return [(code, n, example) for code, (n, example) in sorted(counts.items())]


RULES: tuple[Rule, ...] = (
    Rule(
        name="file_belongs_to_vendor",
        build=_company_frame,
        expectations=column_is("matches", 1),
        describe=lambda r: (
            f"{r['where']} is for organisation number {r['company_ident'] or '(none)'}, not the vendor's {r['vendor']}"
        ),
        passed=lambda f: (
            f"the file header and every Z report name the vendor's organisation number {f['vendor'].iloc[0]}"
        ),
        failed=lambda n, total: f"{n} of {total} company statements name another company than the vendor",
    ),
    Rule(
        name="file_currency",
        build=_currency_file_frame,
        expectations=column_is("matches", 1),
        describe=lambda r: (
            f"{r['source']} is in {r['currency'] or '(no currency)'}, not the vendor's {r['vendor_currency']}"
        ),
        passed=lambda f: f"every file is in {f['vendor_currency'].iloc[0]} ({plural(len(f), 'file')})",
        failed=lambda n, total: f"{n} of {total} files are in another currency than the vendor's",
    ),
    Rule(
        name="currency_known",
        build=_currency_frame,
        expectations=column_is("known", 1),
        money=("amount",),
        describe=lambda r: (
            f"payment {r['payment_type']} of receipt {r['trans_id']} on register {r['register_id']}: "
            f"{r['amount_kr']} in {r['currency'] or '?'} without an exchange rate"
        ),
        passed=lambda f: f"all {plural(len(f), 'payment')} are in the vendor's currency or carry an exchange rate",
        failed=lambda n, total: f"{n} of {total} payments are in a foreign currency without an exchange rate",
    ),
    Rule(
        name="codes_declared",
        build=_codes_frame,
        expectations=column_is("declared", 1),
        describe=lambda r: (
            f"{r['kind']} {r['code']!r} (used {plural(r['uses'], 'time')}, e.g. in {r['example']}): {r['problem']}"
        ),
        passed=lambda f: (
            f"every code used is declared in the file's master data ({plural(len(f), 'code')}: VAT codes with "
            "their standard code, transaction, line and payment types, article groups)"
        ),
        failed=lambda n, total: f"{n} of {total} codes used are not declared in the file's master data",
    ),
)
