"""Validation: the rules a day's sales must pass before anything is booked, and their report.

`validate_day(day, DayContext.of(vendor))` runs every rule (`RULES`); each family of rules has its
own module: `source` (whose file, which currency, declared codes), `receipts` (each transaction),
`zreport` (every total the Z report gives). `report` holds the result values and the HTML page;
`gx` runs Great Expectations, imported on first use only.
"""

from kassebro.checks.report import CheckResult, ValidationReport
from kassebro.checks.rules import DayContext, NotChecked, Rule
from kassebro.checks.validate import RULES, validate_day

__all__ = ["RULES", "CheckResult", "DayContext", "NotChecked", "Rule", "ValidationReport", "validate_day"]
