"""Validate one vendor's business day before anything is booked (domain §6).

Each rule turns the day into a small derived pandas frame (one row per receipt, VAT code, payment
type ...) and Great Expectations checks that frame; the rows GX flags map straight back to the
receipts or codes a person has to look at. A failed day is not posted: `raise_if_failed` raises
`ValidationFailed`, which names vendor, day, rule and the offending rows.

GX takes seconds to import, so it is imported on first use only, and its context and suites are
built once per process. To add a rule, write a `build` function returning the derived frame and
append a `Rule` to `RULES`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import html
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from kassebro.errors import Issue, ValidationFailed
from kassebro.money import format_ore

if TYPE_CHECKING:
    from kassebro.frames import SalesDay

log = logging.getLogger(__name__)

CASH_DIFFERENCE = "11008"
"""Transaction code (list 11) of a cash difference at the count: no lines, its amount is paid."""

SALES_WINDOW_GRACE_HOURS = 6
"""How far (hours) a receipt may lie outside its business day's window [day start, next day start)
before sales_inside_business_day fails it: a Z report taken after midnight legitimately claims
late sales, a receipt a day off means a wrong clock or a wrong day."""

# (tz, day_start_hour) of the validate_day call running: the window rule reads it.
_window: contextvars.ContextVar[tuple[str, int]] = contextvars.ContextVar("window", default=("Europe/Oslo", 0))

MAX_OFFENDING = 20
"""Offending rows kept per check: enough to act on, small enough for a log line and XCom."""

VAT_LINE_TYPES = ("sale", "return")
"""Line types the Z report's VAT block covers; tips are paid for but are not revenue."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rule on one day.

    Attributes:
      rule: the rule's name, e.g. "receipt_balances".
      success: True only when GX ran every expectation of the rule and all passed.
      message: for a person: what was checked, or what is wrong, naming the offending data.
      offending: up to MAX_OFFENDING offending rows as JSON-able dicts (money in øre plus a
        "<column>_kr" kroner string).
      offending_count: how many rows offended in all (may exceed len(offending)).
    """

    rule: str
    success: bool
    message: str
    offending: list[dict[str, Any]] = field(default_factory=list)
    offending_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "success": self.success,
            "message": self.message,
            "offending_count": self.offending_count,
            "offending": self.offending,
        }


@dataclass(frozen=True)
class ValidationReport:
    """All checks of one vendor's business day; `success` is True only if every check passed."""

    vendor_id: str
    business_day: dt.date
    success: bool
    checks: tuple[CheckResult, ...]
    source: str = ""
    report_paths: tuple[Path, ...] = ()
    """validation.json and validation.html when validate_day was given a report_dir."""

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.success)

    @property
    def headline(self) -> str:
        day = self.business_day.isoformat()
        if self.success:
            return f"vendor {self.vendor_id}, business day {day}: all {len(self.checks)} validation rules passed"
        return (
            f"vendor {self.vendor_id}, business day {day}: "
            f"{len(self.failed)} of {len(self.checks)} validation rules failed"
        )

    def issues(self) -> list[Issue]:
        """One Issue per failed rule, so the error lists every problem of the day at once."""
        source = f"{self.vendor_id}/{self.business_day.isoformat()}"
        return [Issue(source, check.rule, check.message) for check in self.failed]

    def raise_if_failed(self) -> None:
        """Raise ValidationFailed (bad data: the task must fail without retrying) if any rule failed."""
        if not self.success:
            raise ValidationFailed(self.issues(), headline=self.headline)

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "business_day": self.business_day.isoformat(),
            "success": self.success,
            "headline": self.headline,
            "source": self.source,
            "checks": [check.to_json() for check in self.checks],
            "report_paths": [str(path) for path in self.report_paths],
        }


# --------------------------------------------------------------------------------------------
# Bill discounts


def split_pro_rata(amount: int, weights: Mapping[Any, int]) -> dict[Any, int]:
    """Split `amount` øre over the keys of `weights` in proportion, exactly (largest remainder).

    Each key gets the floor of its exact share; the øre left over go one each to the keys with
    the largest remainders, ties to the earlier key in `weights`' order (callers pass the keys
    sorted). Works for negative amounts and weights; a zero weight sum puts everything on the
    key with the largest absolute weight. The parts always sum to `amount`.
    """
    keys = list(weights)
    if not keys:
        return {}
    total = sum(weights.values())
    if total == 0:
        top = max(keys, key=lambda k: abs(weights[k]))
        return {k: amount if k == top else 0 for k in keys}
    sign = 1 if total > 0 else -1
    parts: dict[Any, int] = {}
    remainders: list[tuple[int, int, Any]] = []
    for index, key in enumerate(keys):
        share, remainder = divmod(amount * weights[key] * sign, total * sign)
        parts[key] = share
        remainders.append((-remainder, index, key))
    for _r, _i, key in sorted(remainders)[: amount - sum(parts.values())]:
        parts[key] += 1
    return parts


def bill_discount_by_vat_code(day: SalesDay) -> pd.DataFrame:
    """Each receipt's bill discount spread over its VAT codes: columns register_id, trans_id,
    vat_code, std_vat_code, vat_rate_bp, discount (øre, positive = given).

    Pro rata by the receipt's sale/return gross per own VAT code (`vat_code`, sorted), with
    `split_pro_rata`: the split a POS that reports its Z sales per VAT code after discounts has
    to make (the demo POS makes exactly this one). Tips carry no VAT and take no discount.
    """
    columns = ["register_id", "trans_id", "vat_code", "std_vat_code", "vat_rate_bp", "discount"]
    receipts = day.receipts[day.receipts["bill_discount"] != 0]
    if receipts.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c in ("vat_rate_bp", "discount") else "string") for c in columns}
        )
    keys = ["register_id", "trans_id"]
    wanted = receipts[keys].merge(day.lines, on=keys)
    wanted = wanted[wanted["line_type"].isin(VAT_LINE_TYPES).fillna(False).astype(bool)]
    codes = wanted.groupby([*keys, "vat_code", "std_vat_code", "vat_rate_bp"], sort=True)["gross"].sum()
    rows: list[tuple] = []
    for (register_id, trans_id), discount in zip(
        zip(receipts["register_id"], receipts["trans_id"], strict=True), receipts["bill_discount"], strict=True
    ):
        try:
            part = codes.loc[(register_id, trans_id)]
        except KeyError:  # a bill discount without sales lines: nothing to spread it over
            rows.append((register_id, trans_id, "", "", 0, int(discount)))
            continue
        weights = {key: int(gross) for key, gross in part.items()}
        for (vat_code, std_code, rate), share in split_pro_rata(int(discount), weights).items():
            rows.append((register_id, trans_id, vat_code, std_code, int(rate), share))
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"vat_rate_bp": "int64", "discount": "int64"})


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """A named rule: a derived frame built with pandas plus the GX expectations run over it.

    Attributes:
      name: the rule name shown to people and used as Issue.rule.
      build: the day -> derived frame (one row per checked item, the report's columns), or None
        when the rule does not apply to the day (e.g. Z totals on a day without a Z report).
      expectations: given the `great_expectations.expectations` module, the expectations over the
        derived frame; a row is offending when any of them flags it.
      describe: one offending row (JSON-able dict) -> a sentence naming it.
      passed: the derived frame -> the message when every expectation passed.
      failed: (offending count, frame row count) -> the headline when some rows offend.
      money: øre columns of the derived frame, also reported as kroner strings.
      collapse: optional offending rows -> report rows (e.g. one row per duplicated key).
    """

    name: str
    build: Callable[[SalesDay], pd.DataFrame | None]
    expectations: Callable[[Any], list[Any]]
    describe: Callable[[dict[str, Any]], str]
    passed: Callable[[pd.DataFrame], str]
    failed: Callable[[int, int], str]
    money: tuple[str, ...] = ()
    collapse: Callable[[pd.DataFrame], pd.DataFrame] | None = None


def _totals(keys: list[str], parts: Mapping[str, tuple[pd.DataFrame, str]]) -> pd.DataFrame:
    """Sum each part's øre column per key into its own column, 0 where a part has no row.

    Stacks the parts and groups once, so the sums stay int64 (an outer merge would pass through
    float NaN).
    """
    names = list(parts)
    pieces = []
    for name, (frame, column) in parts.items():
        piece = frame[keys].copy()
        for other in names:
            piece[other] = frame[column].astype("int64") if other == name else pd.Series(0, index=frame.index)
        pieces.append(piece.astype(dict.fromkeys(names, "int64")))
    stacked = pd.concat(pieces, ignore_index=True)
    totals = stacked.groupby(keys, dropna=False, sort=True)[names].sum().reset_index()
    return totals.astype(dict.fromkeys(names, "int64"))


def _receipt_frame(day: SalesDay) -> pd.DataFrame:
    keys = ["register_id", "trans_id"]
    receipts = day.receipts
    # A cash difference (code 11008) has no lines: its amount is the difference its payments hold.
    is_difference = (receipts["trans_code"] == CASH_DIFFERENCE).fillna(False).astype(bool)
    differences = receipts.assign(cash_difference=receipts["amount"].where(is_difference, 0))
    frame = _totals(
        keys,
        {
            "lines": (day.lines, "gross"),  # tips included: the customer paid for them
            "bill_discount": (receipts, "bill_discount"),
            "rounding": (receipts, "rounding"),
            "cash_difference": (differences, "cash_difference"),
            "payments": (day.payments, "amount"),
        },
    )
    frame["difference"] = (
        frame["lines"] - frame["bill_discount"] + frame["rounding"] + frame["cash_difference"] - frame["payments"]
    )
    return frame


def _has_z_report(day: SalesDay) -> bool:
    return len(day.z_vat) > 0 or len(day.z_payments) > 0


def _z_vat_frame(day: SalesDay) -> pd.DataFrame | None:
    if not _has_z_report(day):
        return None
    lines = day.lines[day.lines["line_type"].isin(VAT_LINE_TYPES).fillna(False).astype(bool)]
    frame = _totals(
        ["std_vat_code", "vat_rate_bp"],
        {
            "lines": (lines, "gross"),
            "bill_discount": (bill_discount_by_vat_code(day), "discount"),
            "z_report": (day.z_vat, "gross"),
        },
    )
    frame["difference"] = frame["lines"] - frame["bill_discount"] - frame["z_report"]
    return frame


def _line_vat_frame(day: SalesDay) -> pd.DataFrame | None:
    """One row per sale/return line: its VAT and the VAT its gross holds at its rate."""
    lines = day.lines[day.lines["line_type"].isin(VAT_LINE_TYPES).fillna(False).astype(bool)]
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


def _gap_frame(day: SalesDay) -> pd.DataFrame | None:
    """Per register: its transaction numbers of the day (receipts and skipped void/training ones)
    and how many numbers between the first and the last are missing."""
    skipped = day.skipped
    numbers = day.receipts[["register_id", "nr"]]
    if skipped is not None and len(skipped):
        numbers = pd.concat([numbers, skipped[["register_id", "nr"]]], ignore_index=True)
    if numbers.empty:
        return None
    rows = []
    for register_id, group in numbers.groupby("register_id", sort=True, dropna=False):
        present = sorted({int(nr) for nr in group["nr"]})
        first, last = present[0], present[-1]
        missing = _missing_numbers(present)
        rows.append(
            (
                register_id,
                first,
                last,
                len(present),
                sum(b - a + 1 for a, b in missing),
                ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in missing[:10])
                + (" ..." if len(missing) > 10 else ""),
            )
        )
    frame = pd.DataFrame(rows, columns=["register_id", "first_nr", "last_nr", "numbers", "missing", "missing_nrs"])
    return frame.astype({"first_nr": "int64", "last_nr": "int64", "numbers": "int64", "missing": "int64"})


def _missing_numbers(present: list[int]) -> list[tuple[int, int]]:
    """Ranges (first, last) of the numbers missing between consecutive sorted `present` numbers."""
    return [(a + 1, b - 1) for a, b in zip(present, present[1:], strict=False) if b - a > 1]


def _window_frame(day: SalesDay) -> pd.DataFrame | None:
    """Per receipt: how many minutes its time stamp lies outside the business day's window."""
    if day.receipts.empty:
        return None
    tz, day_start_hour = _window.get()
    zone = ZoneInfo(tz)
    start_wall = dt.datetime.combine(day.business_day, dt.time()) + dt.timedelta(hours=day_start_hour)
    start = pd.Timestamp(start_wall.replace(tzinfo=zone)).tz_convert("UTC")
    end = pd.Timestamp((start_wall + dt.timedelta(days=1)).replace(tzinfo=zone)).tz_convert("UTC")
    frame = day.receipts[["register_id", "trans_id", "nr", "timestamp"]].reset_index(drop=True)
    stamps = frame["timestamp"]
    before = (start - stamps).dt.total_seconds().clip(lower=0)
    after = (stamps - end).dt.total_seconds().clip(lower=0)
    frame["local_time"] = stamps.dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["window"] = f"{start.tz_convert(zone):%Y-%m-%d %H:%M} to {end.tz_convert(zone):%Y-%m-%d %H:%M} {tz}"
    frame["minutes_outside"] = ((before + after) // 60).astype("int64")
    return frame.drop(columns=["timestamp"])


def _currency_frame(day: SalesDay) -> pd.DataFrame | None:
    if day.payments.empty:
        return None
    columns = ["register_id", "trans_id", "payment_type", "currency", "exchange_rate", "amount"]
    frame = day.payments[columns].reset_index(drop=True)
    rate = frame["exchange_rate"].fillna("").str.strip()
    has_rate = (rate != "") & ~rate.str.fullmatch(r"[0.]*").fillna(False).astype(bool)
    known = (frame["currency"].fillna("") == "NOK") | has_rate
    frame["known"] = known.astype("int64")
    return frame


def _z_payment_frame(day: SalesDay) -> pd.DataFrame | None:
    if not _has_z_report(day):
        return None
    frame = _totals(["payment_type"], {"payments": (day.payments, "amount"), "z_report": (day.z_payments, "amount")})
    frame["difference"] = frame["payments"] - frame["z_report"]
    return frame


def _transaction_frame(day: SalesDay) -> pd.DataFrame:
    return day.receipts[["register_id", "trans_id", "nr", "amount"]].reset_index(drop=True)


def _z_presence_frame(day: SalesDay) -> pd.DataFrame:
    """Per register with transactions: how many transactions and how many Z reports it has."""
    keys = ["register_id", "trans_id"]
    transactions = pd.concat([day.receipts[keys], day.lines[keys], day.payments[keys]], ignore_index=True)
    counts = transactions.drop_duplicates().groupby("register_id", dropna=False).size().rename("transactions")
    reports = pd.concat([day.z_vat[["register_id", "report_id"]], day.z_payments[["register_id", "report_id"]]])
    z_counts = reports.drop_duplicates().groupby("register_id", dropna=False).size().rename("z_reports")
    frame = counts.to_frame().join(z_counts, how="left").reset_index()
    frame["z_reports"] = frame["z_reports"].fillna(0).astype("int64")
    return frame.astype({"transactions": "int64"})


def _collapse_duplicates(rows: pd.DataFrame) -> pd.DataFrame:
    grouped = rows.groupby(["register_id", "trans_id"], dropna=False, sort=True)
    return grouped.agg(
        count=("nr", "size"),
        nr=("nr", lambda s: ", ".join(str(v) for v in s)),
        amounts=("amount", lambda s: ", ".join(format_ore(int(v)) for v in s)),
    ).reset_index()


def _difference_is_zero(gxe: Any) -> list[Any]:
    # NotNull as well: Between skips missing values, and a missing difference must not pass.
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="difference"),
        gxe.ExpectColumnValuesToBeBetween(column="difference", min_value=0, max_value=0),
    ]


def _rate(rate_bp: Any) -> str:
    if rate_bp is None:
        return "? %"
    text = format_ore(int(rate_bp))
    return f"{text.removesuffix('.00')} %"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


RULES: tuple[Rule, ...] = (
    Rule(
        name="receipt_balances",
        build=_receipt_frame,
        expectations=_difference_is_zero,
        money=("lines", "bill_discount", "rounding", "cash_difference", "payments", "difference"),
        describe=lambda r: (
            f"receipt {r['trans_id']} on register {r['register_id']} does not balance: "
            f"lines {r['lines_kr']} - bill discount {r['bill_discount_kr']} + rounding {r['rounding_kr']}"
            + (f" + cash difference {r['cash_difference_kr']}" if r["cash_difference"] else "")
            + f" != payments {r['payments_kr']} (difference {r['difference_kr']})"
        ),
        passed=lambda f: f"all {_plural(len(f), 'receipt')} balance (lines - bill discount + rounding = payments)",
        failed=lambda n, total: f"{n} of {total} receipts do not balance",
    ),
    Rule(
        name="unique_transactions",
        build=_transaction_frame,
        expectations=lambda gxe: [gxe.ExpectCompoundColumnsToBeUnique(column_list=["register_id", "trans_id"])],
        collapse=_collapse_duplicates,
        describe=lambda r: (
            f"transaction {r['trans_id']} on register {r['register_id']} appears {r['count']} times "
            f"(nr {r['nr']}; amounts {r['amounts']})"
        ),
        passed=lambda f: f"all {_plural(len(f), 'transaction')} have a unique (register, trans_id)",
        failed=lambda n, total: f"{_plural(n, 'transaction id')} occur more than once among {total} transactions",
    ),
    Rule(
        name="no_gaps_in_numbering",
        build=_gap_frame,
        expectations=lambda gxe: [
            gxe.ExpectColumnValuesToNotBeNull(column="missing"),
            gxe.ExpectColumnValuesToBeBetween(column="missing", min_value=0, max_value=0),
        ],
        describe=lambda r: (
            f"register {r['register_id']}: {_plural(r['missing'], 'transaction number')} missing between "
            f"{r['first_nr']} and {r['last_nr']} (nr {r['missing_nrs']}): receipts are missing from the source"
        ),
        passed=lambda f: (
            f"transaction numbers are gap-free on {_plural(len(f), 'register')} (void and training counted)"
        ),
        failed=lambda n, total: f"{n} of {total} registers have gaps in their transaction numbers",
    ),
    Rule(
        name="z_report_present",
        build=_z_presence_frame,
        expectations=lambda gxe: [gxe.ExpectColumnValuesToBeBetween(column="z_reports", min_value=1)],
        describe=lambda r: (
            f"register {r['register_id']} has {_plural(r['transactions'], 'transaction')} but no Z report"
        ),
        passed=lambda f: f"every register with transactions has a Z report ({_plural(len(f), 'register')})",
        failed=lambda n, total: (
            f"{n} of {total} registers with transactions have no Z report (Z totals cannot be checked for them)"
        ),
    ),
    Rule(
        name="z_vat_totals",
        build=_z_vat_frame,
        expectations=_difference_is_zero,
        money=("lines", "bill_discount", "z_report", "difference"),
        describe=lambda r: (
            f"VAT code {r['std_vat_code']} ({_rate(r['vat_rate_bp'])}): sales lines {r['lines_kr']}"
            + (f" - bill discounts {r['bill_discount_kr']}" if r["bill_discount"] else "")
            + f" != Z report {r['z_report_kr']} (difference {r['difference_kr']})"
        ),
        passed=lambda f: f"sales per VAT code after bill discounts equal the Z report ({_plural(len(f), 'VAT code')})",
        failed=lambda n, total: f"{n} of {total} VAT codes differ from the Z report",
    ),
    Rule(
        name="z_payment_totals",
        build=_z_payment_frame,
        expectations=_difference_is_zero,
        money=("payments", "z_report", "difference"),
        describe=lambda r: (
            f"payment type {r['payment_type']}: payments {r['payments_kr']} != Z report {r['z_report_kr']} "
            f"(difference {r['difference_kr']})"
        ),
        passed=lambda f: f"payments per type equal the Z report ({_plural(len(f), 'payment type')})",
        failed=lambda n, total: f"{n} of {total} payment types differ from the Z report",
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
            f"but gross {r['gross_kr']} at {_rate(r['vat_rate_bp'])} holds {r['expected_vat_kr']} "
            f"(difference {r['difference_kr']})"
        ),
        passed=lambda f: f"the VAT of all {_plural(len(f), 'sale/return line')} matches its rate within 1 øre",
        failed=lambda n, total: f"{n} of {total} lines have a VAT that does not match their rate",
    ),
    Rule(
        name="sales_inside_business_day",
        build=_window_frame,
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
            f"all {_plural(len(f), 'receipt')} lie inside the business day "
            f"(within {SALES_WINDOW_GRACE_HOURS} h of its window)"
        ),
        failed=lambda n, total: (
            f"{n} of {total} receipts lie more than {SALES_WINDOW_GRACE_HOURS} h outside the business day"
        ),
    ),
    Rule(
        name="currency_known",
        build=_currency_frame,
        expectations=lambda gxe: [gxe.ExpectColumnValuesToBeBetween(column="known", min_value=1, max_value=1)],
        money=("amount",),
        describe=lambda r: (
            f"payment {r['payment_type']} of receipt {r['trans_id']} on register {r['register_id']}: "
            f"{r['amount_kr']} in {r['currency'] or '?'} without an exchange rate"
        ),
        passed=lambda f: f"all {_plural(len(f), 'payment')} are in NOK or carry an exchange rate",
        failed=lambda n, total: f"{n} of {total} payments are in a foreign currency without an exchange rate",
    ),
)


# --------------------------------------------------------------------------------------------
# Great Expectations


class _GX:
    """One ephemeral GX context per process with one suite and validation definition per rule."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        # GX logs thousands of INFO lines at import ("Skipping registering function ..."): keep task logs readable
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.gxe = gxe
        self.context = gx.get_context(mode="ephemeral")
        # tqdm bars ("Calculating Metrics") would flood task logs.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.source = self.context.data_sources.add_pandas("kassebro")
        self.definitions: dict[Rule, Any] = {}

    def definition(self, rule: Rule) -> Any:
        if rule not in self.definitions:
            name = f"{rule.name}-{len(self.definitions)}"  # GX names are unique; rule names need not be
            batch = self.source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            suite = self.context.suites.add(self.gx.ExpectationSuite(name=name))
            for expectation in rule.expectations(self.gxe):
                suite.add_expectation(expectation)
            self.definitions[rule] = self.context.validation_definitions.add(
                self.gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
        return self.definitions[rule]


_gx: _GX | None = None
_gx_lock = threading.Lock()


def _run_gx(rule: Rule, frame: pd.DataFrame) -> tuple[set[int], list[str]]:
    """Run the rule's suite on `frame`; return the flagged row positions and any GX errors.

    A result that raised, failed without naming rows, or is missing counts as an error, so a
    broken expectation can never read as a pass.
    """
    global _gx
    with _gx_lock:
        if _gx is None:
            _gx = _GX()
        definition = _gx.definition(rule)
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")
    expected = len(definition.suite.expectations)
    errors: list[str] = []
    if len(result.results) != expected:
        errors.append(f"GX returned {len(result.results)} results for {expected} expectations")
    rows: set[int] = set()
    for item in result.results:
        name = item.expectation_config.type
        raised = _exception_messages(item.exception_info)
        if raised:
            errors.append(f"{name} raised: {'; '.join(raised)}")
        elif not item.success:
            indexes = (item.result or {}).get("unexpected_index_list")
            if not indexes:
                errors.append(f"{name} failed without naming rows: {item.result}")
            else:
                rows.update(int(i) for i in indexes)
    if not result.success and not rows and not errors:
        errors.append("GX reported failure without a failed expectation")
    return rows, errors


def _exception_messages(info: Any) -> list[str]:
    """Messages of raised exceptions in `exception_info`, flat or keyed by metric id (both occur)."""
    if not info:
        return []
    if isinstance(info, Mapping) and "raised_exception" in info:
        return [str(info.get("exception_message") or "unknown error")] if info["raised_exception"] else []
    if isinstance(info, Mapping):
        messages: list[str] = []
        for value in info.values():
            for message in _exception_messages(value):
                if message not in messages:
                    messages.append(message)
        return messages
    return [str(info)]


# --------------------------------------------------------------------------------------------
# Running the rules


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _rows(frame: pd.DataFrame, money: Iterable[str]) -> list[dict[str, Any]]:
    money = [column for column in money if column in frame.columns]
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {str(key): _jsonable(value) for key, value in record.items()}
        for column in money:
            if row[column] is not None:
                row[f"{column}_kr"] = format_ore(int(row[column]))
        rows.append(row)
    return rows


def _check(rule: Rule, day: SalesDay) -> CheckResult | None:
    try:
        frame = rule.build(day)
        if frame is None:
            return None
        frame = frame.reset_index(drop=True)
        flagged, errors = _run_gx(rule, frame)
    except Exception as exc:  # a bug in a rule must fail the day, not pass it or hide other rules
        log.exception("validation rule %s could not run", rule.name)
        return CheckResult(rule.name, False, f"{rule.name} could not be checked: {type(exc).__name__}: {exc}")

    offending = frame.loc[sorted(flagged)]
    if rule.collapse is not None and len(offending):
        offending = rule.collapse(offending)
    rows = _rows(offending, rule.money)
    if errors:
        message = f"{rule.name} could not be checked: " + "; ".join(errors)
        return CheckResult(rule.name, False, message, rows[:MAX_OFFENDING], len(rows))
    if not rows:
        return CheckResult(rule.name, True, rule.passed(frame))

    shown = rows[:MAX_OFFENDING]
    headline = rule.failed(len(rows), len(frame))
    sentences = [rule.describe(row) for row in shown]
    if len(rows) > len(shown):
        sentences.append(f"... and {len(rows) - len(shown)} more")
    message = f"{headline}: {sentences[0]}" if len(sentences) == 1 else headline + ":\n  " + "\n  ".join(sentences)
    return CheckResult(rule.name, False, message, shown, len(rows))


def _is_empty(day: SalesDay) -> bool:
    return all(len(frame) == 0 for frame in day.frames().values())


def validate_day(
    day: SalesDay,
    *,
    report_dir: Path | None = None,
    rules: Sequence[Rule] = RULES,
    tz: str = "Europe/Oslo",
    day_start_hour: int = 0,
) -> ValidationReport:
    """Run the rules on `day` and return the report; write JSON and HTML to `report_dir` if given.

    `tz` and `day_start_hour` are the vendor's: they set the business day's window for
    sales_inside_business_day. Never raises for bad data (call `raise_if_failed`), so the caller
    can store the report first.
    """
    if _is_empty(day):
        checks: tuple[CheckResult, ...] = (
            CheckResult("empty_day", True, "no transactions and no Z report: nothing to book"),
        )
    else:
        token = _window.set((tz, day_start_hour))
        try:
            checks = tuple(result for rule in rules if (result := _check(rule, day)) is not None)
        finally:
            _window.reset(token)
    paths: tuple[Path, ...] = ()
    if report_dir is not None:
        paths = (report_dir / "validation.json", report_dir / "validation.html")
    report = ValidationReport(
        vendor_id=day.vendor_id,
        business_day=day.business_day,
        success=all(check.success for check in checks),
        checks=checks,
        source=day.source,
        report_paths=paths,
    )
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        _write(paths[0], json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        _write(paths[1], render_html(report))
    (log.info if report.success else log.warning)("%s", report.headline)
    if report_dir is not None:
        log.info("validation report: %s", paths[1])
    return report


def _write(path: Path, text: str) -> None:
    """Write via a temporary file so a reader never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
pre { margin: 0; white-space: pre-wrap; font-family: inherit; }
"""


def render_html(report: ValidationReport) -> str:
    """A small self-contained page: one row per rule, then the offending rows of each failed rule."""
    esc = html.escape
    day = report.business_day.isoformat()
    status = "PASSED" if report.success else "FAILED"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Validation {esc(report.vendor_id)} {day}: {status}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Validation of vendor {esc(report.vendor_id)}, business day {day}</h1>",
        f'<p class="{"pass" if report.success else "fail"}">{esc(report.headline)}</p>',
    ]
    if report.source:
        parts.append(f"<p>Source: {esc(report.source)}</p>")
    parts.append("<table><tr><th>Rule</th><th>Result</th><th>Message</th></tr>")
    for check in report.checks:
        css, word = ("pass", "pass") if check.success else ("fail", "FAIL")
        name = esc(check.rule)
        link = f'<a href="#{name}">{name}</a>' if check.offending and not check.success else name
        parts.append(f'<tr><td>{link}</td><td class="{css}">{word}</td><td><pre>{esc(check.message)}</pre></td></tr>')
    parts.append("</table>")
    for check in report.failed:
        if not check.offending:
            continue
        shown = len(check.offending)
        note = f" (first {shown} of {check.offending_count})" if check.offending_count > shown else ""
        parts.append(f'<h2 id="{esc(check.rule)}">{esc(check.rule)}: offending rows{note}</h2>')
        columns = list(dict.fromkeys(key for row in check.offending for key in row))
        parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
        for row in check.offending:
            cells = []
            for column in columns:
                value = row.get(column)
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                css = ' class="num"' if numeric or column.endswith("_kr") else ""
                cells.append(f"<td{css}>{'' if value is None else esc(str(value))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
