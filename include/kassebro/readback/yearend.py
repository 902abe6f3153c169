"""The year-end export: what a ledger company holds for a fiscal year, read back and written as a
trial balance and the general-ledger transactions (CSV and Parquet) and as one SAF-T Financial 1.30
file that validates against Skatteetaten's schema (shipped in `kassebro/data/saft-financial/`).

Everything comes from the ledger through the ReadBack protocol (`kassebro.ledgers.base`): the
year's `balances` and `postings` (1 January to 1 January, the end exclusive), the chart
(`accounts`) for the account names and the `vat_codes` for the tax table. Nothing is computed
that the ledger did not say, and nothing is written unless it adds up:

- every account's movement must be the sum of its postings and its closing its opening plus its
  movement (else the ledger's balance and its postings disagree, and a file would carry both);
- the debit and credit totals of the postings must be equal (`TotalDebit`/`TotalCredit`);
- the XML must validate against the schema.
A failure raises YearEndError naming the company, the year and what differs; no file is left.

The SAF-T file follows the schema and Skatteetaten's 1.30 example file
(`SAF-T_Financial_1.3/Example Files/generated_auditfile_formatted_v_1.30.xml`): the header's
SelectionCriteria are the periods 1 to 12 of the year, TaxAccountingBasis "A"; every account with a
balance or a posting in the year is a GeneralLedgerAccounts/Account with its opening and closing
on the debit side (zero included) or the credit side; one Journal ("GL") holds a Transaction per
voucher (its number as TransactionID, its external reference, else its first posting text, as
Description; the ledgers read back no entry dates, so SystemEntryDate and GLPostingDate are the
voucher date, as the schema says to do then) and a Line per posting, net amounts as the ledger sums
them, the posting's own text (possibly empty) as Description. A line with a VAT code carries
TaxInformation: its net amount as TaxBase, gross - net as the tax, on the debit side when the tax
is a debit; a zero-rated line (its code's rate 0) carries its base and a tax of 0.00. The VAT rows
(the ledger's own, `system_generated`, and rows that carry their line's code with gross = net at a
rate above zero, as PowerOffice Go's, Xledger's and Duett's read back unflagged) are lines without
TaxInformation, as the example's 2700/2710 lines are (their tax is the taxed line's). Amounts are kroner with two
decimals; the file is named `SAF-T Financial_<organisation number>_<yyyymmddhhmmss>_1_1.xml`
(Skatteetaten's naming: type, owner, time of creation, file 1 of 1).

GroupingCategory/GroupingCode: the 1.30 schema requires each account to be mapped to a code of a
grouping code list; the list shipped is the næringsspesifikasjon (`naeringsspesifikasjon.csv`),
whose four-digit codes are named after NS 4102 standard accounts. The list itself defines codes,
not a rule from an account number to a code, so the rule is kassebro's (INFERRED, see
`NS4102_GROUPING`): the account's first four digits fall in a range of NS 4102 account numbers,
each range mapped to one code of the list (the code's category is the list's). It reproduces the
official example's mapping (1500, 1920, 2400, 3000 to themselves; 2700 and 2710 to 2740; 4000 to
4005). An account outside every range (or not numeric) refuses the export unless `grouping` names
its code; `grouping` overrides the rule for any account.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata, resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from kassebro.config import Vendor, valid_org_number
from kassebro.core import saft_codes, workfiles
from kassebro.core.errors import KassebroError
from kassebro.core.money import Ore, format_ore, ore_to_decimal
from kassebro.core.workfiles import WorkPath
from kassebro.ledgers.base import AccountBalance, LedgerAccount, LedgerPosting, LedgerVatCode, ReadBack
from kassebro.sources.xml_safety import scan

__all__ = [
    "NAMESPACE",
    "NS4102_GROUPING",
    "CompanyInfo",
    "ExportResult",
    "ExportTarget",
    "Grouping",
    "LedgerYear",
    "YearEndError",
    "build_audit_file",
    "export_target",
    "export_year",
    "grouping_codes",
    "grouping_for",
    "parse_grouping",
    "read_year",
    "saft_file_name",
    "schema",
    "validate_file",
    "write_export",
]

NAMESPACE = "urn:StandardAuditFile-Taxation-Financial:NO"
SCHEMA_FILE = "Norwegian_SAF-T_Financial_Schema_v_1.30.xsd"
GROUPING_FILE = "naeringsspesifikasjon.csv"
AUDIT_FILE_VERSION = "1.30"
ZONE = ZoneInfo("Europe/Oslo")

_SAFE = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}
_N = f"{{{NAMESPACE}}}"
_LONG, _MIDDLE2, _MIDDLE1, _SHORT = 256, 70, 35, 18  # SAFlongtextType ... SAFshorttextType lengths

NS4102_GROUPING: tuple[tuple[int, str | None], ...] = (
    # (first NS 4102 account number of a range, næringsspesifikasjon code); a range runs to the
    # next entry's first number; None: no code fits the range without knowing more (give one).
    (1000, "1000"), (1020, "1020"), (1070, "1070"), (1080, "1080"),
    (1100, "1115"),  # Bygninger: "bygg, anlegg, hotell" (a shop's own forretningsbygg is 1105)
    (1120, "1120"), (1130, "1130"), (1140, "1140"), (1150, "1150"), (1160, "1160"), (1170, None),
    (1180, "1180"), (1190, None),
    (1200, "1205"), (1220, "1221"),
    (1230, "1205"),  # Biler, andre transportmidler, inventar: saldogruppe d (a van is 1238)
    (1260, "1120"), (1270, "1205"), (1280, "1280"), (1290, "1290"),
    (1300, "1313"), (1320, "1320"), (1330, "1332"), (1340, "1340"), (1350, "1350"), (1360, "1360"),
    (1370, "1370"), (1380, "1380"), (1390, "1390"),
    (1400, "1400"), (1480, "1570"),
    (1500, "1500"), (1530, "1530"), (1540, None), (1550, "1501"), (1560, "1560"), (1565, "1565"),
    (1570, "1570"),  # 1570-1799: other short-term receivables, VAT receivable, prepaid costs
    (1780, "1780"), (1790, "1570"),
    (1800, "1800"), (1810, "1810"), (1820, "1800"), (1830, "1830"), (1840, "1840"), (1850, None),
    (1870, "1880"),
    (1900, "1900"), (1920, "1920"), (1950, "1950"), (1960, "1920"),
    (2000, "2000"), (2010, "2010"), (2020, "2020"), (2030, "2030"), (2040, "2043"), (2045, "2045"),
    (2050, "2050"), (2080, "2080"), (2090, None),
    (2100, "2100"), (2120, "2120"), (2130, "2130"), (2140, None), (2160, "2160"), (2180, "2180"),
    (2190, None),
    (2200, "2200"), (2210, "2210"), (2220, "2220"), (2230, None), (2250, "2250"), (2260, "2260"),
    (2270, None), (2280, "2280"), (2290, "2290"),
    (2300, "2310"), (2320, "2320"), (2330, "2330"), (2340, None), (2380, "2380"),
    (2400, "2400"), (2460, "2460"), (2470, None),
    (2500, "2500"), (2510, "2510"), (2520, None),
    (2600, "2600"),
    (2700, "2740"),  # VAT accounts: the official example maps 2700 and 2710 to 2740
    (2770, "2770"), (2790, "2790"),
    (2800, "2800"),
    (2900, "2900"), (2910, "2910"), (2920, "2920"), (2930, "2949"), (2950, "2950"), (2960, "2990"),
    (2970, "2970"), (2980, "2980"), (2990, "2990"),
    (3000, "3000"), (3100, "3100"), (3200, "3200"), (3300, "3300"), (3400, "3400"), (3500, "3500"),
    (3600, "3600"), (3700, "3700"), (3800, "3880"), (3900, "3900"),
    (4000, "4005"),  # purchases and stock change: the official example maps 4000 to 4005
    (4500, "4500"), (4600, None), (4990, "4995"),
    (5000, "5000"), (5300, "5300"), (5400, "5400"), (5420, "5420"), (5500, "5300"), (5600, "5600"),
    (5700, None), (5900, "5900"),
    (6000, "6000"), (6050, "6050"), (6100, "6100"), (6200, "6200"), (6300, "6300"), (6340, "6340"),
    (6360, "6395"), (6400, "6400"), (6440, "6440"), (6450, "6400"), (6500, "6500"), (6600, "6600"),
    (6620, "6695"), (6700, "6700"), (6800, "6995"),
    (7000, "7000"), (7020, "7020"), (7040, "7040"), (7050, None),
    (7100, "7155"), (7140, "7165"), (7150, "7155"), (7160, "7165"), (7170, None),
    (7200, "7295"), (7300, "7330"), (7350, "7350"), (7360, "7370"), (7380, None),
    (7400, "7400"), (7410, "7490"), (7420, "7420"), (7430, "7440"), (7440, None),
    (7500, "7500"), (7550, "7565"), (7570, None),
    (7600, "7600"), (7700, "7700"),
    (7800, "7880"), (7830, "7830"), (7860, "7860"), (7870, None), (7880, "7880"), (7890, None),
    (8000, "8005"), (8030, "8030"), (8040, "8050"), (8060, "8060"), (8070, "8079"), (8080, "8080"),
    (8090, "8090"),
    (8100, "8100"), (8110, "8115"), (8130, "8130"), (8140, "8150"), (8160, "8160"), (8170, "8179"),
    (8180, None),
    (8300, "8300"),
    (8320, None),  # change in deferred tax: 8321 or 8322 depending on its direction
    (8800, "8800"),  # appropriation of the result (Skatteetaten's note on the new code 8800)
    (9000, None),
)  # fmt: skip
"""NS 4102 account ranges -> næringsspesifikasjon codes (INFERRED: the list has no such rule)."""


class YearEndError(KassebroError):
    """The export cannot be written: the ledger's figures do not add up, or an account has no
    grouping code, or the file would not validate. Names the company and the year."""


@dataclass(frozen=True)
class CompanyInfo:
    """The company whose books are exported, as the SAF-T header names it.

    Attributes:
      org_number: the organisation number (nine digits, mod-11 checked; spaces allowed).
      name: the company's name.
      contact_first_name, contact_last_name: the header's contact person; the schema requires
        one (`CompanyHeaderStructure/Contact/ContactPerson`, first and last name).
      telephone: the contact's telephone number, when given.
    """

    org_number: str
    name: str
    contact_first_name: str
    contact_last_name: str
    telephone: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "org_number", valid_org_number(self.org_number))
        for field, limit in (
            ("name", _LONG),
            ("contact_first_name", _MIDDLE1),
            ("contact_last_name", _MIDDLE2),
        ):
            value = getattr(self, field).strip()
            if not value or len(value) > limit:
                raise ValueError(f"{field} must be 1 to {limit} characters, not {getattr(self, field)!r}")
            object.__setattr__(self, field, value)
        if self.telephone is not None and not 0 < len(self.telephone.strip()) <= _SHORT:
            raise ValueError(f"telephone must be 1 to {_SHORT} characters, not {self.telephone!r}")

    def label(self, year: int) -> str:
        return f"{self.name} (organisation number {self.org_number}), {year}"


@dataclass(frozen=True)
class Grouping:
    """One code of the grouping code list: its category, code and Norwegian description."""

    category: str
    code: str
    description: str


@dataclass(frozen=True)
class LedgerYear:
    """What the ledger said about one fiscal year, as read (the export's only input)."""

    system: str
    year: int
    balances: tuple[AccountBalance, ...]
    postings: tuple[LedgerPosting, ...]
    accounts: tuple[LedgerAccount, ...]
    vat_codes: tuple[LedgerVatCode, ...]


@dataclass(frozen=True)
class ExportResult:
    """The files written and the figures they hold.

    Attributes:
      saft_file: the SAF-T Financial XML file.
      trial_balance_csv, trial_balance_parquet: account, name, opening, movement, closing.
      transactions_csv, transactions_parquet: one row per posting.
      accounts, entries, lines: how many accounts, transactions (vouchers) and lines.
      total_debit, total_credit: the sums of the lines, in øre (equal).
    """

    saft_file: WorkPath
    trial_balance_csv: WorkPath
    trial_balance_parquet: WorkPath
    transactions_csv: WorkPath
    transactions_parquet: WorkPath
    accounts: int
    entries: int
    lines: int
    total_debit: Ore
    total_credit: Ore


# ---- the shipped schema and code list ----------------------------------------------------------


def data_dir() -> Traversable:
    """The folder holding the SAF-T Financial schema and grouping code list."""
    return resources.files("kassebro").joinpath("data", "saft-financial")


@functools.cache
def schema() -> etree.XMLSchema:
    """The SAF-T Financial 1.30 XSD shipped with kassebro, parsed once with a safe parser."""
    with resources.as_file(data_dir().joinpath(SCHEMA_FILE)) as xsd:
        unsafe = scan(xsd)
        if unsafe:
            raise YearEndError("the shipped SAF-T Financial schema is unreadable: " + "; ".join(map(str, unsafe)))
        return etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(**_SAFE)))


def validate_file(path: Path | str) -> list[str]:
    """Problems of a SAF-T Financial file (unsafe XML, syntax, schema), one line each; [] when valid."""
    path = Path(path)
    unsafe = scan(path)
    if unsafe:
        return [str(issue) for issue in unsafe]
    try:
        tree = etree.parse(str(path), etree.XMLParser(**_SAFE))
    except etree.XMLSyntaxError as exc:
        return [f"{path}: {exc}"]
    return _schema_errors(tree, str(path))


def _schema_errors(tree: Any, where: str) -> list[str]:
    checker = schema()
    if checker.validate(tree):
        return []
    return [f"{where}:{err.line}: {err.message.replace(_N, '')}" for err in checker.error_log]


@functools.cache
def grouping_codes() -> dict[str, Grouping]:
    """The næringsspesifikasjon code list: code -> Grouping (category, code, description)."""
    text = data_dir().joinpath(GROUPING_FILE).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    return {
        row["GroupingCode"].strip(): Grouping(
            row["GroupingCategory"].strip(), row["GroupingCode"].strip(), row["CodeDescriptionNOB"].strip()
        )
        for row in rows
        if (row.get("GroupingCode") or "").strip()
    }


@functools.cache
def _ranges() -> tuple[list[int], list[str | None]]:
    codes = grouping_codes()
    missing = sorted({code for _, code in NS4102_GROUPING if code is not None and code not in codes})
    if missing:  # a new code list dropped a code the rule names: say so rather than write it
        raise YearEndError(f"the grouping rule names codes the shipped list lacks: {', '.join(missing)}")
    starts = [start for start, _ in NS4102_GROUPING]
    if starts != sorted(set(starts)):
        raise YearEndError("the NS 4102 grouping ranges are not in increasing order")
    return starts, [code for _, code in NS4102_GROUPING]


def grouping_for(account: str, overrides: Mapping[str, str] | None = None) -> Grouping:
    """The GroupingCategory/GroupingCode of an account: the override's code when given, else the
    code of the NS 4102 range the account's first four digits fall in (a sub-account's, such as
    Fiken's `1901:10001`, those of its main account). Raises KeyError, saying
    why, when there is none (or an override names a code the list does not have)."""
    codes = grouping_codes()
    if overrides and account in overrides:
        code = overrides[account]
        if code not in codes:
            raise KeyError(f"account {account}: grouping code {code!r} is not in the næringsspesifikasjon list")
        return codes[code]
    main = account.split(":", 1)[0]  # a sub-account (Fiken's 1901:10001) groups as its main account
    if not (main.isdigit() and len(main) >= 4):
        raise KeyError(f"account {account}: not an NS 4102 account number (four digits or more)")
    starts, targets = _ranges()
    number = int(main[:4])
    index = bisect_right(starts, number) - 1
    code = targets[index] if index >= 0 else None
    if code is None:
        raise KeyError(f"account {account}: no grouping code follows from its number")
    return codes[code]


# ---- whose books: the company behind a ledger connection ----------------------------------------


@dataclass(frozen=True)
class ExportTarget:
    """The company a connection's export is for, and how to reach its books through the connection.

    Attributes:
      company: the header's company (organisation number and name from the vendor files that use
        the connection, unless given).
      client_org_number: an accounting firm's client company (Tripletex), as the vendors name it.
      ledger_company: the system's company slug (Fiken), as the vendors name it.
    """

    company: CompanyInfo
    client_org_number: str | None
    ledger_company: str | None


def export_target(
    vendors: Iterable[Vendor],
    connection: str,
    *,
    contact: str,
    org_number: str | None = None,
    name: str | None = None,
    telephone: str | None = None,
) -> ExportTarget:
    """The company whose books a ledger connection reaches, from the vendor files that post
    through it: their organisation number (`organisation_number`, or a firm's
    `ledger.client_org_number`) and their `name`. `org_number` picks one company of a firm's
    connection, or stands in when no vendor names one; `name` wins over the vendor files' (a shop's
    name in its file may not be the company's). `contact` is "First Last", the header's contact
    person. Raises YearEndError saying which option is missing."""
    users = [v for v in vendors if v.ledger.connection == connection]
    wanted = valid_org_number(org_number) if org_number else None
    if wanted:
        users = [v for v in users if v.org_number == wanted]
    orgs = sorted({v.org_number for v in users if v.org_number})
    if wanted is None:
        if len(orgs) != 1:
            found = f"several companies ({', '.join(orgs)})" if orgs else "no organisation number"
            raise YearEndError(
                f"the vendor files that use connection {connection!r} name {found}: give --org-number"
                + ("" if orgs else " and --name")
            )
        wanted = orgs[0]
        users = [v for v in users if v.org_number == wanted]
    names = sorted({v.name for v in users})
    if not name and len(names) != 1:
        shops = f"several shops ({', '.join(names)})" if names else "no vendor file"
        raise YearEndError(f"organisation number {wanted} on connection {connection!r} has {shops}: give --name")
    first, _, last = contact.strip().rpartition(" ")
    if not first:
        raise YearEndError(f"--contact must be a first and a last name, not {contact!r}")
    firm_clients = {v.ledger.client_org_number.replace(" ", "") for v in users if v.ledger.client_org_number}
    slugs = {v.ledger.company for v in users if v.ledger.company}
    return ExportTarget(
        company=CompanyInfo(wanted, name or names[0], first.strip(), last, telephone),
        client_org_number=firm_clients.pop() if len(firm_clients) == 1 else None,
        ledger_company=slugs.pop() if len(slugs) == 1 else None,
    )


def parse_grouping(items: Iterable[str]) -> dict[str, str]:
    """`ACCOUNT=CODE` items (the command's --grouping) as account -> code; ValueError for another shape."""
    found = {}
    for item in items:
        account, sep, code = item.partition("=")
        if not (sep and account.strip() and code.strip()):
            raise ValueError(f"--grouping {item!r}: give ACCOUNT=CODE, e.g. 1540=1570")
        found[account.strip()] = code.strip()
    return found


# ---- reading the ledger ------------------------------------------------------------------------


def read_year(ledger: ReadBack, year: int) -> LedgerYear:
    """Everything the export needs from the ledger for `year` (1 January to 1 January, exclusive)."""
    missing = [name for name in ("balances", "postings", "accounts", "vat_codes") if not hasattr(ledger, name)]
    if missing:
        system = getattr(ledger, "system", type(ledger).__name__)
        raise YearEndError(f"the {system} client cannot read a year back yet (no {', '.join(missing)})")
    start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    return LedgerYear(
        system=str(getattr(ledger, "system", "")),
        year=year,
        balances=tuple(ledger.balances(start, end)),
        postings=tuple(ledger.postings(start, end)),
        accounts=tuple(ledger.accounts()),
        vat_codes=tuple(ledger.vat_codes()),
    )


def export_year(
    ledger: ReadBack,
    year: int,
    out_dir: Path | str,
    company: CompanyInfo,
    *,
    grouping: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
) -> ExportResult:
    """Read `year` from the ledger and write the trial balance, the transactions and the SAF-T
    Financial file into out_dir. Raises YearEndError (and writes nothing) when the figures do not
    add up, an account has no grouping code, or the file would not validate."""
    return write_export(read_year(ledger, year), out_dir, company, grouping=grouping, created=created)


# ---- the year's figures, checked ---------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    number: str
    name: str
    grouping: Grouping
    opening: Ore
    movement: Ore
    closing: Ore


@dataclass(frozen=True)
class _Transaction:
    transaction_id: str
    voucher_id: str
    date: dt.date
    description: str
    postings: tuple[LedgerPosting, ...]


def _account_key(number: str) -> tuple[int, int, str]:
    return (0, int(number), number) if number.isdigit() else (1, 0, number)


def _trial_balance(data: LedgerYear, company: CompanyInfo, grouping: Mapping[str, str] | None) -> list[_Account]:
    """Every account with a balance or a posting in the year, checked against its postings."""
    label = company.label(data.year)
    names = {a.number: a.name for a in data.accounts}
    balances: dict[str, AccountBalance] = {}
    for balance in data.balances:
        if balance.account in balances:
            raise YearEndError(f"{label}: the ledger reports account {balance.account} twice in its balances")
        balances[balance.account] = balance
    moved: dict[str, Ore] = {}
    for posting in data.postings:
        moved[posting.account] = moved.get(posting.account, 0) + posting.amount
    problems, accounts = [], []
    for number in sorted(set(balances) | set(moved), key=_account_key):
        balance = balances.get(number) or AccountBalance(number, "", 0, 0, 0)  # left out: no balance
        lines = moved.get(number, 0)
        if balance.movement != lines:
            problems.append(
                f"account {number}: the ledger's movement {format_ore(balance.movement)} is not the sum of its "
                f"postings {format_ore(lines)} (difference {format_ore(balance.movement - lines)})"
            )
        if balance.closing != balance.opening + balance.movement:
            problems.append(
                f"account {number}: closing {format_ore(balance.closing)} is not opening "
                f"{format_ore(balance.opening)} + movement {format_ore(balance.movement)}"
            )
        name = (names.get(number) or balance.name).strip()
        if not name:
            problems.append(f"account {number}: the ledger gives it no name (the SAF-T file needs one)")
        try:
            group = grouping_for(number, grouping)
        except KeyError as exc:
            problems.append(f"{exc.args[0]}; name its code with grouping ({number}=<code>)")
            continue
        accounts.append(_Account(number, name[:_LONG], group, balance.opening, balance.movement, balance.closing))
    if problems:
        raise YearEndError(f"{label}: nothing written:\n" + "\n".join(f"- {p}" for p in problems))
    return accounts


def _transactions(data: LedgerYear, company: CompanyInfo) -> list[_Transaction]:
    """The postings grouped per voucher, each with a TransactionID unique in the file."""
    grouped: dict[str, list[LedgerPosting]] = {}
    for posting in data.postings:
        grouped.setdefault(posting.voucher_id, []).append(posting)
    found, seen = [], {}
    for voucher_id, postings in grouped.items():
        transaction_id = (postings[0].voucher_number or voucher_id)[:_MIDDLE2]
        if transaction_id in seen:
            raise YearEndError(
                f"{company.label(data.year)}: vouchers {seen[transaction_id]} and {voucher_id} both read as "
                f"{transaction_id!r}; the SAF-T file needs one TransactionID per voucher"
            )
        seen[transaction_id] = voucher_id
        text = postings[0].external_ref or next((p.description for p in postings if p.description.strip()), "")
        found.append(_Transaction(transaction_id, voucher_id, min(p.date for p in postings), text, tuple(postings)))
    found.sort(key=lambda t: (t.date, _account_key(t.transaction_id.split("-")[0]), t.voucher_id))
    return found


def _check_totals(data: LedgerYear, company: CompanyInfo) -> tuple[Ore, Ore]:
    debit = sum(p.amount for p in data.postings if p.amount > 0)
    credit = -sum(p.amount for p in data.postings if p.amount < 0)
    if debit != credit:
        per_voucher: dict[str, Ore] = {}
        for p in data.postings:
            per_voucher[p.voucher_number or p.voucher_id] = (
                per_voucher.get(p.voucher_number or p.voucher_id, 0) + p.amount
            )
        off = ", ".join(f"{v} ({format_ore(s)})" for v, s in per_voucher.items() if s)
        raise YearEndError(
            f"{company.label(data.year)}: the postings do not balance: total debit {format_ore(debit)}, total "
            f"credit {format_ore(credit)}, difference {format_ore(debit - credit)}"
            + (f"; vouchers that do not sum to zero: {off}" if off else "")
            + "; nothing written"
        )
    return debit, credit


# ---- the SAF-T Financial XML, one small function per structure ---------------------------------


def _el(parent: Any, tag: str, text: str | None = None) -> Any:
    element = etree.SubElement(parent, _N + tag)
    if text is not None:
        element.text = text
    return element


def _kroner(ore: Ore) -> str:
    return format_ore(ore)


def _percent(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def _header(root: Any, company: CompanyInfo, year: int, system: str, created: dt.datetime) -> None:
    header = _el(root, "Header")
    _el(header, "AuditFileVersion", AUDIT_FILE_VERSION)
    _el(header, "AuditFileCountry", "NO")
    _el(header, "AuditFileDateCreated", created.date().isoformat())
    _el(header, "SoftwareCompanyName", "kassebro")
    _el(header, "SoftwareID", "kassebro")
    _el(header, "SoftwareVersion", _software_version()[:_SHORT])
    _company(header, company)
    _el(header, "DefaultCurrencyCode", "NOK")
    _selection(header, year)
    if system:
        _el(header, "HeaderComment", f"The general ledger of {system}, read back by kassebro.")
    _el(header, "TaxAccountingBasis", "A")


def _software_version() -> str:
    try:
        return metadata.version("kassebro")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _company(header: Any, company: CompanyInfo) -> None:
    element = _el(header, "Company")
    _el(element, "RegistrationNumber", company.org_number)
    _el(element, "Name", company.name)
    contact = _el(element, "Contact")
    person = _el(contact, "ContactPerson")
    _el(person, "FirstName", company.contact_first_name)
    _el(person, "LastName", company.contact_last_name)
    if company.telephone:
        _el(contact, "Telephone", company.telephone.strip())


def _selection(header: Any, year: int) -> None:
    selection = _el(header, "SelectionCriteria")
    _el(selection, "PeriodStart", "1")
    _el(selection, "PeriodStartYear", str(year))
    _el(selection, "PeriodEnd", "12")
    _el(selection, "PeriodEndYear", str(year))


def _master_files(root: Any, accounts: Sequence[_Account], tax_codes: Sequence[_TaxCode]) -> None:
    master = _el(root, "MasterFiles")
    ledger_accounts = _el(master, "GeneralLedgerAccounts")
    for account in accounts:
        _account(ledger_accounts, account)
    if tax_codes:
        _tax_table(master, tax_codes)


def _account(parent: Any, account: _Account) -> None:
    element = _el(parent, "Account")
    _el(element, "AccountID", account.number)
    _el(element, "AccountDescription", account.name)
    _el(element, "GroupingCategory", account.grouping.category)
    _el(element, "GroupingCode", account.grouping.code)
    _el(element, "AccountType", "GL")
    _balance(element, "Opening", account.opening)
    _balance(element, "Closing", account.closing)


def _balance(parent: Any, when: str, ore: Ore) -> None:
    side = "Debit" if ore >= 0 else "Credit"
    _el(parent, f"{when}{side}Balance", _kroner(abs(ore)))


@dataclass(frozen=True)
class _TaxCode:
    code: str
    description: str
    rate: Decimal | None
    standard: str


def _tax_codes(data: LedgerYear) -> dict[str, _TaxCode]:
    """The VAT codes the year's postings use, described as the ledger knows them; the standard
    code is the code itself when it is one of Skatteetaten's, else "NA" (as the schema says)."""
    known: dict[str, LedgerVatCode] = {}
    for vat in data.vat_codes:
        known.setdefault(vat.code, vat)  # the first of a code wins: one TaxCodeDetails per code
    standard = saft_codes.standard_vat_codes()
    found = {}
    for code in sorted({p.vat_code for p in data.postings if p.vat_code}, key=_account_key):
        vat = known.get(code)
        description = vat.name if vat and vat.name else (standard[code].description if code in standard else "")
        found[code] = _TaxCode(
            code=code[:_MIDDLE2],
            description=description[:_LONG],
            rate=vat.rate if vat else None,
            standard=code if code in standard else "NA",
        )
    return found


def _tax_table(master: Any, tax_codes: Sequence[_TaxCode]) -> None:
    table = _el(master, "TaxTable")
    entry = _el(table, "TaxTableEntry")
    _el(entry, "TaxType", "MVA")
    _el(entry, "Description", "Merverdiavgift")
    for tax in tax_codes:
        details = _el(entry, "TaxCodeDetails")
        _el(details, "TaxCode", tax.code)
        if tax.description:
            _el(details, "Description", tax.description)
        if tax.rate is not None:
            _el(details, "TaxPercentage", _percent(tax.rate))
        _el(details, "Country", "NO")
        _el(details, "StandardTaxCode", tax.standard)
        _el(details, "BaseRate", "100")


def _entries(
    root: Any,
    transactions: Sequence[_Transaction],
    totals: tuple[Ore, Ore],
    tax_codes: Mapping[str, _TaxCode],
    system: str,
) -> None:
    entries = _el(root, "GeneralLedgerEntries")
    _el(entries, "NumberOfEntries", str(len(transactions)))
    _el(entries, "TotalDebit", _kroner(totals[0]))
    _el(entries, "TotalCredit", _kroner(totals[1]))
    if not transactions:
        return
    journal = _el(entries, "Journal")
    _el(journal, "JournalID", "GL")
    _el(journal, "Description", f"General ledger{' of ' + system if system else ''}")
    _el(journal, "Type", "GL")
    for transaction in transactions:
        _transaction(journal, transaction, tax_codes)


def _transaction(journal: Any, transaction: _Transaction, tax_codes: Mapping[str, _TaxCode]) -> None:
    element = _el(journal, "Transaction")
    _el(element, "TransactionID", transaction.transaction_id)
    _el(element, "Period", f"{transaction.date.month:02d}")
    _el(element, "PeriodYear", str(transaction.date.year))
    _el(element, "TransactionDate", transaction.date.isoformat())
    _el(element, "Description", transaction.description[:_LONG])
    # the ledgers read back no entry or posting dates: the schema says use TransactionDate then
    _el(element, "SystemEntryDate", transaction.date.isoformat())
    _el(element, "GLPostingDate", transaction.date.isoformat())
    if len(transaction.voucher_id) <= _SHORT:
        _el(element, "SystemID", transaction.voucher_id)
    for record, posting in enumerate(transaction.postings, start=1):
        _line(element, record, posting, transaction, tax_codes)


def _line(
    parent: Any, record: int, posting: LedgerPosting, transaction: _Transaction, tax_codes: Mapping[str, _TaxCode]
) -> None:
    line = _el(parent, "Line")
    _el(line, "RecordID", str(record))
    _el(line, "AccountID", posting.account)
    if posting.date != transaction.date:
        _el(line, "ValueDate", posting.date.isoformat())
    _el(line, "Description", posting.description[:_LONG])  # may be empty, as the ledger has it
    _amount(line, "DebitAmount" if posting.amount >= 0 else "CreditAmount", abs(posting.amount))
    if posting.vat_code and _carries_tax(posting, tax_codes[posting.vat_code]):
        _tax_information(line, posting, tax_codes[posting.vat_code])


def _carries_tax(posting: LedgerPosting, tax: _TaxCode) -> bool:
    """A line whose VAT code is its own: a taxed line (gross differs from net) or a zero-rated one.
    Not a VAT row (the ledger's own, `system_generated`, or one a client does not flag, which
    carries its line's code with gross = net at a rate above zero): its tax is the taxed line's."""
    if posting.system_generated:
        return False
    return posting.gross != posting.amount or tax.rate == 0


def _amount(parent: Any, tag: str, ore: Ore) -> None:
    _el(_el(parent, tag), "Amount", _kroner(ore))


def _tax_information(line: Any, posting: LedgerPosting, tax: _TaxCode) -> None:
    """The line's VAT: its net amount is the base, gross - net the tax (a debit when positive)."""
    vat = posting.gross - posting.amount
    debit = vat > 0 or (vat == 0 and posting.amount >= 0)
    element = _el(line, "TaxInformation")
    _el(element, "TaxType", "MVA")
    _el(element, "TaxCode", tax.code)
    if tax.rate is not None:
        _el(element, "TaxPercentage", _percent(tax.rate))
    _el(element, "Country", "NO")
    _el(element, "TaxBase", _kroner(abs(posting.amount)))
    _amount(element, "DebitTaxAmount" if debit else "CreditTaxAmount", abs(vat))


@dataclass(frozen=True)
class _Prepared:
    totals: tuple[Ore, Ore]
    accounts: tuple[_Account, ...]
    transactions: tuple[_Transaction, ...]
    tax_codes: Mapping[str, _TaxCode]


def _prepare(data: LedgerYear, company: CompanyInfo, grouping: Mapping[str, str] | None) -> _Prepared:
    """The year's figures, checked: balanced totals first, then every account, then the vouchers."""
    totals = _check_totals(data, company)
    accounts = tuple(_trial_balance(data, company, grouping))
    return _Prepared(totals, accounts, tuple(_transactions(data, company)), _tax_codes(data))


def _document(data: LedgerYear, company: CompanyInfo, prepared: _Prepared, created: dt.datetime) -> Any:
    root = etree.Element(_N + "AuditFile", nsmap={None: NAMESPACE})
    _header(root, company, data.year, data.system, created)
    _master_files(root, prepared.accounts, list(prepared.tax_codes.values()))
    _entries(root, prepared.transactions, prepared.totals, prepared.tax_codes, data.system)
    tree = etree.ElementTree(root)
    errors = _schema_errors(tree, "the SAF-T file")
    if errors:
        raise YearEndError(
            f"{company.label(data.year)}: the SAF-T file would not validate against the 1.30 schema; nothing "
            "written:\n" + "\n".join(f"- {e}" for e in errors[:20])
        )
    return tree


def build_audit_file(
    data: LedgerYear,
    company: CompanyInfo,
    *,
    grouping: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
) -> Any:
    """The SAF-T Financial document (an lxml tree) for the year, checked and validated. Raises
    YearEndError when the figures do not add up or the document does not validate."""
    return _document(data, company, _prepare(data, company, grouping), created or dt.datetime.now(ZONE))


def saft_file_name(org_number: str, created: dt.datetime) -> str:
    """Skatteetaten's name for a SAF-T Financial file: type, owner, creation time, file 1 of 1."""
    return f"SAF-T Financial_{org_number}_{created.strftime('%Y%m%d%H%M%S')}_1_1.xml"


# ---- CSV and Parquet ---------------------------------------------------------------------------

TRIAL_BALANCE_COLUMNS = ("account", "name", "opening", "movement", "closing")
TRANSACTION_COLUMNS = (
    "transaction_id",
    "voucher_id",
    "voucher_number",
    "date",
    "account",
    "description",
    "amount",
    "gross",
    "vat_code",
    "external_ref",
    "system_generated",
)
"""amount: signed net kroner (what balances sum; positive = debit), gross: signed gross kroner."""


def _trial_balance_rows(accounts: Iterable[_Account]) -> list[dict[str, Any]]:
    return [
        {
            "account": a.number,
            "name": a.name,
            "opening": ore_to_decimal(a.opening),
            "movement": ore_to_decimal(a.movement),
            "closing": ore_to_decimal(a.closing),
        }
        for a in accounts
    ]


def _transaction_rows(transactions: Iterable[_Transaction]) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": t.transaction_id,
            "voucher_id": p.voucher_id,
            "voucher_number": p.voucher_number,
            "date": p.date,
            "account": p.account,
            "description": p.description,
            "amount": ore_to_decimal(p.amount),
            "gross": ore_to_decimal(p.gross),
            "vat_code": p.vat_code or "",
            "external_ref": p.external_ref,
            "system_generated": p.system_generated,
        }
        for t in transactions
        for p in t.postings
    ]


def _arrow_schema(columns: Sequence[str]) -> Any:
    import pyarrow as pa

    money = pa.decimal128(18, 2)
    types = {
        "opening": money,
        "movement": money,
        "closing": money,
        "amount": money,
        "gross": money,
        "date": pa.date32(),
        "system_generated": pa.bool_(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in columns])


def _parquet_bytes(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_arrow_schema(columns))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _csv_bytes(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()})
    return text.getvalue().encode("utf-8")


def read_csv(path: WorkPath | str) -> list[dict[str, Any]]:
    """A CSV the export wrote (a local path or an ObjectStoragePath), typed back: amounts as
    Decimal, dates as date, flags as bool."""
    money = {"opening", "movement", "closing", "amount", "gross"}
    rows = []
    with io.StringIO(workfiles.read_text(Path(path) if isinstance(path, str) else path), newline="") as fh:
        for row in csv.DictReader(fh):
            typed: dict[str, Any] = {}
            for key, value in row.items():
                if key in money:
                    typed[key] = Decimal(value)
                elif key == "date":
                    typed[key] = dt.date.fromisoformat(value)
                elif key == "system_generated":
                    typed[key] = value == "True"
                else:
                    typed[key] = value
            rows.append(typed)
    return rows


# ---- writing it all, or nothing ----------------------------------------------------------------


def write_export(
    data: LedgerYear,
    out_dir: WorkPath | str,
    company: CompanyInfo,
    *,
    grouping: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
) -> ExportResult:
    """Check the year's figures, build and validate the SAF-T file, then write the five files.

    `out_dir` is a local folder or an ObjectStoragePath (`config.export_url()`: a shared store, so
    the files of an export run on any Celery worker are where the accountant looks). Each file is
    whole or absent (core.workfiles); nothing is written when the checks fail."""
    created = created or dt.datetime.now(ZONE)
    prepared = _prepare(data, company, grouping)
    tree = _document(data, company, prepared, created)
    accounts, transactions, totals = prepared.accounts, prepared.transactions, prepared.totals
    out = Path(out_dir) if isinstance(out_dir, str) else out_dir
    workfiles.make_dir(out)
    stem = f"{company.org_number}_{data.year}"
    paths = {
        "saft": out / saft_file_name(company.org_number, created),
        "tb_csv": out / f"{stem}_trial_balance.csv",
        "tb_parquet": out / f"{stem}_trial_balance.parquet",
        "gl_csv": out / f"{stem}_transactions.csv",
        "gl_parquet": out / f"{stem}_transactions.parquet",
    }
    tb_rows, gl_rows = _trial_balance_rows(accounts), _transaction_rows(transactions)
    contents: dict[str, Callable[[], bytes]] = {
        "saft": lambda: etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True),
        "tb_csv": lambda: _csv_bytes(tb_rows, TRIAL_BALANCE_COLUMNS),
        "tb_parquet": lambda: _parquet_bytes(tb_rows, TRIAL_BALANCE_COLUMNS),
        "gl_csv": lambda: _csv_bytes(gl_rows, TRANSACTION_COLUMNS),
        "gl_parquet": lambda: _parquet_bytes(gl_rows, TRANSACTION_COLUMNS),
    }
    for key, content in contents.items():
        workfiles.write_bytes(paths[key], content())
    return ExportResult(
        saft_file=paths["saft"],
        trial_balance_csv=paths["tb_csv"],
        trial_balance_parquet=paths["tb_parquet"],
        transactions_csv=paths["gl_csv"],
        transactions_parquet=paths["gl_parquet"],
        accounts=len(accounts),
        entries=len(transactions),
        lines=len(data.postings),
        total_debit=totals[0],
        total_credit=totals[1],
    )
