"""The canonical voucher: what the builder produces and every ledger renders into its own API.

Immutable records with integer øre, so a voucher can be hashed, compared after a read-back and
stored in the journal as JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

from kassebro.core.money import Ore


@dataclass(frozen=True)
class VoucherLine:
    """One posting.

    Attributes:
      account: the ledger account number, e.g. "3000" or a Fiken sub-account "1920:10001".
      amount: signed øre, debit positive and credit negative (Tripletex's convention); gross of VAT.
      vat_code: standard tax code ("3", "31", "33", "5", "6", "0") or None for lines without VAT.
      description: shown on the posting in the ledger.
      department, project: dimension numbers in the ledger, or None.
      customer: the POS's customer id (custSupID) on a credit sale booked to the ledger's customer
        account; the voucher's meta "customers" says who it is. None on every other line.
    """

    account: str
    amount: Ore
    vat_code: str | None = None
    description: str = ""
    department: str | None = None
    project: str | None = None
    customer: str | None = None

    def to_json(self) -> dict:
        """The line as JSON; `customer` only when set, so vouchers without one keep their digest."""
        data = asdict(self)
        if data["customer"] is None:
            del data["customer"]
        return data


@dataclass(frozen=True)
class Voucher:
    """A balanced journal entry for one vendor's business day.

    Attributes:
      vendor_id, business_day: whose day this is.
      external_ref: deterministic reference, the key for exactly-once posting.
      description: the voucher's text in the ledger.
      lines: postings; they sum to exactly 0 (checked on construction).
      vat_difference: POS VAT minus VAT recomputed from the gross lines, in øre (reported).
    """

    vendor_id: str
    business_day: dt.date
    external_ref: str
    description: str
    lines: tuple[VoucherLine, ...]
    vat_difference: Ore = 0
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        total = sum(line.amount for line in self.lines)
        if total != 0:
            raise ValueError(f"voucher {self.external_ref} does not balance: postings sum to {total} øre")

    @property
    def total_debit(self) -> Ore:
        return sum(line.amount for line in self.lines if line.amount > 0)

    def to_json(self) -> dict:
        data = asdict(self)
        data["business_day"] = self.business_day.isoformat()
        data["lines"] = [line.to_json() for line in self.lines]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Voucher:
        return cls(
            vendor_id=data["vendor_id"],
            business_day=dt.date.fromisoformat(data["business_day"]),
            external_ref=data["external_ref"],
            description=data["description"],
            lines=tuple(VoucherLine(**line) for line in data["lines"]),
            vat_difference=data.get("vat_difference", 0),
            meta=data.get("meta", {}),
        )

    def digest(self) -> str:
        """A stable hash of what would be posted (not of meta), to detect a changed day."""
        body = self.to_json()
        body.pop("meta", None)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def external_ref(vendor_id: str, business_day: dt.date, version: int = 1) -> str:
    """The deterministic external reference of a vendor's day: `kassebro:<vendor>:<day>[:v<n>]`."""
    ref = f"kassebro:{vendor_id}:{business_day.isoformat()}"
    return ref if version == 1 else f"{ref}:v{version}"
