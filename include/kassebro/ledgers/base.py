"""The Ledger protocol and the four kinds of ledger error every client maps its API's errors to.

Clients are plain Python (no Airflow import) so they run in tests, the CLI and tasks alike; the
Airflow layer only decides what a kind of error means for retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from kassebro.booking.voucher import Voucher
from kassebro.core.errors import KassebroError
from kassebro.core.money import Ore


class LedgerError(KassebroError):
    """An error from a ledger API. `system` names it ("Tripletex") for messages."""

    def __init__(self, system: str, message: str) -> None:
        self.system = system
        super().__init__(f"{system}: {message}")


class LedgerValidationError(LedgerError):
    """The ledger refused the data (4xx validation). Retrying cannot help."""


class LedgerAuthError(LedgerError):
    """Credentials are wrong or lack rights. Retrying cannot help; says which credential."""


class LedgerRateLimited(LedgerError):
    """The ledger asked us to slow down; retry after `retry_after` seconds."""

    def __init__(self, system: str, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(system, message)


class LedgerTransient(LedgerError):
    """A server error, timeout or dropped connection: the outcome is unknown, retry with backoff.

    After a transient error on a post, the caller must look the voucher up before posting again.
    """


@dataclass(frozen=True)
class PostedVoucher:
    """A voucher as the ledger holds it.

    Attributes:
      ledger_id: the ledger's own id for the voucher.
      number: the voucher number the ledger gave it, if any (display only).
      external_ref: our reference as stored in the ledger.
      date: the voucher date.
      postings: (account number, signed gross øre, vat code or None) per posting, as read back.
      in_ledger: True when posted to the ledger, False when waiting for approval.
      cancelled: True when a person deleted it and the ledger keeps it beside the entry that
        cancels it (Fiken's deleted transactions), and for that cancelling entry, which then
        carries the deleted one's reference: the pair is in the books but adds up to nothing.
    """

    ledger_id: str
    number: str
    external_ref: str
    date: dt.date
    postings: tuple[tuple[str, Ore, str | None], ...]
    in_ledger: bool = True
    cancelled: bool = False


class Ledger(Protocol):
    """What kassebro needs from an accounting system."""

    system: str

    def test_connection(self) -> str:
        """Prove the credentials work; return the system's own words (e.g. "Connection ok")."""
        ...

    def find(self, external_ref: str, date: dt.date) -> PostedVoucher | None:
        """The voucher posted with this reference, or None. Never guesses: errors raise."""
        ...

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """Post the voucher (or leave it for approval) and return it as the ledger holds it."""
        ...

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read one voucher back by the ledger's id."""
        ...

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """Every voucher dated date_from <= date < date_to (end exclusive, as Tripletex has it),
        ours and others', with its postings; drafts awaiting approval too when asked. For
        reconciliation and year-end: what the ledger holds, whoever booked it."""
        ...

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Reverse a voucher on `date` and return the reversing voucher.

        The system's own reversal where it has one; else a counter-voucher with every posting
        negated, referenced `<original ref>:reversal`, so `find` on the original still finds the
        original and a retry after a lost answer finds the reversal instead of reversing twice.
        Never retried on a transient error (like `post`).
        """
        ...


@dataclass(frozen=True)
class AccountBalance:
    """One account's balance over a period, as the ledger reports it (read-back).

    Attributes:
      account: the account number.
      name: the account's name in the ledger.
      opening: the balance at the period's first day, before its postings (øre).
      movement: the sum of the period's postings (øre).
      closing: opening + movement, as the ledger says it (øre).
    """

    account: str
    name: str
    opening: Ore
    movement: Ore
    closing: Ore


@dataclass(frozen=True)
class LedgerPosting:
    """One posting as the ledger holds it, whoever booked it (read-back).

    Attributes:
      voucher_id, voucher_number: the ledger's voucher it belongs to.
      date: the posting's date.
      account: the account number.
      amount: signed net øre (what balances sum); `gross`: signed gross øre.
      vat_code: the standard VAT code, None for none.
      description: the posting's text.
      external_ref: the voucher's external reference (ours is `kassebro:...`), "" if none.
      system_generated: a row the ledger made itself (Tripletex's VAT rows).
    """

    voucher_id: str
    voucher_number: str
    date: dt.date
    account: str
    amount: Ore
    gross: Ore
    vat_code: str | None
    description: str
    external_ref: str
    system_generated: bool = False


@dataclass(frozen=True)
class LedgerAccount:
    """One account in the ledger's chart (read-back), for the mapping check and the year-end export.

    Attributes:
      number: the account number.
      name: the account's name in the ledger.
      active: False when the ledger keeps the account but refuses postings to it.
      vat_code: the standard VAT code the ledger sets on the account, None for none.
      vat_locked: True when the ledger refuses any other VAT code on this account.
    """

    number: str
    name: str
    active: bool = True
    vat_code: str | None = None
    vat_locked: bool = False


@dataclass(frozen=True)
class LedgerVatCode:
    """One VAT code the ledger knows (read-back), translated to the standard SAF-T code.

    Attributes:
      code: the standard (SAF-T) VAT code, e.g. "3" or "31".
      own_id: the system's own id or code for it, as its API takes it.
      name: the ledger's name for it.
      rate: the percentage (Decimal("25")).
    """

    code: str
    own_id: str
    name: str
    rate: Decimal


@dataclass(frozen=True)
class FirmClient:
    """A client company an accounting firm's connection reaches.

    Attributes:
      ledger_id: the ledger's id for the company (Tripletex: the company id used as Basic user).
      org_number: its organisation number (nine digits, "" when the ledger has none).
      name: its name in the ledger.
    """

    ledger_id: str
    org_number: str
    name: str


class ReadBack(Protocol):
    """What kassebro reads back from a ledger company: reconciliation, mapping check, year-end."""

    system: str

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's opening, movement and closing for date_from <= date < date_to."""
        ...

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every posting dated date_from <= date < date_to, whoever booked it."""
        ...

    def accounts(self) -> list[LedgerAccount]:
        """The chart of accounts, inactive accounts included."""
        ...

    def vat_codes(self) -> list[LedgerVatCode]:
        """The VAT codes the ledger knows, as standard codes."""
        ...


RESULT_ACCOUNTS = (3000, 8999)
"""Result accounts start each year at zero in every system's balances; the others carry over
(INFERRED for all five: no spec states it; it is how Norwegian books close a year)."""


def is_result_account(account: str) -> bool:
    """An account in 3000-8999, by its first four digits (a sub-account as its main account)."""
    number = account[:4]
    return number.isdigit() and RESULT_ACCOUNTS[0] <= int(number) <= RESULT_ACCOUNTS[1]


def in_account_range(account: str, accounts: tuple[int, int] | None) -> bool:
    """Whether an account's first four digits fall in `accounts` (from, to; both included)."""
    number = account[:4]
    return accounts is None or (number.isdigit() and accounts[0] <= int(number) <= accounts[1])


def balances_from_postings(
    postings: Iterable[LedgerPosting], date_from: dt.date, names: Mapping[str, str]
) -> list[AccountBalance]:
    """Opening, movement and closing per account for systems without a balance endpoint, from
    every posting before the period's end: the opening sums what came before date_from (for a
    result account only what came since 1 January of date_from's year); accounts with neither an
    opening nor a movement are left out."""
    opening: dict[str, int] = {}
    movement: dict[str, int] = {}
    for posting in postings:
        if posting.date >= date_from:
            movement[posting.account] = movement.get(posting.account, 0) + posting.amount
        elif not is_result_account(posting.account) or posting.date.year == date_from.year:
            opening[posting.account] = opening.get(posting.account, 0) + posting.amount
    found = []
    for account in sorted(set(opening) | set(movement), key=lambda a: (not a.isdigit(), a.zfill(12))):
        start, moved = opening.get(account, 0), movement.get(account, 0)
        if start or moved:
            found.append(AccountBalance(account, names.get(account, ""), start, moved, start + moved))
    return found


def voucher_customers(voucher: Voucher) -> tuple[dict[str, Any], int]:
    """The POS customers on a voucher's lines, as `WebCustomer`s by POS customer id, and the number
    new ledger customers start from: what the booking rules put in the voucher's meta ("customers",
    "customer_number_start"). A customer the source did not declare is named "Kunde <id>"."""
    import json

    from kassebro.sources.webshop import WebCustomer

    declared = json.loads(voucher.meta.get("customers") or "{}")
    found: dict[str, Any] = {}
    for key in sorted({line.customer for line in voucher.lines if line.customer}):
        row = declared.get(key) or {}
        org = str(row.get("org_number") or "")
        found[key] = WebCustomer(
            shop_id=key,
            name=str(row.get("name") or f"Kunde {key}"),
            is_company=bool(org),
            org_number=org or None,
            email=str(row.get("email") or "") or None,
            address1=str(row.get("address") or ""),
            postcode=str(row.get("postcode") or ""),
            city=str(row.get("city") or ""),
        )
    return found, int(voucher.meta.get("customer_number_start") or 100_000)
