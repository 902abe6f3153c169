"""The mapping check: does a vendor's account mapping fit the ledger's live chart of accounts?

`check_mapping(vendor, ledger)` reads the chart (`ReadBack.accounts()`, `vat_codes()`) and lists
every problem with the accounts the booking rules can post to (`kassebro.booking.rules`):

- where the accounts come from: each accounting key's `account`, `alternative_accounts` (VAT
  percent -> account) and `vat_code_accounts` (standard code -> account); every payment type's
  account; `tips_account`, `rounding_account`, `receivable_account`, `cash_difference_account`;
  `customer_account` when credit sales go to the ledger's customers on it (`credit_sales:
  customer_ledger`; not on Fiken, whose customer accounts are sub-accounts made with each contact);
- `account_exists`: each of them is in the chart;
- `account_active`: none of them is inactive (the ledger refuses postings to it);
- `vat_lock`: an account the ledger locks to a VAT code gets that code from every place in the
  mapping that books to it. A key's alternative account for a rate gets that rate's codes, a
  `vat_code_accounts` account its code, a key without VAT and every other account no code. A
  key's own `account` takes the key's normal rate, which the mapping does not name: it can get
  any rate the key does not send elsewhere, so the lock must be one of those (a lock to a rate the
  key routes to another account is caught; a line at an unusual rate is still refused by the
  ledger when it comes);
- `vat_code_known`: the VAT codes the mapping names (its `vat_code_accounts` codes and the code of
  each alternative rate) are among the ledger's codes;
- `payment_account`: a system that books POS payments through one account (the registry's
  `payment_account`, Fiken's 1901) gets every payment type on a sub-account of it,
  `1901:NNNNN`, the form Fiken gives bank and payment accounts (`1920:10001`).

The report is immutable and every problem names the vendor, the account, the rule, the places in
the mapping and what the ledger says. The CLI (`kassebro mapping check`) calls `check_mapping`; a
vendor DAG run calls it through `check_once_a_day`, which keeps a pass per vendor and ledger day
(and mapping digest) in the journal's database, so the runs of one day read the chart once. A
failure is never kept: the next run reads the chart again, so a mended chart shows at once.
`hold_back` records the days a failing mapping holds back in the journal, naming the problems.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, and_, delete, insert, select
from sqlalchemy.engine import Engine

from kassebro.booking.voucher import external_ref
from kassebro.config import LedgerMap, Vendor
from kassebro.core.errors import InputError, Issue
from kassebro.core.saft_codes import sales_vat_code, standard_vat_codes
from kassebro.core.tables import create_tables
from kassebro.ledgers import registry
from kassebro.ledgers.base import LedgerAccount, ReadBack
from kassebro.posting.journal import NOTHING_TO_POST, Journal

MAPPING_RULES: dict[str, str] = {
    "account_exists": "every account the mapping can post to is in the ledger's chart",
    "account_active": "no account the mapping can post to is inactive in the ledger",
    "vat_lock": "an account locked to a VAT code gets only that code from the mapping",
    "vat_code_known": "every VAT code the mapping names is known to the ledger",
    "payment_account": "payment accounts have the form the ledger system requires",
}
"""The rules of the mapping check, with what it means when they hold."""

SALES_CODES = ("3", "31", "32", "33", "5", "51", "52", "6")
"""The standard codes a sales line can carry (output VAT, exempt, export, outside the VAT Act). Their
rates come from the standard code list (`core.saft_codes`); "6" has none there, and counts as 0 %,
the rate the booking rules give it when the POS names no code (`sales_vat_code`)."""

_MAX_PLACES = 6  # places named in one message before "and N more"


@dataclass(frozen=True)
class MappingProblem:
    """One way the mapping does not fit the ledger.

    Attributes:
      vendor_id: the vendor whose mapping it is.
      rule: one of MAPPING_RULES.
      account: the account concerned (as the mapping writes it).
      places: where in the mapping it comes from ("payment_types.12001", "rounding_account", ...).
      ledger_says: what the ledger holds ("not in the chart", "inactive", "locked to VAT code 3").
      mapping_says: what the mapping books there ("VAT code 31"), when it matters.
      message: the whole sentence, for a person.
    """

    vendor_id: str
    rule: str
    account: str
    places: tuple[str, ...]
    ledger_says: str
    mapping_says: str = ""
    message: str = ""


@dataclass(frozen=True)
class MappingReport:
    """The outcome of one mapping check: the accounts checked and every problem (none: it fits).

    `from_cache` is True when a pass of the same ledger day was reused instead of reading the chart.
    """

    vendor_id: str
    system: str
    accounts: tuple[str, ...]
    problems: tuple[MappingProblem, ...] = ()
    checked_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        if self.ok:
            cached = " (passed earlier today; the chart was not read again)" if self.from_cache else ""
            return f"ok, {len(self.accounts)} accounts checked against {self.system}{cached}"
        return (
            f"vendor {self.vendor_id}: the mapping does not fit {self.system}: {len(self.problems)} problem(s) "
            f"in {len(self.accounts)} accounts checked"
        )

    def text(self) -> str:
        """The summary, then one line per problem: `- [rule] message`."""
        return "\n".join([self.summary, *(f"- [{p.rule}] {p.message}" for p in self.problems)])

    def issues(self) -> list[Issue]:
        return [Issue(f"{self.vendor_id}/mapping", p.rule, p.message) for p in self.problems]


class MappingRefused(InputError):
    """A vendor's mapping does not fit its ledger: its days are held back, nothing is posted.
    Input to mend (the mapping or the chart), so a task fails at once instead of retrying."""

    def __init__(self, report: MappingReport, headline: str) -> None:
        self.report = report
        super().__init__(report.issues(), headline)


# ---------------------------------------------------------------------------------------------
# Where the mapping books: account -> (place, the VAT codes it can get there)


@dataclass(frozen=True)
class Route:
    """One place of the mapping the booking rules post to: its account, its name in the mapping
    ("accounting_keys.04003.alternative_accounts.15") and the VAT codes a line there can carry."""

    account: str
    place: str
    codes: frozenset[str | None]  # the VAT codes a line there can carry; None = no VAT code
    names_codes: bool = False  # the codes are named by the mapping (not a key's unnamed normal rate)


def _rate_of(code: str) -> int:
    known = standard_vat_codes().get(code)
    return known.rate_bp if known is not None and known.rate_bp is not None else 0


def _codes_at(rate_bp: int) -> set[str | None]:
    """The codes a sales line at this rate can carry: the sales codes of the rate, and the one the
    booking rules give it when the POS names none. (At a rate no code has, such a line goes without
    a code; the check leaves that rare case to the ledger's own refusal.)"""
    default = sales_vat_code("", rate_bp)
    return {c for c in SALES_CODES if _rate_of(c) == rate_bp} | ({default} if default else set())


def routes(mapping: LedgerMap) -> list[Route]:
    """Every place the booking rules can post to under this mapping, with the VAT codes it can get."""
    found: list[Route] = []
    no_vat: frozenset[str | None] = frozenset({None})
    rates = {_rate_of(c) for c in SALES_CODES}
    for key, entry in sorted(mapping.accounting_keys.items()):
        where = f"accounting_keys.{key}"
        routed_codes = set(entry.vat_code_accounts)
        for code, account in sorted(entry.vat_code_accounts.items()):
            codes = frozenset({code}) if entry.vat else no_vat
            found.append(Route(account, f"{where}.vat_code_accounts.{code}", codes, entry.vat))
        for percent, account in sorted(entry.alternative_accounts.items()):
            codes = frozenset(_codes_at(percent * 100) - routed_codes) if entry.vat else no_vat
            found.append(Route(account, f"{where}.alternative_accounts.{percent}", codes, entry.vat))
        if entry.vat:
            other_rates = rates - {percent * 100 for percent in entry.alternative_accounts}
            codes = frozenset(set().union(*(_codes_at(r) for r in other_rates)) - routed_codes)
        else:
            codes = no_vat
        found.append(Route(entry.account, f"{where}.account", codes))
    for key, account in sorted(mapping.payment_types.items()):
        found.append(Route(account, f"payment_types.{key}", no_vat))
    for name in ("tips_account", "rounding_account", "receivable_account", "cash_difference_account"):
        found.append(Route(getattr(mapping, name), name, no_vat))
    return found


def vendor_routes(vendor: Vendor) -> list[Route]:
    """The mapping's routes, and the customer account when credit sales go to the ledger's customers
    on it (not on Fiken, where each customer's account is a sub-account made with the customer)."""
    found = routes(vendor.mapping)
    if vendor.customer_postings and not registry.get(vendor.ledger.system).customer_subaccounts:
        found.append(Route(vendor.mapping.customer_account, "customer_account", frozenset({None})))
    return found


# ---------------------------------------------------------------------------------------------
# The check


def check_mapping(vendor: Vendor, ledger: ReadBack) -> MappingReport:
    """Check every account the vendor's mapping can post to against the ledger's chart (read now).

    Reads `ledger.accounts()` and `ledger.vat_codes()`; ledger errors (credentials, a ledger that
    cannot be reached) are raised as they are: the check could not be made.
    """
    system = registry.get(vendor.ledger.system)
    title = str(getattr(ledger, "system", "") or system.title)  # the ledger read, for what it holds
    chart = {str(a.number).strip(): a for a in ledger.accounts()}
    known_codes = {str(v.code).strip() for v in ledger.vat_codes()}
    found = vendor_routes(vendor)
    by_account: dict[str, list[Route]] = {}
    for route in found:
        by_account.setdefault(route.account.strip(), []).append(route)

    problems: list[MappingProblem] = []

    def add(rule: str, account: str, places: Sequence[str], says: str, sentence: str, mapping_says: str = "") -> None:
        problems.append(MappingProblem(vendor.id, rule, account, tuple(places), says, mapping_says, sentence))

    for account, here in sorted(by_account.items()):
        places = [r.place for r in here]
        held = chart.get(account)
        if held is None:
            add(
                "account_exists",
                account,
                places,
                "not in the chart",
                f"account {account} ({_places(places)}) is not in the {title} chart of accounts",
            )
            continue
        if not held.active:
            add(
                "account_active",
                account,
                places,
                "inactive",
                f"account {account} {_named(held)}({_places(places)}) is inactive in {title}: it refuses postings",
            )
        if held.vat_locked:
            wrong = [r for r in here if r.codes and held.vat_code not in r.codes]
            if wrong:
                booked = sorted({_code_text(c) for r in wrong for c in r.codes})
                add(
                    "vat_lock",
                    account,
                    [r.place for r in wrong],
                    f"locked to VAT code {_code_text(held.vat_code)}",
                    f"account {account} {_named(held)}is locked to VAT code {_code_text(held.vat_code)} in "
                    f"{title}, but {_places([r.place for r in wrong])} book{'s' if len(wrong) == 1 else ''} "
                    f"VAT code {' or '.join(booked)} there",
                    mapping_says=f"VAT code {' or '.join(booked)}",
                )
    if known_codes:
        named: dict[str, list[str]] = {}
        for route in found:
            if route.names_codes and len(route.codes) == 1:
                (code,) = route.codes
                if code is not None:
                    named.setdefault(code, []).append(route.place)
        for code, places in sorted(named.items()):
            if code not in known_codes:
                accounts = sorted({r.account for r in found if r.place in places})
                add(
                    "vat_code_known",
                    ", ".join(accounts),
                    places,
                    f"no VAT code {code}",
                    f"VAT code {code} ({_places(places)}) is not among {title}'s VAT codes",
                    mapping_says=f"VAT code {code}",
                )
    if system.payment_account:
        wanted = re.compile(rf"^{re.escape(system.payment_account)}:\d{{5}}$")
        for key, account in sorted(vendor.mapping.payment_types.items()):
            if not wanted.match(account.strip()):
                add(
                    "payment_account",
                    account,
                    [f"payment_types.{key}"],
                    f"payments on sub-accounts of {system.payment_account}",
                    f"payment type {key!r} is mapped to {account}; {system.title} books POS payments on "
                    f"sub-accounts of {system.payment_account} ({system.payment_account}:NNNNN, one per payment type)",
                )
    order = list(MAPPING_RULES)
    problems.sort(key=lambda p: (order.index(p.rule), p.account, p.places))
    return MappingReport(vendor.id, title, tuple(sorted(by_account)), tuple(problems))


def can_read_chart(system: str) -> bool:
    """Whether the system's client reads its chart back (`accounts` and `vat_codes`), so the check can run."""
    client = registry.get(system).client_class
    return callable(getattr(client, "accounts", None)) and callable(getattr(client, "vat_codes", None))


def _places(places: Sequence[str]) -> str:
    shown = ", ".join(places[:_MAX_PLACES])
    return shown if len(places) <= _MAX_PLACES else f"{shown} and {len(places) - _MAX_PLACES} more"


def _named(account: LedgerAccount) -> str:
    return f"'{account.name}' " if account.name else ""


def _code_text(code: str | None) -> str:
    return code if code is not None else "none"


# ---------------------------------------------------------------------------------------------
# Once a day, in a DAG run


metadata = MetaData()
checks_table = Table(
    "kassebro_mapping_checks",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    Column("ledger_day", Date, primary_key=True),  # the day in the vendor's time zone the check passed
    Column("digest", String(64), primary_key=True),  # of the mapping and the ledger target it was checked for
    Column("ledger_system", String(32), nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)


class MappingChecks:
    """The passes of the mapping check, per vendor, ledger day and mapping digest; in the journal's
    database (same URL). Only passes are kept."""

    def __init__(self, url: str | None = None) -> None:
        self.engine: Engine = Journal(url).engine
        create_tables(metadata, self.engine)

    def passed(self, vendor_id: str, day: dt.date, digest: str) -> dict | None:
        c = checks_table.c
        query = select(checks_table).where(c.vendor_id == vendor_id, c.ledger_day == day, c.digest == digest)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def remember(self, report: MappingReport, day: dt.date, digest: str) -> None:
        """Keep a pass; the vendor's passes of earlier days go (one day's is all a run asks for)."""
        if not report.ok:
            raise ValueError("only a passing mapping check is kept")
        c = checks_table.c
        with self.engine.begin() as conn:
            conn.execute(delete(checks_table).where(and_(c.vendor_id == report.vendor_id, c.ledger_day < day)))
            conn.execute(
                delete(checks_table).where(c.vendor_id == report.vendor_id, c.ledger_day == day, c.digest == digest)
            )
            conn.execute(
                insert(checks_table).values(
                    vendor_id=report.vendor_id,
                    ledger_day=day,
                    digest=digest,
                    ledger_system=report.system,
                    accounts=len(report.accounts),
                    checked_at=report.checked_at,
                )
            )


def mapping_digest(vendor: Vendor) -> str:
    """What a pass depends on: the mapping and the ledger it is checked against."""
    payload = {"mapping": vendor.mapping.model_dump(mode="json"), "ledger": vendor.ledger.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def ledger_day(vendor: Vendor, now: dt.datetime | None = None) -> dt.date:
    """Today in the vendor's time zone: the day a pass is kept for."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(vendor.timezone)).date()


def check_once_a_day(
    vendor: Vendor,
    ledger: Callable[[], ReadBack],
    *,
    store: MappingChecks | None = None,
    now: dt.datetime | None = None,
) -> MappingReport:
    """`check_mapping`, reading the chart at most once a ledger day per vendor while it passes.

    `ledger` makes the client only when the chart must be read. A pass of the same vendor, day
    and mapping digest (`mapping_digest`) is reused (`from_cache`); a changed mapping or ledger
    target is checked again, and a failure is always checked again on the next call.
    """
    store = store or MappingChecks()
    day = ledger_day(vendor, now)
    digest = mapping_digest(vendor)
    kept = store.passed(vendor.id, day, digest)
    if kept is not None:
        checked_at = kept["checked_at"]
        if checked_at.tzinfo is None:  # SQLite gives naive datetimes back
            checked_at = checked_at.replace(tzinfo=dt.UTC)
        accounts = tuple(sorted({r.account.strip() for r in vendor_routes(vendor)}))
        return MappingReport(vendor.id, kept["ledger_system"], accounts, (), checked_at, from_cache=True)
    report = check_mapping(vendor, ledger())
    if report.ok:
        store.remember(report, day, digest)
    return report


def hold_back(vendor: Vendor, days: Iterable[dt.date], report: MappingReport, journal: Journal) -> MappingRefused:
    """Record the days a failing mapping holds back as failed in the journal (not those with nothing
    to post, nor those posted: the journal keeps those), and give the error naming them all."""
    if report.ok:
        raise ValueError("a passing mapping holds nothing back")
    held = sorted(set(days))
    listed = ", ".join(d.isoformat() for d in held) or "no days"
    headline = f"vendor {vendor.id}: days {listed} held back, nothing posted: {report.summary}"
    details = "; ".join(f"[{p.rule}] {p.message}" for p in report.problems)
    for day in held:
        entry = journal.get(vendor.id, day)
        if entry is not None and entry.state in NOTHING_TO_POST:
            continue
        journal.record(
            vendor.id,
            day,
            "failed",
            external_ref=external_ref(vendor.id, day),
            ledger_system=vendor.ledger.system,
            message=(
                f"vendor {vendor.id}, day {day.isoformat()} held back: the mapping does not fit "
                f"{report.system} (mapping check): {details}"
            ),
        )
    return MappingRefused(report, headline)
