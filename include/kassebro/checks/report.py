"""The validation report of one vendor's day: one result per rule, as JSON and as a small HTML page.

A result is a value (beancount style): the rule, whether it held, a sentence for a person naming
the offending data, and the offending rows themselves. A rule that could not be checked for lack
of data (a vendor without an organisation number) says so instead of passing silently.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field, replace
from typing import Any

from kassebro.core.errors import Issue, ValidationFailed

MAX_OFFENDING = 20
"""Offending rows kept per check: enough to act on, small enough for a log line and XCom."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rule on one day.

    Attributes:
      rule: the rule's name, e.g. "receipt_balances".
      success: False when the rule found something wrong (or could not run): the day is held back.
      message: for a person: what was checked, or what is wrong, naming the offending data.
      offending: up to MAX_OFFENDING offending rows as JSON-able dicts (money in øre plus a
        "<column>_kr" kroner string).
      offending_count: how many rows offended in all (may exceed len(offending)).
      checked: False when the rule could not be checked (the message says why); it does not hold
        the day back, but the report shows it.
      details: facts the rule established, as JSON-able rows (e.g. how each Z report was read).
    """

    rule: str
    success: bool
    message: str
    offending: list[dict[str, Any]] = field(default_factory=list)
    offending_count: int = 0
    checked: bool = True
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "fail" if not self.success else "pass" if self.checked else "not checked"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "success": self.success,
            "status": self.status,
            "message": self.message,
            "offending_count": self.offending_count,
            "offending": self.offending,
        }
        if self.details:
            data["details"] = self.details
        return data


@dataclass(frozen=True)
class ValidationReport:
    """All checks of one vendor's business day; `success` is True only if no check failed."""

    vendor_id: str
    business_day: dt.date
    success: bool
    checks: tuple[CheckResult, ...]
    source: str = ""
    report_paths: tuple[Any, ...] = ()  # Path or ObjectStoragePath
    """validation.json and validation.html when the report was written."""
    read: bool = True
    """False when the source could not be read: the checks are the reasons, no rule ran."""

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.success)

    @property
    def not_checked(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if check.success and not check.checked)

    @property
    def headline(self) -> str:
        day = self.business_day.isoformat()
        if not self.read:
            return f"vendor {self.vendor_id}, business day {day}: the sales source could not be read"
        unchecked = f" ({len(self.not_checked)} not checked)" if self.not_checked else ""
        if [check.rule for check in self.failed] == ["data_present"]:
            return f"vendor {self.vendor_id}, business day {day}: no sales data yet (waiting for the POS export)"
        if self.success:
            return f"vendor {self.vendor_id}, business day {day}: all {len(self.checks)} rules passed{unchecked}"
        return f"vendor {self.vendor_id}, business day {day}: {len(self.failed)} of {len(self.checks)} rules failed"

    def issues(self) -> list[Issue]:
        """One Issue per failed rule, so the error lists every problem of the day at once."""
        source = f"{self.vendor_id}/{self.business_day.isoformat()}"
        return [Issue(source, check.rule, check.message) for check in self.failed]

    def raise_if_failed(self) -> None:
        """Raise ValidationFailed (bad data: the task must fail without retrying) if any rule failed."""
        if not self.success:
            raise ValidationFailed(self.issues(), headline=self.headline)

    def with_checks(self, more: list[CheckResult]) -> ValidationReport:
        """The report with more results (booking's), a rule already failed here not repeated."""
        failed = {check.rule for check in self.failed}
        extra = [check for check in more if check.rule not in failed]
        checks = self.checks + tuple(extra)
        return replace(self, checks=checks, success=all(check.success for check in checks))

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

    def write(self, directory: Any) -> ValidationReport:
        """Write validation.json and validation.html into `directory` (a Path or an
        ObjectStoragePath, `core.workfiles`: whole or absent to a reader); the report with their paths."""
        from kassebro.core import workfiles

        workfiles.make_dir(directory)
        paths = (directory / "validation.json", directory / "validation.html")
        report = replace(self, report_paths=paths)
        workfiles.write_text(paths[0], json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        workfiles.write_text(paths[1], render_html(report))
        return report


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
.skip { color: #9a6700; font-weight: bold; }
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
        css, word = {"pass": ("pass", "pass"), "fail": ("fail", "FAIL")}.get(check.status, ("skip", "not checked"))
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
