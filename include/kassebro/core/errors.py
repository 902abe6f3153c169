"""Errors as values: each carries where it came from, so many can be collected and shown together.

Following beancount's style, a problem found in input (a config file, a SAF-T file, a day's
sales) is an `Issue` value; code collects them and raises one `KassebroError` listing them all,
instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One problem in input data.

    Attributes:
      source: where: a file path (with ":line" when known), a database URL, or "vendor/day".
      rule: the short name of the rule that was broken, e.g. "receipt_balances".
      message: what is wrong, for a person, naming the offending data.
    """

    source: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: [{self.rule}] {self.message}"


class KassebroError(Exception):
    """Base of kassebro's own errors."""


class InputError(KassebroError):
    """Bad input (config, sales data): retrying cannot help, so tasks fail at once."""

    def __init__(self, issues: list[Issue] | Issue, headline: str = "") -> None:
        self.issues = [issues] if isinstance(issues, Issue) else list(issues)
        self.headline = headline
        super().__init__(self.render())

    def render(self) -> str:
        head = [self.headline] if self.headline else []
        return "\n".join(head + [f"- {issue}" for issue in self.issues])


class ConfigError(InputError):
    """A vendor or ledger config file is invalid."""


class SourceError(InputError):
    """A sales source is unreadable or invalid (malformed XML, schema violation, missing day)."""


class ValidationFailed(InputError):
    """A day's sales failed the validation suite: nothing is posted for that day."""


class DataMissing(InputError):
    """A day the shop's calendar has open got no sales data by its deadline: the export is late
    or not running. Nothing is posted; a later run books the day once its data comes."""
