"""Run every rule on one vendor's day (domain §6 and the controls an accountant relies on).

A failed day is not posted: the caller raises `ValidationFailed` from the report, which names
vendor, day, rule and the offending rows. Nothing here raises for bad data, so the report can be
stored first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kassebro.checks import receipts, source, zreport
from kassebro.checks.report import CheckResult, ValidationReport
from kassebro.checks.rules import DayContext, Rule, check, forget

if TYPE_CHECKING:
    from kassebro.core.frames import SalesDay

SOURCE_RULES: tuple[Rule, ...] = source.RULES
RULES: tuple[Rule, ...] = source.RULES + receipts.RULES + zreport.RULES
"""Every rule, the source's own statements first, then the transactions, then the Z reports."""


def validate_day(
    day: SalesDay, context: DayContext | None = None, *, rules: Sequence[Rule] = RULES
) -> ValidationReport:
    """Run the rules on `day` and return the report (never raises for bad data)."""
    context = context or DayContext()
    if day.is_empty():
        # Nothing to check against each other; what the source says about itself still counts.
        own = [rule for rule in rules if rule in SOURCE_RULES]
        empty = CheckResult("empty_day", True, "no transactions and no Z report: nothing to book")
        checks = (*[result for rule in own if (result := check(rule, day, context)) is not None], empty)
    else:
        try:
            checks = tuple(result for rule in rules if (result := check(rule, day, context)) is not None)
        finally:
            forget()
    report = ValidationReport(
        vendor_id=day.vendor_id,
        business_day=day.business_day,
        success=all(result.success for result in checks),
        checks=checks,
        source=day.source,
    )
    return report
