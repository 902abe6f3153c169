"""Rebuild the journal from the ledger: after a lost or wiped journal, the ledger is the truth.

For each day, every version of the day's voucher is looked up by its reference (`:v1` is the
bare reference, then `:v2`, `:v3` ... until one is not there) and written back to the journal as
what the ledger holds, with the day as it reads now. A run over the days afterwards posts nothing
for a day the ledger already holds as built, and only the difference for one it does not.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from kassebro.booking.voucher import Voucher, external_ref
from kassebro.config import Vendor
from kassebro.ledgers.base import Ledger, PostedVoucher
from kassebro.posting.journal import Booked, Journal

MAX_VERSIONS = 100  # far more corrections than a day ever gets; stops a runaway lookup


@dataclass(frozen=True)
class RebuiltDay:
    """What the rebuild found for one day.

    Attributes:
      day: the business day.
      versions: how many of the day's vouchers the ledger holds (0: none).
      state: the journal state written ("" when the journal was left as it was).
      matches_day: whether the ledger's vouchers add up to the day as it reads now.
    """

    day: dt.date
    versions: int
    state: str
    matches_day: bool


def rebuild(vendor: Vendor, first: dt.date, last: dt.date, ledger: Ledger, journal: Journal) -> list[RebuiltDay]:
    """Rebuild the journal rows and voucher history of `vendor`'s days first..last (inclusive)."""
    results = []
    day = first
    while day <= last:
        results.append(rebuild_day(vendor, day, ledger, journal))
        day += dt.timedelta(days=1)
    return results


def rebuild_day(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal) -> RebuiltDay:
    from kassebro.booking.verdict import evaluate_day
    from kassebro.posting.pipeline import as_held, no_vat

    found: list[PostedVoucher] = []
    for version in range(1, MAX_VERSIONS + 1):
        posted = ledger.find(external_ref(vendor.id, day, version), day)
        if posted is None:
            break
        found.append(posted)
    if not found:
        return RebuiltDay(day, 0, "", False)
    verdict = evaluate_day(vendor, day)
    day_voucher = verdict.voucher or Voucher(vendor.id, day, external_ref(vendor.id, day), "", (), 0)
    booked: list[Booked] = []
    total: Counter[tuple[str, str | None]] = Counter()
    for version, posted in enumerate(found, start=1):
        ref = external_ref(vendor.id, day, version)
        template = Voucher(vendor.id, day, ref, day_voucher.description, day_voucher.lines, 0)
        held = as_held(template, posted)
        for account, amount, vat_code in posted.postings:
            total[(account, no_vat(vat_code))] += amount
        kind = _kind(version, total, booked)
        booked.append(Booked(version, kind, ref, posted.ledger_id, posted.number, "", held))
    day_sum: Counter[tuple[str, str | None]] = Counter()
    for line in day_voucher.lines:
        day_sum[(line.account, no_vat(line.vat_code))] += line.amount
    matches = {k: v for k, v in total.items() if v} == {k: v for k, v in day_sum.items() if v}
    last_hash = day_voucher.digest() if matches else "" if booked[-1].kind == "reversal" else "ledger:" + _digest(total)
    hashes = ["" if b.kind == "reversal" else "ledger" for b in booked[:-1]] + [last_hash]
    booked = [
        Booked(b.version, b.kind, b.external_ref, b.ledger_id, b.ledger_number, h, b.voucher)
        for b, h in zip(booked, hashes, strict=True)
    ]
    state = "posted" if found[-1].in_ledger else "parked"
    journal.restore(vendor.id, day, booked, state=state, ledger_system=vendor.ledger.system, day_voucher=day_voucher)
    return RebuiltDay(day, len(found), state, matches)


def _kind(version: int, total: Counter, booked: list[Booked]) -> str:
    """original, then correction; with reversals, what reverses everything so far and what follows it."""
    if version == 1:
        return "original"
    if not any(total.values()):
        return "reversal"
    return "repost" if booked[-1].kind == "reversal" else "correction"


def _digest(total: Counter) -> str:
    import hashlib

    text = ";".join(f"{k[0]}/{k[1]}={v}" for k, v in sorted(total.items(), key=lambda kv: str(kv[0])) if v)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
