"""The one path from a vendor's day of sales to its verdict: read, check, book.

`evaluate_day(vendor, day, source)` reads the day (the vendor's configured source, or one given),
runs every validation rule and every booking rule, and returns a `DayVerdict`: the sales read,
the report listing every rule with its outcome, and the voucher, or no voucher when any rule
failed. The DAG's `prepare` task, `kassebro voucher preview` and the tests all call it, so what a
preview shows is what the night does: a preview exits non-zero exactly when the DAG holds the
day back.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kassebro.core.errors import Issue, SourceError, ValidationFailed

if TYPE_CHECKING:
    from kassebro.booking.voucher import Voucher
    from kassebro.checks.report import ValidationReport
    from kassebro.config import Vendor
    from kassebro.core.frames import SalesDay


@dataclass(frozen=True)
class DayVerdict:
    """What kassebro concludes about one vendor's business day.

    Attributes:
      vendor_id, business_day: whose day.
      sales: the day as read, or None when the source could not be read.
      report: every rule checked (validation and booking), or the source's refusal.
      voucher: the balanced voucher to post, or None when the day is held back or waiting.
      waiting: the source holds nothing for a day the shop's calendar has open: the export is
        late (or not running). Not a closed day: nothing is recorded as done.
      closed_by: why a day has nothing to post: "pos" (a Z report with zero sales) or "calendar"
        (no data on a day the shop's calendar has closed); "" for a day with sales.
    """

    vendor_id: str
    business_day: dt.date
    sales: SalesDay | None
    report: ValidationReport
    voucher: Voucher | None
    waiting: bool = False
    closed_by: str = ""

    @property
    def held_back(self) -> bool:
        return self.voucher is None and not self.waiting

    @property
    def status(self) -> str:
        """ready (a voucher to post), closed, waiting (for data) or held_back (a rule failed)."""
        if self.waiting:
            return "waiting"
        if self.voucher is None:
            return "held_back"
        return "closed" if self.closed_by else "ready"

    def issues(self) -> list[Issue]:
        return self.report.issues()

    def raise_if_held_back(self) -> None:
        """ValidationFailed (bad data: no retry) naming vendor, day, every failed rule and its data."""
        if self.held_back:
            raise ValidationFailed(self.issues(), headline=self.report.headline)

    def to_json(self) -> dict[str, Any]:
        """The verdict for `--json` and the work directory: headline, rules, failures."""
        return {
            "status": self.status,
            "held_back": self.held_back,
            "closed_by": self.closed_by,
            "headline": self.report.headline,
            "source": self.report.source,
            "failed": [
                {"rule": check.rule, "message": check.message, "offending_count": check.offending_count}
                for check in self.report.failed
            ],
            "rules": [check.to_json() for check in self.report.checks],
        }


def evaluate_day(vendor: Vendor, day: dt.date, source: str | None = None) -> DayVerdict:
    """Read, validate and book one vendor's day. Never raises for bad data: the verdict says it."""
    from kassebro.sources import read_sales

    try:
        sales = read_sales(vendor, day, source)
    except SourceError as exc:
        return DayVerdict(vendor.id, day, None, refusal(vendor.id, day, exc), None)
    return judge(vendor, sales)


def judge(vendor: Vendor, sales: SalesDay) -> DayVerdict:
    """Validate and book a day already read (the property tests hand over generated days here).

    A day whose source holds nothing is not an empty day: it is closed only when the shop's
    calendar says so, and otherwise waiting for its data (a missing thing is not a zero).
    """
    from kassebro.booking.rules import book
    from kassebro.checks import DayContext, validate_day
    from kassebro.core.gc_pause import paused

    with paused():  # pandas and GX make many objects and few cycles: collect after, not during
        report = validate_day(sales, DayContext.of(vendor))
        voucher, booking = book(sales, vendor)
    report = report.with_checks(booking)
    day = sales.business_day
    if sales.is_empty() and report.success and vendor.is_open(day):
        return DayVerdict(vendor.id, day, sales, _waiting(vendor, day, report), None, waiting=True)
    if voucher is None or not report.success:
        return DayVerdict(vendor.id, day, sales, report, None)
    closed_by = "" if voucher.lines else "calendar" if sales.is_empty() else "pos"
    return DayVerdict(vendor.id, day, sales, report, voucher, closed_by=closed_by)


def _waiting(vendor: Vendor, day: dt.date, report: ValidationReport) -> ValidationReport:
    """The report of a day with no data yet: the source's own rules, and `data_present` failed."""
    from dataclasses import replace

    from kassebro.checks.report import CheckResult
    from kassebro.config.schedule import data_deadline

    deadline = data_deadline(vendor, day)
    waiting = CheckResult(
        "data_present",
        False,
        f"no transactions and no Z report for {vendor.id} {day} yet: waiting for the POS export "
        f"until {deadline:%Y-%m-%d %H:%M %Z} (data_deadline_hours {vendor.data_deadline_hours:g})",
    )
    checks = tuple(c for c in report.checks if c.rule != "empty_day") + (waiting,)
    return replace(report, checks=checks, success=False)


def refusal(vendor_id: str, day: dt.date, error: SourceError) -> ValidationReport:
    """A source that cannot be read as a report: one failed check per rule the source broke."""
    from kassebro.checks.report import CheckResult, ValidationReport

    by_rule: dict[str, list[Issue]] = {}
    for issue in error.issues:
        by_rule.setdefault(issue.rule, []).append(issue)
    checks = tuple(
        CheckResult(
            rule,
            False,
            "\n".join(f"{issue.source}: {issue.message}" for issue in issues),
            [{"source": issue.source, "message": issue.message} for issue in issues[:20]],
            len(issues),
        )
        for rule, issues in by_rule.items()
    )
    if not checks:  # a SourceError without issues: its headline is all there is
        checks = (CheckResult("source_unreadable", False, error.headline or str(error)),)
    source = "; ".join(sorted({re.sub(r":\d+$", "", issue.source) for issue in error.issues}))
    return ValidationReport(vendor_id, day, False, checks, source=source, read=False)
