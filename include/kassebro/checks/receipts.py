"""Rules on the transactions themselves: each receipt balances and says its own total, its lines'
VAT fits their rate, its number is in an unbroken series, and it lies inside the business day."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from kassebro.checks.rules import (
    DayContext,
    Rule,
    column_is,
    difference_is_zero,
    memo,
    plural,
    rate,
    sales_lines,
    totals,
)
from kassebro.core.money import format_ore
from kassebro.core.saft_codes import CASH_DIFFERENCE_CODE, CREDIT_SALE_CODES

if TYPE_CHECKING:
    from kassebro.core.frames import SalesDay


SALES_WINDOW_GRACE_HOURS = 6
"""How far (hours) a receipt may lie outside its business day's window [day start, next day start)
before sales_inside_business_day fails it: a Z report taken after midnight legitimately claims
late sales, a receipt a day off means a wrong clock or a wrong day."""

_KEYS = ["register_id", "trans_id"]


def _is_difference(receipts: pd.DataFrame) -> pd.Series:
    return (receipts["trans_code"] == CASH_DIFFERENCE_CODE).fillna(False).astype(bool)


def _receipt_totals(day: SalesDay) -> pd.DataFrame:
    """Per receipt: its lines (tips included: the customer paid for them), bill discount, rounding,
    cash difference (a cash count's amount), payments and stated amount; shared by two rules."""
    receipts = day.receipts
    differences = receipts.assign(cash_difference=receipts["amount"].where(_is_difference(receipts), 0))
    return totals(
        _KEYS,
        {
            "lines": (day.lines, "gross"),
            "bill_discount": (receipts, "bill_discount"),
            "rounding": (receipts, "rounding"),
            "cash_difference": (differences, "cash_difference"),
            "payments": (day.payments, "amount"),
            "amount": (receipts, "amount"),
        },
    )


def _receipt_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame:
    """Per receipt: lines - bill discount + rounding + cash difference - payments - on account.

    A cash count (11008) has no lines: its amount is the difference its payments hold. A credit
    sale (11002, 11015, 11017) to a named customer may leave part unpaid: that part is owed
    (booked to the receivable, as booking does), so it balances the receipt.
    """
    receipts = day.receipts
    frame = memo(day, "receipt_totals", _receipt_totals).drop(columns="amount")
    open_part = (
        frame["lines"] - frame["bill_discount"] + frame["rounding"] + frame["cash_difference"] - frame["payments"]
    )
    heads = receipts.drop_duplicates(_KEYS).set_index(_KEYS)
    keys = pd.MultiIndex.from_frame(frame[_KEYS])
    credit = heads["trans_code"].isin(CREDIT_SALE_CODES).fillna(False) & (heads["customer_id"].fillna("") != "")
    on_credit = credit.reindex(keys, fill_value=False).to_numpy()
    frame["on_account"] = open_part.where(on_credit, 0).astype("int64")
    frame["difference"] = open_part - frame["on_account"]
    return frame


def _amount_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """Per receipt with lines: transAmntIn against its lines after the bill discount.

    Both ways a POS writes it are read as written: before cash rounding (Skatteetaten's 2021
    example: 295.40 with 295.00 paid) or after it (the amount paid).
    """
    receipts = day.receipts[~_is_difference(day.receipts)]
    if receipts.empty:
        return None
    frame = memo(day, "receipt_totals", _receipt_totals)[[*_KEYS, "amount", "lines", "bill_discount", "rounding"]]
    frame = frame.merge(receipts[[*_KEYS, "nr"]].drop_duplicates(_KEYS), on=_KEYS, how="inner")
    after_discount = frame["lines"] - frame["bill_discount"]
    off = frame["amount"] - after_discount
    frame["difference"] = off.where(off != frame["rounding"], 0)
    return frame


def _line_vat_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """One row per sale/return line: its VAT and the VAT its gross holds at its rate."""
    lines = sales_lines(day)
    if lines.empty:
        return None
    columns = ["register_id", "trans_id", "line_id", "std_vat_code", "vat_rate_bp", "gross", "vat"]
    frame = lines[columns].reset_index(drop=True)
    frame["expected_vat"] = vat_from_gross_column(frame["gross"], frame["vat_rate_bp"])
    frame["difference"] = frame["vat"] - frame["expected_vat"]
    return frame


def vat_from_gross_column(gross: pd.Series, rate_bp: pd.Series) -> pd.Series:
    """`money.vat_from_gross` for whole columns of int øre and basis points (exact integer maths:
    half up, away from zero for negative amounts, as Decimal's ROUND_HALF_UP)."""
    magnitude = gross.astype("int64").abs() * rate_bp.astype("int64")
    divisor = rate_bp.astype("int64") + 10000
    vat = (2 * magnitude + divisor) // (2 * divisor)
    return vat.where(gross >= 0, -vat).astype("int64")


def _numbering_frame(day: SalesDay, _context: DayContext) -> pd.DataFrame | None:
    """Per register: the day's transaction numbers (receipts, voids, training) and what the number
    series around them lacks or repeats.

    With the source's series (`day.numbers`, SAF-T) a number missing between the previous day's
    last and this day's first, or used twice anywhere in the file, counts; without it (the POS
    database) the day's own numbers are all there is.
    """
    numbers = day.receipts[["register_id", "nr"]]
    if day.skipped is not None and len(day.skipped):
        numbers = pd.concat([numbers, day.skipped[["register_id", "nr"]]], ignore_index=True)
    if numbers.empty:
        return None
    rows = []
    for register_id, group in numbers.groupby("register_id", sort=True, dropna=False):
        own = sorted(int(nr) for nr in group["nr"])
        present = set(own)
        series = day.numbers[day.numbers["register_id"] == register_id] if day.numbers is not None else None
        if series is not None and len(series):
            runs = series[series["kind"] == "run"].sort_values("first_nr")
            spans = list(zip(runs["first_nr"].astype(int), runs["last_nr"].astype(int), strict=True))
            dups = series[series["kind"] == "duplicate"]
            twice = {int(nr): int(count) for nr, count in zip(dups["first_nr"], dups["count"], strict=True)}
        else:
            spans = _runs(sorted(present))
            twice = {nr: count for nr, count in Counter(own).items() if count > 1}
        missing = [
            (end + 1, start - 1)
            for (_s, end), (start, _e) in zip(spans, spans[1:], strict=False)
            if start > end + 1 and (end in present or start in present)
        ]
        duplicated = sorted(nr for nr, count in twice.items() if count > 1 and nr in present)
        rows.append(
            (
                register_id,
                own[0],
                own[-1],
                len(present),
                sum(b - a + 1 for a, b in missing),
                _ranges(missing),
                len(duplicated),
                ", ".join(str(nr) for nr in duplicated[:10]) + (" ..." if len(duplicated) > 10 else ""),
            )
        )
    columns = ["register_id", "first_nr", "last_nr", "numbers", "missing", "missing_nrs", "duplicated", "duplicate_nrs"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({c: "int64" for c in ("first_nr", "last_nr", "numbers", "missing", "duplicated")})


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for nr in numbers:
        if runs and nr <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(runs[-1][1], nr))
        else:
            runs.append((nr, nr))
    return runs


def _ranges(missing: list[tuple[int, int]]) -> str:
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in missing[:10])
    return text + (" ..." if len(missing) > 10 else "")


def _describe_numbering(r: dict[str, Any]) -> str:
    parts = []
    if r["missing"]:
        parts.append(f"{plural(r['missing'], 'number')} missing (nr {r['missing_nrs']}): receipts are missing")
    if r["duplicated"]:
        parts.append(f"{plural(r['duplicated'], 'number')} used twice (nr {r['duplicate_nrs']})")
    return f"register {r['register_id']}, nr {r['first_nr']}-{r['last_nr']}: " + "; ".join(parts)


def _window_frame(day: SalesDay, context: DayContext) -> pd.DataFrame | None:
    """Per receipt: how many minutes its time stamp lies outside the business day's window."""
    if day.receipts.empty:
        return None
    zone = ZoneInfo(context.tz)
    start_wall = dt.datetime.combine(day.business_day, dt.time()) + dt.timedelta(hours=context.day_start_hour)
    start = pd.Timestamp(start_wall.replace(tzinfo=zone)).tz_convert("UTC")
    end = pd.Timestamp((start_wall + dt.timedelta(days=1)).replace(tzinfo=zone)).tz_convert("UTC")
    frame = day.receipts[["register_id", "trans_id", "nr", "timestamp"]].reset_index(drop=True)
    stamps = frame["timestamp"]
    before = (start - stamps).dt.total_seconds().clip(lower=0)
    after = (stamps - end).dt.total_seconds().clip(lower=0)
    frame["minutes_outside"] = ((before + after) // 60).astype("int64")
    frame.attrs["window"] = (
        zone,
        f"{start.tz_convert(zone):%Y-%m-%d %H:%M} to {end.tz_convert(zone):%Y-%m-%d %H:%M} {context.tz}",
    )
    return frame


def _outside_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The offending receipts with their local time and the window, for the message (computed for
    these few rows only: a big day has tens of thousands of receipts inside the window)."""
    zone, window = rows.attrs["window"]
    rows = rows.assign(local_time=rows["timestamp"].dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S"), window=window)
    return rows.drop(columns=["timestamp"])


def _collapse_duplicates(rows: pd.DataFrame) -> pd.DataFrame:
    grouped = rows.groupby(["register_id", "trans_id"], dropna=False, sort=True)
    return grouped.agg(
        count=("nr", "size"),
        nr=("nr", lambda s: ", ".join(str(v) for v in s)),
        amounts=("amount", lambda s: ", ".join(format_ore(int(v)) for v in s)),
    ).reset_index()


RULES: tuple[Rule, ...] = (
    Rule(
        name="receipt_balances",
        build=_receipt_frame,
        expectations=difference_is_zero,
        money=("lines", "bill_discount", "rounding", "cash_difference", "payments", "on_account", "difference"),
        describe=lambda r: (
            f"receipt {r['trans_id']} on register {r['register_id']} does not balance: "
            f"lines {r['lines_kr']} - bill discount {r['bill_discount_kr']} + rounding {r['rounding_kr']}"
            + (f" + cash difference {r['cash_difference_kr']}" if r["cash_difference"] else "")
            + f" != payments {r['payments_kr']} (difference {r['difference_kr']})"
        ),
        passed=lambda f: (
            f"all {plural(len(f), 'receipt')} balance (lines - bill discount + rounding = payments, "
            "a credit sale's unpaid part on the customer's account)"
        ),
        failed=lambda n, total: f"{n} of {total} receipts do not balance",
    ),
    Rule(
        name="receipt_amount",
        build=_amount_frame,
        expectations=difference_is_zero,
        money=("amount", "lines", "bill_discount", "rounding", "difference"),
        describe=lambda r: (
            f"receipt {r['trans_id']} (nr {r['nr']}) on register {r['register_id']}: transAmntIn {r['amount_kr']} "
            f"but its lines {r['lines_kr']}"
            + (f" - bill discount {r['bill_discount_kr']}" if r["bill_discount"] else "")
            + f" make {format_ore(r['lines'] - r['bill_discount'])} (difference {r['difference_kr']})"
        ),
        passed=lambda f: (
            f"every receipt's transAmntIn equals its lines after discounts ({plural(len(f), 'receipt')}; "
            "before or after cash rounding)"
        ),
        failed=lambda n, total: f"{n} of {total} receipts state another total than their lines",
    ),
    Rule(
        name="unique_transactions",
        build=lambda day, _c: day.receipts[["register_id", "trans_id", "nr", "amount"]].reset_index(drop=True),
        expectations=lambda gxe: [gxe.ExpectCompoundColumnsToBeUnique(column_list=["register_id", "trans_id"])],
        collapse=_collapse_duplicates,
        describe=lambda r: (
            f"transaction {r['trans_id']} on register {r['register_id']} appears {r['count']} times "
            f"(nr {r['nr']}; amounts {r['amounts']})"
        ),
        passed=lambda f: f"all {plural(len(f), 'transaction')} have a unique (register, trans_id)",
        failed=lambda n, total: f"{plural(n, 'transaction id')} occur more than once among {total} transactions",
    ),
    Rule(
        name="receipt_numbering",
        build=_numbering_frame,
        expectations=lambda gxe: [
            *column_is("missing", 0)(gxe),
            *column_is("duplicated", 0)(gxe),
        ],
        describe=_describe_numbering,
        passed=lambda f: (
            f"transaction numbers are unbroken and unique on {plural(len(f), 'register')} "
            "(void and training counted, the day's edges included)"
        ),
        failed=lambda n, total: f"{n} of {total} registers have gaps or repeats in their transaction numbers",
    ),
    Rule(
        name="line_vat_matches_rate",
        build=_line_vat_frame,
        expectations=lambda gxe: [
            gxe.ExpectColumnValuesToNotBeNull(column="difference"),
            gxe.ExpectColumnValuesToBeBetween(column="difference", min_value=-1, max_value=1),
        ],
        money=("gross", "vat", "expected_vat", "difference"),
        describe=lambda r: (
            f"line {r['line_id']} of receipt {r['trans_id']} on register {r['register_id']}: VAT {r['vat_kr']} "
            f"but gross {r['gross_kr']} at {rate(r['vat_rate_bp'])} holds {r['expected_vat_kr']} "
            f"(difference {r['difference_kr']})"
        ),
        passed=lambda f: f"the VAT of all {plural(len(f), 'sale/return line')} matches its rate within 1 øre",
        failed=lambda n, total: f"{n} of {total} lines have a VAT that does not match their rate",
    ),
    Rule(
        name="sales_inside_business_day",
        build=_window_frame,
        collapse=_outside_rows,
        expectations=lambda gxe: [
            gxe.ExpectColumnValuesToNotBeNull(column="minutes_outside"),
            gxe.ExpectColumnValuesToBeBetween(
                column="minutes_outside", min_value=0, max_value=SALES_WINDOW_GRACE_HOURS * 60
            ),
        ],
        describe=lambda r: (
            f"receipt {r['trans_id']} (nr {r['nr']}) on register {r['register_id']} at {r['local_time']} lies "
            f"{r['minutes_outside'] // 60} h {r['minutes_outside'] % 60:02d} min outside the business day "
            f"({r['window']})"
        ),
        passed=lambda f: (
            f"all {plural(len(f), 'receipt')} lie inside the business day "
            f"(within {SALES_WINDOW_GRACE_HOURS} h of its window)"
        ),
        failed=lambda n, total: (
            f"{n} of {total} receipts lie more than {SALES_WINDOW_GRACE_HOURS} h outside the business day"
        ),
    ),
)
