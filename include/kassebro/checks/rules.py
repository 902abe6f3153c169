"""What a rule is, the vendor facts rules need, and running one rule through Great Expectations.

Each rule turns the day into a small derived pandas frame (one row per receipt, VAT code, payment
type ...) and GX checks that frame; the rows GX flags map straight back to the receipts or codes a
person has to look at. To add a rule, write a `build` function in the module of its family and
list the Rule in that module's RULES.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kassebro.checks.gx import flagged_rows
from kassebro.checks.report import MAX_OFFENDING, CheckResult
from kassebro.core.money import format_ore

if TYPE_CHECKING:
    from kassebro.config import Vendor
    from kassebro.core.frames import SalesDay

log = logging.getLogger(__name__)

VAT_LINE_TYPES = ("sale", "return")
"""Line types the Z report's VAT block covers; tips are paid for but are not revenue."""


@dataclass(frozen=True)
class DayContext:
    """What the rules need to know of the vendor besides the day's data.

    Attributes:
      tz, day_start_hour: the business day's window (sales_inside_business_day).
      organisation_number: whom the files must belong to; None when the vendor has none set.
      currency: the currency the vendor books in (header curCode must say it).
    """

    tz: str = "Europe/Oslo"
    day_start_hour: int = 0
    organisation_number: str | None = None
    currency: str = "NOK"

    @classmethod
    def of(cls, vendor: Vendor) -> DayContext:
        return cls(vendor.timezone, vendor.day_start_hour, vendor.org_number, vendor.currency)


@dataclass(frozen=True)
class NotChecked:
    """What a rule's build returns when it cannot be checked for want of a fact (said in the report)."""

    reason: str


@dataclass(frozen=True)
class Rule:
    """A named rule: a derived frame built with pandas plus the GX expectations run over it.

    Attributes:
      name: the rule name shown to people and used as Issue.rule.
      build: (day, context) -> derived frame (one row per checked item, the report's columns);
        None when the rule does not apply to the day (e.g. Z totals on a day without a Z report);
        NotChecked when it applies but cannot be checked.
      expectations: given the `great_expectations.expectations` module, the expectations over the
        derived frame; a row is offending when any of them flags it.
      describe: one offending row (JSON-able dict) -> a sentence naming it.
      passed: the derived frame -> the message when every expectation passed.
      failed: (offending count, frame row count) -> the headline when some rows offend.
      money: øre columns of the derived frame, also reported as kroner strings.
      collapse: optional offending rows -> report rows (e.g. one row per duplicated key).
      details: optional derived frame -> facts to keep in the report, passed or failed.
    """

    name: str
    build: Callable[[SalesDay, DayContext], pd.DataFrame | NotChecked | None]
    expectations: Callable[[Any], list[Any]]
    describe: Callable[[dict[str, Any]], str]
    passed: Callable[[pd.DataFrame], str]
    failed: Callable[[int, int], str]
    money: tuple[str, ...] = ()
    collapse: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    details: Callable[[pd.DataFrame], list[dict[str, Any]]] | None = None


def check(rule: Rule, day: SalesDay, context: DayContext) -> CheckResult | None:
    """Run one rule; None when it does not apply. Never raises: a broken rule fails the day."""
    try:
        frame = rule.build(day, context)
        if frame is None:
            return None
        if isinstance(frame, NotChecked):
            return CheckResult(rule.name, True, frame.reason, checked=False)
        frame = frame.reset_index(drop=True)
        flagged, errors = flagged_rows(rule, rule.name, rule.expectations, frame)
        details = rule.details(frame) if rule.details is not None else []
    except Exception as exc:  # a bug in a rule must fail the day, not pass it or hide other rules
        log.exception("validation rule %s could not run", rule.name)
        return CheckResult(rule.name, False, f"{rule.name} could not be checked: {type(exc).__name__}: {exc}")

    if not flagged and not errors:  # the usual day: no rows to list
        return CheckResult(rule.name, True, rule.passed(frame), details=details)
    offending = frame.loc[sorted(flagged)]
    if rule.collapse is not None and len(offending):
        offending = rule.collapse(offending)
    rows = rows_of(offending, rule.money)
    if errors:
        message = f"{rule.name} could not be checked: " + "; ".join(errors)
        return CheckResult(rule.name, False, message, rows[:MAX_OFFENDING], len(rows), details=details)
    if not rows:
        return CheckResult(rule.name, True, rule.passed(frame), details=details)

    shown = rows[:MAX_OFFENDING]
    headline = rule.failed(len(rows), len(frame))
    sentences = [rule.describe(row) for row in shown]
    if len(rows) > len(shown):
        sentences.append(f"... and {len(rows) - len(shown)} more")
    message = f"{headline}: {sentences[0]}" if len(sentences) == 1 else headline + ":\n  " + "\n  ".join(sentences)
    return CheckResult(rule.name, False, message, shown, len(rows), details=details)


# --------------------------------------------------------------------------------------------
# Helpers the rule families share


def totals(keys: list[str], parts: Mapping[str, tuple[pd.DataFrame, str]]) -> pd.DataFrame:
    """Sum each part's øre column per key into its own column, 0 where a part has no row.

    Sums in plain ints (an outer merge would pass through float NaN), rows sorted by key with
    missing keys last, key columns in the dtype the parts stacked would have: what
    `groupby(keys, dropna=False, sort=True).sum()` of the stacked parts gives. A dict, not the
    groupby: the frames are a day's receipts or codes, and pandas' fixed cost per groupby and
    column was most of a rule's build (checked equal to the groupby on every call of the test
    suite's validations, docs/benchmarks.md).
    """
    names = list(parts)
    sums: dict[tuple[Any, ...], list[int]] = {}
    for i, (frame, column) in enumerate(parts.values()):
        values = frame[column].astype("int64").tolist()  # raises on a missing amount, as the groupby did
        columns = [[None if pd.isna(v) else v for v in frame[key].tolist()] for key in keys]
        for key, value in zip(zip(*columns, strict=True), values, strict=True):
            entry = sums.get(key)
            if entry is None:
                entry = sums[key] = [0] * len(names)
            entry[i] += value
    order = sorted(sums, key=lambda key: tuple((v is None, v) for v in key))
    data: dict[str, Any] = {}
    for level, key in enumerate(keys):
        dtype = pd.concat([frame[key] for frame, _ in parts.values()], ignore_index=True).dtype
        data[key] = pd.array([k[level] for k in order], dtype=dtype)
    for i, name in enumerate(names):
        data[name] = np.array([sums[k][i] for k in order], dtype="int64")
    return pd.DataFrame(data)


_memo: dict[str, tuple[SalesDay, Any]] = {}


def memo(day: SalesDay, name: str, compute: Callable[[SalesDay], Any]) -> Any:
    """`compute(day)` once per day for the rules that share it (validate_day forgets it after)."""
    kept = _memo.get(name)
    if kept is not None and kept[0] is day:
        return kept[1]
    value = compute(day)
    _memo[name] = (day, value)
    return value


def forget() -> None:
    _memo.clear()


def sales_lines(day: SalesDay) -> pd.DataFrame:
    """The day's sale and return lines (what the Z report's VAT and sales totals cover)."""
    return day.lines[day.lines["line_type"].isin(VAT_LINE_TYPES).fillna(False).astype(bool)]


def has_z_report(day: SalesDay) -> bool:
    return len(day.z_vat) > 0 or len(day.z_payments) > 0


def difference_is_zero(gxe: Any) -> list[Any]:
    # NotNull as well: Between skips missing values, and a missing difference must not pass.
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="difference"),
        gxe.ExpectColumnValuesToBeBetween(column="difference", min_value=0, max_value=0),
    ]


def column_is(column: str, value: int) -> Callable[[Any], list[Any]]:
    """Expectations: `column` is never null and always equals `value`."""

    def expectations(gxe: Any) -> list[Any]:
        return [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=value, max_value=value),
        ]

    return expectations


def rate(rate_bp: Any) -> str:
    if rate_bp is None:
        return "? %"
    text = format_ore(int(rate_bp))
    return f"{text.removesuffix('.00')} %"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def rows_of(frame: pd.DataFrame, money: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The frame's rows as JSON-able dicts, øre columns also as "<column>_kr" kroner strings."""
    money = [column for column in money if column in frame.columns]
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {str(key): jsonable(value) for key, value in record.items()}
        for column in money:
            if row[column] is not None:
                row[f"{column}_kr"] = format_ore(int(row[column]))
        rows.append(row)
    return rows
