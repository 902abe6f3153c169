"""Nightly reconciliation, three ways: the POS's Z reports, the journal, and what the ledger holds.

For every vendor-day in a window, the day's vouchers in the ledger (found by their `kassebro:`
references, whoever changed them since) are set against the vouchers the journal says were booked
and against the Z report's payments:

- missing: a booked reference the ledger no longer holds (deleted by a person; a deletion the
  ledger keeps beside its cancelling entry, as Fiken does, counts as gone);
- duplicated: more vouchers with one reference than were booked;
- extra: a voucher with one of the vendor's references the journal does not know as booked;
- changed: the day's vouchers are all there but their postings (per account and VAT code) differ
  from what was booked;
- unbalanced: the ledger holds the day as booked, but the payments booked (per account) differ
  from the kept Z report's payments (a Z report that changed after the day was booked);
- pos_accounts: per company over the window, the movement the ledger's *account view*
  (`postings`, a different read than the vouchers) shows on the POS's payment accounts (cash, card
  clearing, gift-card liability: whatever the mappings' payment types book to) differs from what
  the agreeing vendor-days booked on them. Every voucher counts, a person's too (a cash deposit
  booked from the cash account shows here, with its amount in the evidence as "other vouchers");
  the vendor-days with a finding of their own are left out on both sides. Several shops may
  share one company's accounts, so this is per company, filed under each of its vendors.

A day with a finding of one kind is not also reported under the kinds after it (a deleted voucher
is missing, not also unbalanced), so each disagreement is one finding. Reads only: a finding never
changes the ledger or the journal. A ledger that cannot be read gives an `unreadable` finding
(unknown), never "no findings".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kassebro.booking.voucher import Voucher
from kassebro.config import Vendor
from kassebro.core.errors import KassebroError
from kassebro.core.money import format_ore
from kassebro.ledgers.base import LedgerError, LedgerPosting, PostedVoucher
from kassebro.posting.journal import Booked, Entry, Journal
from kassebro.posting.pipeline import no_vat
from kassebro.posting.zreports import ZDay, ZReports
from kassebro.readback.findings import Finding, Findings

log = logging.getLogger(__name__)

REF = re.compile(r"^kassebro:(?P<vendor>[a-z0-9_]+):(?P<day>\d{4}-\d{2}-\d{2})(?::v\d+)?(?::reversal)?$")
IN_FLIGHT = ("posting", "unknown")
"""Journal states of a post under way: the ledger may hold its voucher before the journal says so."""
BOOKED = ("posted", "parked")

Key = tuple[str, str | None]


@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation read and found.

    Attributes:
      checked: the vendor-days compared (their findings replace the stored ones).
      findings: every disagreement found.
      vouchers_read: vouchers the ledger(s) returned for the window.
      postings_read: postings read for the account view (0 where a system has no read-back).
      not_checked: what could not be compared and why (a ledger that could not be read, a day
        whose Z report was never read): unknown, not agreed.
    """

    checked: tuple[tuple[str, dt.date], ...]
    findings: tuple[Finding, ...]
    vouchers_read: int = 0
    postings_read: int = 0
    not_checked: tuple[str, ...] = field(default=())


def parse_ref(ref: str) -> tuple[str, dt.date] | None:
    """(vendor id, business day) of a kassebro reference, None for anything else."""
    match = REF.match(ref or "")
    if not match:
        return None
    try:
        return match.group("vendor"), dt.date.fromisoformat(match.group("day"))
    except ValueError:
        return None


def _sums(postings: Iterable[tuple[str, int, str | None]]) -> Counter[Key]:
    total: Counter[Key] = Counter()
    for account, amount, vat_code in postings:
        total[(account, no_vat(vat_code))] += amount
    return total


def _nonzero(total: Counter[Key]) -> dict[str, int]:
    return {f"{a}/{v or '-'}": n for (a, v), n in sorted(total.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")) if n}


def _days(vendor: Vendor, first: dt.date, last: dt.date) -> list[dt.date]:
    day, days = max(first, vendor.enabled_since), []
    while day <= last:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def expected_payments(vendor: Vendor, z: ZDay) -> Counter[str]:
    """The Z report's payments per ledger account, through the vendor's payment mapping."""
    per_account: Counter[str] = Counter()
    for ptype, pcode, amount in z.payments:
        account = vendor.mapping.payment_account(ptype, pcode)
        per_account[account or f"(unmapped {ptype or pcode})"] += amount
    return per_account


def _payment_accounts(vendor: Vendor) -> set[str]:
    return set(vendor.mapping.payment_types.values())


@dataclass(frozen=True)
class VendorDays:
    """What the journal and the kept Z reports say about one vendor's days (read in bulk)."""

    vendor: Vendor
    days: tuple[dt.date, ...]
    entries: dict[dt.date, Entry]
    booked: dict[dt.date, list[Booked]]
    zdays: dict[dt.date, ZDay]
    built: dict[dt.date, Voucher]

    @classmethod
    def read(cls, vendor: Vendor, first: dt.date, last: dt.date, journal: Journal, zreports: ZReports) -> VendorDays:
        return cls(
            vendor,
            tuple(_days(vendor, first, last)),
            {e.business_day: e for e in journal.entries(vendor.id) if first <= e.business_day <= last},
            journal.booked_between(vendor.id, first, last),
            zreports.read(vendor.id, first, last),
            journal.day_vouchers(vendor.id, first, last),
        )


def booked_payments(built: Voucher | None) -> Counter[str] | None:
    """The payments per account of a day as booked (voucher meta, with those of its credit-sale
    invoices), None for vouchers built before kassebro kept them."""
    if built is None or "payments" not in built.meta:
        return None
    paid = Counter({a: int(n) for a, n in json.loads(built.meta["payments"]).items()})
    # credit sales invoiced on their own (credit_sales: invoice) are out of the voucher, not of the day
    paid.update({a: int(n) for a, n in json.loads(built.meta.get("invoiced_payments") or "{}").items()})
    return paid


def vouchers_by_vendor(vouchers: Iterable[PostedVoucher]) -> dict[str, list[PostedVoucher]]:
    """The company's vouchers with a kassebro reference, per vendor: parsed once for all vendors
    (parsing them again for each vendor grows with vendors x vouchers)."""
    grouped: dict[str, list[PostedVoucher]] = defaultdict(list)
    for voucher in vouchers:
        parsed = parse_ref(voucher.external_ref)
        if parsed:
            grouped[parsed[0]].append(voucher)
    return grouped


def reconcile_vendor_days(read: VendorDays, vouchers: Sequence[PostedVoucher]) -> tuple[list[Finding], set[dt.date]]:
    """The findings of one vendor's days, from what was read (no I/O: the rules alone), and the
    posted days whose ledger, journal and Z report all agree (the POS accounts' check sums over those).
    `vouchers` may be the whole company's; give the vendor's own (`vouchers_by_vendor`) for many."""
    vendor = read.vendor
    system = vendor.ledger.system
    by_day: dict[dt.date, list[PostedVoucher]] = defaultdict(list)
    for voucher in vouchers:
        parsed = parse_ref(voucher.external_ref)
        if parsed and parsed[0] == vendor.id:
            by_day[parsed[1]].append(voucher)
    found: list[Finding] = []
    agreed: set[dt.date] = set()

    def finding(day: dt.date, kind: str, reference: str, message: str, **evidence: Any) -> None:
        found.append(Finding(vendor.id, day, kind, reference, f"{vendor.id} {day}: {message}", evidence, system))

    for day in read.days:
        entry = read.entries.get(day)
        state = entry.state if entry else None
        versions = read.booked.get(day, []) if state in BOOKED else []
        listed = by_day.get(day, [])
        held = [v for v in listed if not v.cancelled]
        before = len(found)
        expected = Counter(b.external_ref for b in versions)
        present = Counter(v.external_ref for v in held)
        for ref in sorted(expected):
            ids = [v.ledger_id for v in held if v.external_ref == ref]
            if present[ref] < expected[ref]:
                finding(
                    day,
                    "missing",
                    ref,
                    f"the journal says {ref} is {state} in {system}, but the ledger holds "
                    f"{present[ref]} of its {expected[ref]} voucher(s)",
                    journal_ledger_ids=[b.ledger_id for b in versions if b.external_ref == ref],
                    ledger_ids=ids,
                    deleted_in_ledger=[v.ledger_id for v in listed if v.cancelled and v.external_ref == ref],
                )
            elif present[ref] > expected[ref]:
                finding(
                    day,
                    "duplicated",
                    ref,
                    f"{present[ref]} vouchers in {system} carry {ref}; {expected[ref]} was booked",
                    ledger_ids=ids,
                    ledger_numbers=[v.number for v in held if v.external_ref == ref],
                    journal_ledger_ids=[b.ledger_id for b in versions if b.external_ref == ref],
                )
        strangers = sorted(ref for ref in present if ref not in expected)
        if strangers and state not in IN_FLIGHT:
            for ref in strangers:
                finding(
                    day,
                    "extra",
                    ref,
                    f"{system} holds {present[ref]} voucher(s) with {ref}, which the journal does not know as "
                    f"booked (journal state: {state or 'no row'})",
                    ledger_ids=[v.ledger_id for v in held if v.external_ref == ref],
                    journal_state=state,
                )
        if len(found) > before or not versions:
            continue
        in_ledger = _sums(p for v in held for p in v.postings)
        as_booked = _sums((line.account, line.amount, line.vat_code) for b in versions for line in b.voucher.lines)
        if _nonzero(in_ledger) != _nonzero(as_booked):
            difference = in_ledger.copy()
            difference.subtract(as_booked)
            finding(
                day,
                "changed",
                versions[-1].external_ref,
                f"the voucher(s) in {system} differ from what was booked (ledger - booked: "
                + ", ".join(f"{k} {format_ore(v)}" for k, v in _nonzero(difference).items())
                + ")",
                ledger=_nonzero(in_ledger),
                booked=_nonzero(as_booked),
                ledger_ids=[v.ledger_id for v in held],
            )
            continue
        z = read.zdays.get(day)
        built = read.built.get(day)
        # the ledger holds what was booked; does what was booked still agree with the Z report?
        if z is None or entry is None or built is None or versions[-1].day_hash != entry.voucher_hash:
            continue  # no Z report kept, or a correction is on its way: not compared (see not_checked)
        paid = booked_payments(built)
        if paid is None:
            continue
        wanted = expected_payments(vendor, z)
        if {a: n for a, n in paid.items() if n} != {a: n for a, n in wanted.items() if n}:
            finding(
                day,
                "unbalanced",
                versions[-1].external_ref,
                f"the payments booked in {system} come to {format_ore(sum(paid.values()))}, the Z report says "
                f"{format_ore(z.payments_total)}",
                ledger={a: n for a, n in sorted(paid.items()) if n},
                z_report={a: n for a, n in sorted(wanted.items()) if n},
                z_source=z.source,
            )
            continue
        if state == "posted":  # a voucher parked for approval is not in the account view yet
            agreed.add(day)
    return found, agreed


def reconcile_pos_accounts(
    reads: Sequence[VendorDays],
    agreed: dict[str, set[dt.date]],
    postings: Sequence[LedgerPosting],
    first: dt.date,
    last: dt.date,
) -> list[Finding]:
    """The ledger's account view of the POS's payment accounts against the POS, for one company.

    Several shops often share one company's cash and card accounts, so this is a company check:
    over the days on which ledger, journal and Z report agree (each vendor's `agreed`), the
    accounts should move by what those days booked on them, and by nothing else. A person's
    voucher on them (a cash deposit, a settlement), or an account view that disagrees with the
    vouchers, shows here; each vendor of the company gets the finding.
    """
    if not reads:
        return []
    accounts = set().union(*(_payment_accounts(r.vendor) for r in reads))
    vendor_ids = {r.vendor.id for r in reads}
    ours: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for p in postings:
        if p.account not in accounts:
            continue
        parsed = parse_ref(p.external_ref)
        if parsed is None or parsed[0] not in vendor_ids:
            others[p.account] += p.gross
        elif parsed[1] in agreed.get(parsed[0], set()):
            ours[p.account] += p.gross
    wanted: Counter[str] = Counter()
    for r in reads:
        for day in agreed.get(r.vendor.id, set()):
            for b in r.booked.get(day, []):
                for line in b.voucher.lines:
                    if line.account in accounts:
                        wanted[line.account] += line.amount
    moved = Counter(ours)
    moved.update(others)  # not `ours + others`: Counter's + drops negative sums (a liability's credit)
    if {a: n for a, n in moved.items() if n} == {a: n for a, n in wanted.items() if n}:
        return []
    days = sum(len(v) for v in agreed.values())
    evidence = {
        "ledger": dict(sorted((a, n) for a, n in moved.items() if n)),
        "booked_from_the_pos": dict(sorted((a, n) for a, n in wanted.items() if n)),
        "other_vouchers": dict(sorted((a, n) for a, n in others.items() if n)),
        "vendor_days": days,
    }
    return [
        Finding(
            r.vendor.id,
            last,
            "pos_accounts",
            "accounts:" + ",".join(sorted(accounts)),
            f"{r.vendor.id} {first}..{last}: the POS accounts ({', '.join(sorted(accounts))}) moved "
            f"{format_ore(sum(moved.values()))} in {r.vendor.ledger.system} ({format_ore(sum(others.values()))} "
            f"of it on other vouchers) over {days} vendor-day(s) of the company; the POS's days booked "
            f"{format_ore(sum(wanted.values()))}",
            evidence,
            r.vendor.ledger.system,
        )
        for r in reads
    ]


def reconcile_company(
    vendors: Sequence[Vendor],
    ledger: Any,
    first: dt.date,
    last: dt.date,
    journal: Journal,
    zreports: ZReports,
) -> Reconciliation:
    """Reconcile the vendors that share one ledger company over first..last (inclusive): one read
    of the ledger's vouchers and one of its account view for all of them."""
    vendors = list(vendors)
    try:
        vouchers = ledger.list_vouchers(first, last + dt.timedelta(days=1), include_non_posted=True)
    except (LedgerError, KassebroError) as exc:
        return _unreadable(vendors, last, exc)
    postings: list[LedgerPosting] | None = None
    not_checked: list[str] = []
    if hasattr(ledger, "postings"):
        try:
            postings = ledger.postings(first, last + dt.timedelta(days=1))
        except (LedgerError, KassebroError) as exc:
            not_checked.append(f"the account view of {ledger.system} could not be read: {exc}")
    else:
        not_checked.append(f"{getattr(ledger, 'system', '?')} has no account read-back: POS accounts not compared")
    checked: list[tuple[str, dt.date]] = []
    found: list[Finding] = []
    reads: list[VendorDays] = []
    agreed: dict[str, set[dt.date]] = {}
    grouped = vouchers_by_vendor(vouchers)
    for vendor in vendors:
        read = VendorDays.read(vendor, first, last, journal, zreports)
        if not read.days:
            continue
        day_findings, agreed[vendor.id] = reconcile_vendor_days(read, grouped.get(vendor.id, []))
        found += day_findings
        reads.append(read)
        booked_days = [d for d in read.days if read.entries.get(d) and read.entries[d].state in BOOKED]
        unread = [d for d in booked_days if d not in read.zdays]
        if unread:
            not_checked.append(
                f"{vendor.id}: no Z report kept for {len(unread)} booked day(s) ({unread[0]}..{unread[-1]}): "
                "not compared with the POS"
            )
        checked += [(vendor.id, d) for d in read.days]
    if postings is not None:
        found += reconcile_pos_accounts(reads, agreed, postings, first, last)
    return Reconciliation(tuple(checked), tuple(found), len(vouchers), len(postings or ()), tuple(not_checked))


def _unreadable(vendors: Sequence[Vendor], last: dt.date, exc: BaseException) -> Reconciliation:
    findings = tuple(
        Finding(
            v.id,
            last,
            "unreadable",
            "ledger",
            f"{v.id}: the ledger ({v.ledger.system}, connection {v.ledger.connection}) could not be read: {exc}",
            {"error": str(exc)},
            v.ledger.system,
        )
        for v in vendors
    )
    return Reconciliation((), findings, not_checked=tuple(f.message for f in findings))


def company_key(vendor: Vendor) -> tuple[str, str, str, str]:
    """Vendors with one key share one ledger company (one read serves them all)."""
    target = vendor.ledger
    return (target.system, target.connection, target.company or "", target.client_org_number or "")


def reconcile(
    vendors: Sequence[Vendor],
    first: dt.date,
    last: dt.date,
    ledger_for: Callable[[Vendor], Any],
    *,
    journal: Journal | None = None,
    store: bool = True,
) -> Reconciliation:
    """Reconcile every vendor over first..last, one ledger read per company; store the findings
    (replacing those of the days checked) unless `store` is False. The DAG and the CLI call this."""
    journal = journal or Journal()
    zreports = ZReports(journal.url)
    groups: dict[tuple[str, str, str, str], list[Vendor]] = defaultdict(list)
    for vendor in vendors:
        groups[company_key(vendor)].append(vendor)
    checked: list[tuple[str, dt.date]] = []
    found: list[Finding] = []
    vouchers = postings = 0
    not_checked: list[str] = []
    for members in groups.values():
        try:
            ledger = ledger_for(members[0])
        except (LedgerError, KassebroError) as exc:
            result = _unreadable(members, last, exc)
        else:
            with contextlib.closing(ledger):
                result = reconcile_company(members, ledger, first, last, journal, zreports)
        checked += result.checked
        found += result.findings
        vouchers += result.vouchers_read
        postings += result.postings_read
        not_checked += result.not_checked
    if store:
        Findings(journal.url).replace(checked, found)
    return Reconciliation(tuple(checked), tuple(found), vouchers, postings, tuple(not_checked))
