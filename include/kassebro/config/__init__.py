"""Vendor configuration as data: YAML files validated by pydantic, inheriting a ledger template.

Layers, later wins: `config/defaults.yaml` (settings every vendor shares) -> the vendor file; the
vendor's `mapping` is laid over its ledger template (`config/ledgers/<template>.yaml`, "default"
unless it says otherwise). A bad file is reported as an Issue naming the file, the field and the
reason; it never stops the other vendors from loading.

Imported by the DAG file at parse time: keep it to pydantic and yaml (no pandas, no DB, no network).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kassebro.core.errors import ConfigError, Issue
from kassebro.ledgers import registry

try:  # the C loader is ~10x faster; it matters when parsing a thousand vendor files
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

PROJECT_DIR = Path(__file__).resolve().parents[3]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AccountNumber = Annotated[str, Field(pattern=r"^\d{4,6}(:\d{5})?$")]
"""A ledger account: NS 4102 number, optionally with a Fiken sub-account (`1920:10001`)."""
Key = Annotated[str, Field(min_length=1, max_length=40)]
"""An accounting key: the POS's article-group id, or a predefined SAF-T code (04xxx, 12xxx)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountingKey(_Strict):
    """Where sales of one article group are booked.

    `account` takes the key's sales at its normal VAT rate; `alternative_accounts` maps another
    rate (percent, e.g. 15) to its own account, so eat-in and take-away coffee land apart.
    `vat_code_accounts` maps a standard tax code to an account and wins over the rate, for the
    two 0 % codes a rate cannot tell apart: "5" (exempt, 3100) and "6" (outside the VAT Act, 3200).
    `vat: false` marks money that is not revenue (gift cards sold, deposits): no VAT code.
    """

    account: AccountNumber
    alternative_accounts: dict[int, AccountNumber] = Field(default_factory=dict)
    vat_code_accounts: dict[str, AccountNumber] = Field(default_factory=dict)
    vat: bool = True
    description: str = ""

    def account_for(self, vat_rate_bp: int, std_vat_code: str = "") -> str:
        """The account a line at this VAT rate (basis points) and standard tax code is booked to."""
        if std_vat_code and std_vat_code in self.vat_code_accounts:
            return self.vat_code_accounts[std_vat_code]
        if vat_rate_bp % 100 == 0 and vat_rate_bp // 100 in self.alternative_accounts:
            return self.alternative_accounts[vat_rate_bp // 100]
        return self.account


class LedgerMap(_Strict):
    """The chart-of-accounts mapping ("kontoplan"): a template, or a template with overrides.

    Besides the accounting keys and payment types it names the special accounts of the booking
    rules (docs/booking-rules.md): tips, cash rounding, cash difference, the receivable of credit
    sales, and the limits above which a day is held back.

    - `net_returns`: False (default) books returns as their own "Retur ..." lines; True nets them
      into the sale line of the same account, VAT code and dimensions.
    - `use_line_projects`: False (default) puts every line on the vendor's department/project;
      True lets a sales line's own cost centre (-> department) and project override them.
    - `vat_tolerance_ore`, `vat_tolerance_per_100_figures_ore`: the largest allowed |POS VAT - VAT
      recomputed from gross| per VAT code is the per-100 figure times the POS VAT figures (lines and
      discount parts, each rounded on its own) / 100, never less than `vat_tolerance_ore`.
    - `max_rounding_per_receipt_ore`: cash rounding allowed on one receipt (whole kroner: 0.50);
      the day's rounding may be that times the receipts rounded, never less than `max_rounding_ore`.
    - `max_cash_difference_ore`: the largest difference one cash count (11008) may show.
    - `credit_sales`: "receivable" (default) books the unpaid part of credit sales to
      `receivable_account` with the customer in the line's text; "customer_ledger" books it to
      `customer_account` (1500) with the customer on the posting, so it shows in the ledger's customer
      sub-ledger (ageing, dunning): where the system takes a customer on a voucher line through
      kassebro (`LedgerSystem.customer_postings`), else the "receivable" booking, as the config check says.
      "invoice" (Tripletex only) makes each credit sale a Tripletex invoice, not marked paid, and
      leaves it out of the day's voucher (booking.credit_invoices says why and what is held back).
    - `credit_invoice_email`: with "invoice", whether Tripletex e-mails each invoice to the customer.
    - `customer_number_start`: new ledger customers made for POS customers are numbered from here.
    So the limits grow with the day: a right day of 50,000 receipts passes, a wrong one still fails.
    """

    name: str = "Default"
    accounting_keys: dict[Key, AccountingKey] = Field(default_factory=dict)
    payment_types: dict[Key, AccountNumber] = Field(default_factory=dict)
    tips_account: AccountNumber = "2910"
    rounding_account: AccountNumber = "7798"
    max_rounding_ore: int = Field(default=5_000, ge=0)
    max_rounding_per_receipt_ore: int = Field(default=50, ge=0)
    receivable_account: AccountNumber = "1570"
    cash_difference_account: AccountNumber = "7799"
    max_cash_difference_ore: int = Field(default=50_000, ge=0)
    vat_tolerance_ore: int = Field(default=100, ge=0)
    vat_tolerance_per_100_figures_ore: int = Field(default=50, ge=0)
    net_returns: bool = False
    use_line_projects: bool = False
    credit_sales: Literal["receivable", "customer_ledger", "invoice"] = "receivable"
    credit_invoice_email: bool = True
    customer_account: AccountNumber = "1500"
    customer_number_start: int = Field(default=100_000, ge=1)

    def key_for(self, art_group_id: str, art_group_code: str = "") -> AccountingKey | None:
        """The vendor's own article group wins over its predefined SAF-T code."""
        return self.accounting_keys.get(art_group_id) or self.accounting_keys.get(art_group_code)

    def payment_account(self, payment_type: str, payment_code: str = "") -> str | None:
        return self.payment_types.get(payment_type) or self.payment_types.get(payment_code)

    def check_for_system(self, system: str) -> list[str]:
        """Problems this mapping has for an accounting system; empty when it fits.

        A system with a `payment_account` (Fiken books every POS payment through 1901, optionally
        a sub-account `1901:NNNNN`) makes any other payment account a problem there.
        """
        problems: list[str] = []
        ledger = registry.get(system)
        if ledger.payment_account:
            wanted = ledger.payment_account
            for key, account in sorted(self.payment_types.items()):
                if account.split(":")[0] != wanted:
                    problems.append(
                        f"payment type {key!r} is mapped to {account}; {ledger.title} needs {wanted} "
                        f"(or a sub-account {wanted}:NNNNN)"
                    )
        return problems


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"


class Schedule(_Strict):
    """When the day's report is sent: weekdays and a local time, after the shop has closed.

    A run posts the business days that closed since the previous run, so a Monday run of a
    Mon-Fri schedule carries Friday, Saturday and Sunday. `times` gives each weekday its own
    time instead (a later report on Saturdays, none on Mondays: `{tue: "02:30", ..., sat: "05:00"}`);
    then only its weekdays report. All times are on one side of noon: a report in the small hours
    covers the day before, one from noon the same day.
    """

    days: tuple[Weekday, ...] = WEEKDAYS
    time: str = Field(default="02:30", pattern=_CLOCK)
    times: dict[Weekday, Annotated[str, Field(pattern=_CLOCK)]] = {}

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        if not days:
            raise ValueError("at least one weekday is needed")
        return tuple(sorted(set(days), key=WEEKDAYS.index))

    @model_validator(mode="after")
    def _one_side_of_noon(self) -> Schedule:
        sides = {int(t[:2]) >= 12 for t in self.report_times.values()}
        if len(sides) > 1:
            raise ValueError(
                "schedule times must all be before noon (each covers the day before) or all from noon "
                f"(each covers its own day): {self.report_times}"
            )
        return self

    @property
    def report_times(self) -> dict[str, str]:
        """Weekday -> local report time, for the weekdays that report."""
        if self.times:
            return {d: self.times[d] for d in WEEKDAYS if d in self.times}  # type: ignore[index]
        return {d: self.time for d in self.days}

    @property
    def crons(self) -> tuple[str, ...]:
        """One cron expression per distinct report time."""
        by_time: dict[str, list[str]] = {}
        for day, clock in self.report_times.items():
            by_time.setdefault(clock, []).append(day)
        crons = []
        for clock, days in sorted(by_time.items()):
            hour, minute = clock.split(":")
            crons.append(f"{int(minute)} {int(hour)} * * {'*' if len(days) == 7 else ','.join(days)}")
        return tuple(crons)

    @property
    def cron(self) -> str:
        return " | ".join(self.crons)

    @property
    def posts_same_day(self) -> bool:
        """A report sent in the afternoon or evening covers that same day; one sent in the
        small hours covers the day before."""
        return int(next(iter(self.report_times.values()))[:2]) >= 12


class Alert(_Strict):
    """Who hears when a night is not posted in time: an Airflow deadline alert on each vendor DAG
    whose run is not done `post_by` (local time, after the report time of its run) mails `to`
    through the Airflow SMTP connection `smtp_connection`. No `to`: no alert."""

    post_by: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    to: tuple[str, ...] = ()
    smtp_connection: str = Field(default="smtp_default", pattern=r"^[A-Za-z0-9_.-]+$")
    from_email: str = "kassebro@localhost"


class Source(_Strict):
    """Where the vendor's sales come from.

    `saft`: `path` to a SAF-T Cash Register file or directory, relative to the data directory.
    `sql`: the POS database (docs/pos-database.md), by Airflow `connection` id (keeps the password
    out of this file) or by a passwordless `url` (e.g. `sqlite:///pos/cafe.sqlite`).
    `z_report_amounts` (SAF-T): how the Z reports' `cashSaleAmnt` is read. `auto` decides each
    report from its own totals (Skatteetaten's 2016 example writes it gross, the 2021 one net);
    `gross` or `net` pins it for a POS whose reports cannot tell.
    """

    kind: Literal["saft", "sql"] = "saft"
    path: str | None = None
    url: str | None = None
    connection: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    z_report_amounts: Literal["auto", "gross", "net"] = "auto"

    @model_validator(mode="after")
    def _one_location(self) -> Source:
        if self.kind == "saft" and not self.path:
            raise ValueError("a saft source needs a path")
        if self.kind == "sql" and bool(self.url) == bool(self.connection):
            raise ValueError("a sql source needs exactly one of url or connection")
        if self.url and re.search(r"://[^/@]*:[^/@]*@", self.url):
            raise ValueError("put database passwords in an Airflow connection, not in the vendor file")
        return self


# The claim's defaults per system are in the ledger registry (`LedgerSystem.lease_seconds`,
# `visibility_seconds`). The lease: each client's single call is bounded by its timeout and the
# lease is renewed in the background, so two minutes only bounds how long a dead holder blocks
# its day. The visibility window is inferred, not read in any API's documentation: how long after
# a post is sent its voucher may still be missing from lookups (the client's 30 s timeout plus
# time for the ledger's search to show it), longer for systems whose lookups search lists.
MAX_RETRY_DELAY_SECONDS = 3600


def _system_names(schema: dict[str, Any]) -> None:
    """The JSON schema of `ledger.system`: the registry's systems, when the schema is made."""
    schema["enum"] = list(registry.names())


def _known_system(name: str) -> str:
    registry.get(name)  # raises ValueError naming the known systems
    return name


def retry_span_seconds(retries: int, delay_seconds: int) -> int:
    """The least time from a task's first failure to its last retry: Airflow doubles the delay
    each retry (from `delay_seconds`, capped at an hour) and only adds jitter on top."""
    return sum(min(delay_seconds * 2**i, MAX_RETRY_DELAY_SECONDS) for i in range(retries))


class LedgerTarget(_Strict):
    """The vendor's accounting system: which one, through which Airflow connection.

    `on_change`: what happens when a day's sales change after it was posted: `correction` posts a
    voucher with the difference; `reverse` posts a voucher reversing what was booked, then the day
    again in full. Either way nothing is overwritten and every voucher is kept.
    """

    system: Annotated[str, AfterValidator(_known_system), Field(json_schema_extra=_system_names)] = "tripletex"
    """One of the ledger registry's systems (`kassebro.ledgers.registry`)."""
    connection: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    send_to_ledger: bool = True
    on_change: Literal["correction", "reverse"] = "correction"
    company: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """The ledger company when the pool must be per company: Fiken's company slug (Fiken allows
    one request at a time per company: each company gets a pool, and its requests a lock)."""
    client_org_number: str | None = Field(default=None, pattern=r"^\d{3} ?\d{3} ?\d{3}$")
    """Tripletex for accounting firms: the connection holds the firm's tokens, and this is the
    organisation number of the client company to post to (looked up with `/company/>withLoginAccess`)."""
    lease_seconds: int | None = Field(default=None, ge=1, le=3600)
    """How long a claim on a day outlives its holder's last renewal (the holder renews every third
    of it). After a killed worker, a retry takes the day over this long after; default per system
    (the registry's `lease_seconds`)."""

    visibility_seconds: int | None = Field(default=None, ge=0, le=3600)
    """After a post whose answer was lost (or a killed worker's), how long kassebro keeps looking
    for its voucher before it may post again; default per system (the registry's `visibility_seconds`)."""

    @property
    def lease(self) -> int:
        return self.lease_seconds or registry.get(self.system).lease_seconds

    @property
    def visibility(self) -> int:
        if self.visibility_seconds is None:
            return registry.get(self.system).visibility_seconds
        return self.visibility_seconds

    @model_validator(mode="after")
    def _what_the_system_can_do(self) -> LedgerTarget:
        system = registry.get(self.system)
        if system.company_required and not self.company:
            raise ValueError(f"a {system.title} ledger needs company: <the {system.title} company slug>")
        if not system.approval and not self.send_to_ledger:
            raise ValueError(f"send_to_ledger: false is not possible with {system.title}: its API has no approval path")
        if self.client_org_number and not system.firm_clients:
            firms = " or ".join(s.title for s in registry.systems() if s.firm_clients)
            raise ValueError(f"client_org_number is for {firms} accounting firms only, not {system.title}")
        return self


def known_zone(name: str) -> str:
    """The name of a time zone this machine knows, else ValueError (for pydantic validators)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def valid_org_number(text: str) -> str:
    """A Norwegian organisation number: nine digits (spaces allowed) whose last is the mod-11 check digit."""
    digits = text.replace(" ", "")
    if not re.fullmatch(r"\d{9}", digits):
        raise ValueError(f"{text!r} is not an organisation number (nine digits)")
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    if check == 10 or check != int(digits[8]):
        raise ValueError(f"{text!r} is not an organisation number (its check digit is wrong)")
    return digits


class Vendor(_Strict):
    """One shop: its schedule, sales source, ledger and mapping. One DAG per vendor.

    `organisation_number`: the company the shop's sales files must belong to (checked against
    every file header and Z report); a Tripletex accounting firm's `ledger.client_org_number`
    stands in when it is left out. `currency`: what the POS must report in (the ledger's).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,62}$")
    name: str
    organisation_number: str | None = None
    currency: str = Field(default="NOK", pattern=r"^[A-Z]{3}$")
    enabled_since: dt.date
    timezone: str = "Europe/Oslo"
    day_start_hour: int = Field(default=0, ge=0, le=12)
    schedule: Schedule = Schedule()
    source: Source
    ledger: LedgerTarget
    department: str | None = None
    project: str | None = None
    owner: str = "data-team"
    tags: tuple[str, ...] = ()
    retries: int = Field(default=3, ge=0, le=10)
    retry_delay_seconds: int = Field(default=60, ge=1, le=3600)
    alert: Alert = Alert()
    opening_days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = WEEKDAYS
    """The shop's calendar: a day off it with no sales data is closed (done, nothing to post)."""
    closed_dates: tuple[dt.date, ...] = ()
    """Dates the shop is closed (holidays): closed like a day off `opening_days` when no data comes."""
    data_deadline_hours: float = Field(default=4, ge=0, le=72)
    """How long after the day's report time its sales data may come: a day of the shop's calendar
    with no data by then fails loudly ("is the export running?")."""
    data_poke_seconds: int = Field(default=300, ge=1, le=3600)
    """How often a day waiting for its data looks again (the task is rescheduled in between)."""
    lookback_days: int = Field(default=7, ge=0, le=62)
    """Each scheduled run looks again at this many days before its own that were waiting, missing
    their data or closed by the calendar: data that came late is booked then, once."""
    mapping: LedgerMap
    config_file: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        return known_zone(name)

    @field_validator("organisation_number")
    @classmethod
    def _org_number(cls, value: str | None) -> str | None:
        return None if value is None else valid_org_number(value)

    def is_open(self, day: dt.date) -> bool:
        """Whether the shop's calendar expects sales on `day`."""
        return WEEKDAYS[day.weekday()] in self.opening_days and day not in self.closed_dates

    @property
    def org_number(self) -> str | None:
        """The organisation number the vendor's files must carry, or None when unknown."""
        firm_client = self.ledger.client_org_number
        return self.organisation_number or (firm_client.replace(" ", "") if firm_client else None)

    @property
    def customer_postings(self) -> bool:
        """Credit sales go to the ledger's customer accounts with the customer on the posting."""
        return self.mapping.credit_sales == "customer_ledger" and registry.get(self.ledger.system).customer_postings

    @property
    def dag_id(self) -> str:
        return f"vendor_{self.id}"

    @property
    def pool(self) -> str:
        """The Airflow pool that caps concurrent calls to the vendor's ledger (per company for Fiken)."""
        return registry.get(self.ledger.system).pool(self.ledger.company)

    @model_validator(mode="after")
    def _mapping_fits_the_system(self) -> Vendor:
        problems = self.mapping.check_for_system(self.ledger.system)
        system = registry.get(self.ledger.system)
        if self.mapping.credit_sales == "invoice" and self.ledger.system != "tripletex":
            problems.append(
                f"credit_sales: invoice makes Tripletex invoices; {system.title} has no invoice flow in kassebro "
                "(use customer_ledger or receivable)"
            )
        if not system.dimensions and (self.department or self.project):
            problems.append(
                f"{system.title} vouchers cannot carry a department or project through the API; "
                "remove department/project"
            )
        if problems:
            raise ValueError(f"mapping does not fit {self.ledger.system}: " + "; ".join(problems))
        span = retry_span_seconds(self.retries, self.retry_delay_seconds)
        needed = self.ledger.lease + self.ledger.visibility
        if self.retries and span <= needed:
            raise ValueError(
                f"the retries ({self.retries}, from {self.retry_delay_seconds} s doubling) end {span} s after the "
                f"first failure, before a dead holder's claim expires and its post may still show "
                f"({self.ledger.lease} + {self.ledger.visibility} s): the day would wait for a person; raise "
                "retries or retry_delay_seconds, or lower ledger.lease_seconds or ledger.visibility_seconds"
            )
        firm_client = (self.ledger.client_org_number or "").replace(" ", "")
        if self.organisation_number and firm_client and firm_client != self.organisation_number:
            raise ValueError(
                f"organisation_number {self.organisation_number} and ledger.client_org_number {firm_client} "
                "name two companies"
            )
        return self


def vendor_warnings(vendor: Vendor) -> list[str]:
    """What a vendor file lacks that the product can run without, but not fully check."""
    warnings = []
    if vendor.mapping.credit_sales == "customer_ledger" and not vendor.customer_postings:
        title = registry.get(vendor.ledger.system).title
        warnings.append(
            f"credit_sales: customer_ledger: {title} takes no customer on a voucher line through kassebro, so "
            f"credit sales are booked to {vendor.mapping.receivable_account} with the customer in the line's text"
        )
    if vendor.org_number is None:
        warnings.append(
            "no organisation_number: the control that its sales files belong to it cannot run "
            "(set organisation_number: <nine digits>)"
        )
    return warnings


@dataclass(frozen=True)
class ConfigSet:
    """Every vendor that loaded, and an Issue per file that did not."""

    vendors: tuple[Vendor, ...]
    issues: tuple[Issue, ...]
    broken_files: tuple[Path, ...]


def config_dir() -> Path:
    """`$KASSEBRO_CONFIG` if set (the demo points it at its generated copy), else `config/`."""
    return Path(os.environ.get("KASSEBRO_CONFIG") or PROJECT_DIR / "config")


def _read_yaml(path: Path) -> Any:
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader class


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def _issues_from(path: Path, exc: ValidationError) -> list[Issue]:
    return [
        Issue(str(path), "config", f"field {_field_path(err['loc'])}: {err['msg']}")
        for err in exc.errors(include_url=False)
    ]


class _ConfigReader:
    """Reads templates and defaults once per load, so a thousand vendors cost one read each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates: dict[str, dict] = {}
        self._extending: list[str] = []
        defaults_file = root / "defaults.yaml"
        self.defaults: dict = (_read_yaml(defaults_file) or {}) if defaults_file.exists() else {}

    def template(self, name: str) -> dict:
        if name not in self.templates:
            path = self.root / "ledgers" / f"{name}.yaml"
            if not path.exists():
                raise ValueError(f"ledger template {name!r} not found ({path})")
            raw = _read_yaml(path) or {}
            parent = raw.pop("extends", None) if isinstance(raw, dict) else None
            if parent:  # a system's template: another template with some keys replaced
                if name in self._extending:
                    raise ValueError(f"ledger templates extend each other in a circle: {' -> '.join(self._extending)}")
                self._extending.append(name)
                try:
                    raw = _deep_merge(self.template(str(parent)), raw)
                finally:
                    self._extending.pop()
            try:
                LedgerMap.model_validate(raw)
            except ValidationError as exc:
                raise ConfigError(_issues_from(path, exc)) from None
            self.templates[name] = raw
        return self.templates[name]

    def vendor(self, path: Path) -> Vendor:
        try:
            raw = _read_yaml(path)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(Issue(where, "yaml", f"not valid YAML: {exc}")) from None
        if not isinstance(raw, dict):
            raise ConfigError(Issue(str(path), "config", "the file must hold a mapping of fields"))
        data = _deep_merge(self.defaults, raw)
        mapping = dict(data.get("mapping") or {})
        template = mapping.pop("template", "default")
        try:
            base = self.template(template) if template else {}
        except ValueError as exc:
            raise ConfigError(Issue(str(path), "config", f"field mapping.template: {exc}")) from None
        data["mapping"] = _deep_merge(base, mapping)
        data["config_file"] = str(path)
        if path.stem != data.get("id"):
            raise ConfigError(
                Issue(
                    str(path),
                    "config",
                    f"field id: {data.get('id')!r} must equal the file name {path.stem!r}",
                )
            )
        try:
            return Vendor.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_issues_from(path, exc)) from None


def vendor_files(root: Path | None = None) -> list[Path]:
    root = root or config_dir()
    return sorted((root / "vendors").glob("*.yaml"))


def load_vendors(root: Path | None = None) -> ConfigSet:
    """Load every vendor file under `<root>/vendors`, sorted; collect errors instead of raising."""
    root = root or config_dir()
    loader = _ConfigReader(root)
    vendors: list[Vendor] = []
    issues: list[Issue] = []
    broken: list[Path] = []
    for path in vendor_files(root):
        try:
            vendors.append(loader.vendor(path))
        except ConfigError as exc:
            issues.extend(exc.issues)
            broken.append(path)
    return ConfigSet(tuple(vendors), tuple(issues), tuple(broken))


def load_vendor(vendor_id: str, root: Path | None = None) -> Vendor:
    """Load one vendor by id; raises ConfigError with every issue of its file."""
    root = root or config_dir()
    path = root / "vendors" / f"{vendor_id}.yaml"
    if not path.exists():
        raise ConfigError(Issue(str(path), "config", f"no vendor file for {vendor_id!r}"))
    return _ConfigReader(root).vendor(path)


def data_dir() -> Path:
    """Where sales sources, work files and reports live: `$KASSEBRO_DATA` or `<project>/.kassebro/data`."""
    return Path(os.environ.get("KASSEBRO_DATA") or PROJECT_DIR / ".kassebro" / "data")


def work_url() -> str:
    """Where each vendor-day's work files live (core.workfiles): `KASSEBRO_WORK_URL`, else
    `file://<data dir>/work`. Any URL Airflow's ObjectStoragePath takes (file, s3, gs ...)."""
    url = os.environ.get("KASSEBRO_WORK_URL", "").strip()
    return url.rstrip("/") if url else (data_dir() / "work").resolve().as_uri()


def export_url() -> str:
    """Where the year-end exports are written (`readback.yearend`), one folder per connection,
    company and year: `KASSEBRO_EXPORT_URL`, else `file://<data dir>/exports`. Any URL Airflow's
    ObjectStoragePath takes: with Celery workers on several hosts, a shared one (as KASSEBRO_WORK_URL)."""
    url = os.environ.get("KASSEBRO_EXPORT_URL", "").strip()
    return url.rstrip("/") if url else (data_dir() / "exports").resolve().as_uri()


def journal_url() -> str:
    """The journal's database (the SAF-T file index shares it): `KASSEBRO_JOURNAL_URL`, else a
    SQLite file in the data directory."""
    url = os.environ.get("KASSEBRO_JOURNAL_URL")
    if url:
        return url
    path = data_dir() / "journal.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"
