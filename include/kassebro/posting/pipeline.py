"""The vendor pipeline's steps as plain functions: prepare (read, check, book) -> post -> verify.

Airflow tasks are thin wrappers around these; the CLI and tests call them directly. Each step
reads what the previous one wrote under the day's work directory (the shared work store,
`core.workfiles`: another worker's task may read it) and returns a small JSON-able summary (that
is what travels in XCom), so any step can be re-run alone for a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import replace

from kassebro.booking.voucher import Voucher
from kassebro.config import Vendor, work_url
from kassebro.core import workfiles
from kassebro.core.errors import DataMissing, Issue
from kassebro.core.money import format_ore
from kassebro.core.workfiles import WorkPath
from kassebro.ledgers.base import (
    Ledger,
    LedgerError,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
    PostedVoucher,
)
from kassebro.posting.journal import ClaimLost, Journal, Lease

log = logging.getLogger(__name__)


def work_dir(vendor_id: str, day: dt.date) -> WorkPath:
    """The vendor-day's work files, in the shared work store (core.workfiles)."""
    return workfiles.storage_path(work_url()) / vendor_id / day.isoformat()


def prepare(
    vendor: Vendor, day: dt.date, journal: Journal, *, now: dt.datetime | None = None, look_again: bool = False
) -> dict:
    """Read, check and book the day (`verdict.evaluate_day`, the path the CLI's preview takes too).

    Keeps what it found in the day's work directory: the frames read (parquet), the report of
    every rule (validation.json and .html) and the voucher. A day held back is recorded `failed`
    with every failed rule and raises ValidationFailed (bad data: retrying cannot help).

    A day with no data is `waiting` (state "waiting" returned: the DAG's sensor pokes again) until
    its data deadline, then `missing` and DataMissing is raised. A day looked at again by a later
    run (`look_again`) that still has no data, or is still held back, returns quietly
    ("look_again" in the result): it failed loudly on its own night.
    """
    from kassebro.booking.verdict import evaluate_day

    verdict = evaluate_day(vendor, day)
    ref = _ref(vendor, day)
    if verdict.waiting:
        return _no_data_yet(vendor, day, journal, verdict.report.failed[-1].message, now, look_again)
    work = work_dir(vendor.id, day)
    if verdict.sales is not None:
        verdict.sales.save(work / "frames")
        if not verdict.sales.is_empty():
            from kassebro.posting.zreports import ZReports, z_day

            ZReports(journal.url).save(z_day(verdict.sales))
    report = verdict.report.write(work)
    log.info("%s; report: %s", report.headline, report.report_paths[1])
    if verdict.voucher is None:
        journal.record(vendor.id, day, "failed", external_ref=ref, message=_short(verdict.issues()))
        if look_again:  # still held back: it failed loudly on its own night; stay quiet now
            return {"day": day.isoformat(), "state": "failed", "look_again": True, "rules": len(report.checks)}
        verdict.raise_if_held_back()
    voucher = verdict.voucher
    assert voucher is not None
    path = work / "voucher.json"
    workfiles.write_text(path, json.dumps(voucher.to_json(), indent=2, sort_keys=True))
    invoiced = "credit_invoices" in voucher.meta  # sales left out of the voucher for their own invoices
    state = "built" if voucher.lines or invoiced else "closed_calendar" if verdict.closed_by == "calendar" else "closed"
    journal.record(
        vendor.id,
        day,
        state,
        external_ref=voucher.external_ref,
        ledger_system=vendor.ledger.system,
        voucher=voucher,
        message=CLOSED_MESSAGES.get(state, ""),
    )
    sales = verdict.sales
    return {
        "day": day.isoformat(),
        "state": state,
        "rules": len(report.checks),
        "report": [str(p) for p in report.report_paths],
        "receipts": len(sales.receipts) if sales is not None else 0,
        "voucher": str(path),
        "lines": len(voucher.lines),
        "total_ore": voucher.total_debit,
        "total": format_ore(voucher.total_debit),
        "vat_difference_ore": voucher.vat_difference,
    }


CLOSED_MESSAGES = {
    "closed": "closed: the POS reports no sales (a Z report with zero sales)",
    "closed_calendar": "closed by the shop's calendar (opening_days, closed_dates): no sales data",
}


def _no_data_yet(
    vendor: Vendor, day: dt.date, journal: Journal, why: str, now: dt.datetime | None, look_again: bool
) -> dict:
    """Waiting until the data deadline, then missing: never a closed day (a missing thing is not a zero)."""
    from kassebro.config.schedule import data_deadline

    deadline = data_deadline(vendor, day)
    result = {"day": day.isoformat(), "deadline": deadline.isoformat()}
    ref = _ref(vendor, day)
    if look_again:
        entry = journal.get(vendor.id, day)
        return {**result, "state": entry.state if entry else "waiting", "look_again": True}
    if (now or dt.datetime.now(dt.UTC)) < deadline:
        journal.record(vendor.id, day, "waiting", external_ref=ref, message=why)
        return {**result, "state": "waiting"}
    message = f"no sales data for {vendor.id} {day} by {deadline:%Y-%m-%d %H:%M %Z}: is the export running?"
    journal.record(vendor.id, day, "missing", external_ref=ref, message=message)
    raise DataMissing(Issue(f"{vendor.id}/{day.isoformat()}", "data_present", message), headline=message)


def days_to_look_again(vendor: Vendor, days: list[dt.date], journal: Journal) -> list[dt.date]:
    """The vendor's days in the `lookback_days` before `days` that may still get their data late:
    waiting, missing, or closed by the calendar (`journal.LOOK_AGAIN`)."""
    from kassebro.posting.journal import LOOK_AGAIN

    if not days or not vendor.lookback_days:
        return []
    first = max(vendor.enabled_since, min(days) - dt.timedelta(days=vendor.lookback_days))
    return [d for d in journal.days_in(vendor.id, LOOK_AGAIN, first, max(days)) if d not in days]


def load_voucher(vendor: Vendor, day: dt.date) -> Voucher:
    """The voucher prepare built (overlapping runs may prepare the same day: the write is whole)."""
    path = work_dir(vendor.id, day) / "voucher.json"
    return Voucher.from_json(json.loads(workfiles.read_text(path)))


def careful_lookup(vendor: Vendor, day: dt.date, journal: Journal) -> bool:
    """Whether the duplicate check must also search where a voucher *might* be left by an earlier
    attempt in another mode (PowerOffice drafts awaiting approval: one more call).

    Only needed when the vendor posts for approval, or when the day was tried before (its outcome
    may be unknown, and the vendor's mode may have changed since). A day's first attempt in
    direct mode cannot have left a draft.
    """
    if not vendor.ledger.send_to_ledger:
        return True
    entry = journal.get(vendor.id, day)
    return entry is not None and (entry.attempts > 0 or bool(journal.booked(vendor.id, day)))


def post(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal, *, dry_run: bool = False) -> dict:
    """Post the day's voucher at most once; if the day changed after posting, book the change.

    Order matters: claim the day in the journal (so two runs cannot race), look the version's
    external reference up in the ledger (it may be there after a dropped connection), and only
    then post. A transient failure leaves the day "unknown": the next try looks it up first.
    A day whose sales changed after it was booked gets `:v2`, `:v3` ... vouchers: the difference
    (`on_change: correction`), or a reversal of what was booked and the day again (`reverse`).
    """
    voucher = load_voucher(vendor, day)
    result = {
        "day": day.isoformat(),
        "external_ref": voucher.external_ref,
        "lines": len(voucher.lines),
        "total_ore": voucher.total_debit,
    }
    booked = journal.booked(vendor.id, day)
    if dry_run and "credit_invoices" in voucher.meta:
        log.info("dry run: would invoice the credit sales %s first", voucher.meta["credit_invoices"])
    elif "credit_invoices" in voucher.meta:  # before the voucher, which counts on them (posting.credit_invoices)
        from kassebro.posting.credit_invoices import invoice_credit_sales

        made = invoice_credit_sales(vendor, voucher, ledger, journal)
        result["invoices"] = [o.invoice_number for o in made]
        if not voucher.lines and not booked:  # every sale of the day was on account
            journal.record(
                vendor.id,
                day,
                "closed",
                external_ref=voucher.external_ref,
                ledger_system=vendor.ledger.system,
                voucher=voucher,
                message=f"no voucher: all {len(made)} sale(s) were credit sales, invoiced in Tripletex",
            )
    if not booked and not voucher.lines:  # closed: prepare recorded why; nothing to post
        entry = journal.get(vendor.id, day)
        return {**result, "state": entry.state if entry else "closed"}
    posted_now: list[dict] = []
    while True:
        step = next_voucher(voucher, [b.voucher for b in booked], [b.day_hash for b in booked], vendor.ledger.on_change)
        if step is None:
            break
        sent, kind = step
        if dry_run:
            log.info("dry run: would post %s", json.dumps(sent.to_json(), indent=1))
            return {**result, "state": "dry_run", "version": len(booked) + 1}
        posted_now.append(_post_once(vendor, day, ledger, journal, voucher, sent, kind, len(booked) + 1))
        booked = journal.booked(vendor.id, day)
    entry = journal.get(vendor.id, day)
    state = entry.state if entry and entry.state in ("posted", "parked") else "posted"
    return {
        **result,
        "state": state,
        "ledger_id": booked[-1].ledger_id,
        "ledger_number": booked[-1].ledger_number,
        "version": booked[-1].version,
        "already": not posted_now or all(p["found"] for p in posted_now),
        "kinds": [p["kind"] for p in posted_now],
    }


def next_voucher(day_voucher: Voucher, booked: list[Voucher], hashes: list[str], on_change: str) -> tuple | None:
    """What to post next to bring the ledger to the day as built, or None when it is there."""
    if not booked:
        return day_voucher, "original"
    if hashes[-1] == day_voucher.digest():
        return None
    version = len(booked) + 1
    if on_change == "correction":
        correction = correction_voucher(day_voucher, booked, version)
        return (correction, "correction") if correction.lines else None  # only texts changed: nothing to book
    if hashes[-1] == "":  # the last step reversed what was booked: post the day again in full
        if not day_voucher.lines:
            return None  # the day has no sales left: the reversal was all it needed
        from kassebro.booking.voucher import external_ref

        again = Voucher(
            day_voucher.vendor_id,
            day_voucher.business_day,
            external_ref(day_voucher.vendor_id, day_voucher.business_day, version),
            day_voucher.description,
            day_voucher.lines,
            day_voucher.vat_difference,
        )
        return again, "repost"
    empty = Voucher(day_voucher.vendor_id, day_voucher.business_day, "", "", (), 0)
    reversal = correction_voucher(empty, booked, version)
    return Voucher(
        reversal.vendor_id,
        reversal.business_day,
        reversal.external_ref,
        f"Reversering av {day_voucher.description}",
        tuple(
            replace(line, description=line.description.replace("Korreksjon: ", "Reversering: "))
            for line in reversal.lines
        ),
        reversal.vat_difference,
    ), "reversal"


def _post_once(
    vendor: Vendor,
    day: dt.date,
    ledger: Ledger,
    journal: Journal,
    day_voucher: Voucher,
    sent: Voucher,
    kind: str,
    version: int,
) -> dict:
    """Claim, look up, post one voucher of the day, and record it once confirmed.

    The claim is renewed while we work and checked again immediately before the post (a holder
    whose lease ran out never posts). Whatever goes wrong, the claim is given back with an honest
    state: `unknown` once a post may have reached the ledger (the next attempt looks it up), else
    the state it was claimed from; a refused voucher is `failed`.
    """
    lease = vendor.ledger.lease
    token = journal.claim(vendor.id, day, lease, correction=version > 1)
    if token is None:
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is being posted by another run; retry later")
    state = "posted" if vendor.ledger.send_to_ledger else "parked"
    sending = False  # from the fence on, the ledger may hold the voucher whatever we hear back
    try:
        with Lease(journal, vendor.id, day, token, lease) as held:
            found = ledger.find(sent.external_ref, day)
            held_now = sent
            if found is not None:
                state = "posted" if found.in_ledger else "parked"
                posted, message = found, "found in the ledger; not posted again"
                held_now = as_held(sent, found)
                if held_now is not sent:
                    message += "; it differs from what was sent: the difference is booked as a correction"
            else:
                _wait_for_earlier_post(vendor, day, journal, sent.external_ref)
                held.fence()
                sending = True
                posted, message = ledger.post(sent, send_to_ledger=vendor.ledger.send_to_ledger), ""
            if version > 1:
                change = f"{kind} v{version}: the day's sales changed after posting"
                message = f"{message}; {change}" if message else change
            journal.finish(
                vendor.id,
                day,
                token,
                state=state,
                ledger_id=posted.ledger_id,
                ledger_number=posted.number,
                message=message,
                sent=held_now,
                day_voucher=day_voucher,
                version=version,
                kind=kind,
                day_hash=None if held_now is sent else held_now.digest(),
            )
    except ClaimLost:
        raise  # not ours to give back: the run holding the day records it
    except BaseException as exc:  # also a killed task (SystemExit, KeyboardInterrupt): never strand the claim
        _give_back(journal, vendor, day, token, exc, sending)
        raise
    return {"kind": kind, "ledger_id": posted.ledger_id, "found": found is not None}


def _wait_for_earlier_post(vendor: Vendor, day: dt.date, journal: Journal, ref: str) -> None:
    """Never post while an earlier post of the day may still show up in the ledger: one whose
    answer was lost, or one a killed worker sent, is looked for until `ledger.visibility` after it."""
    entry = journal.get(vendor.id, day)
    if entry is None or entry.sent_at is None:
        return
    sent_at = entry.sent_at if entry.sent_at.tzinfo else entry.sent_at.replace(tzinfo=dt.UTC)  # SQLite
    until = sent_at + dt.timedelta(seconds=vendor.ledger.visibility)
    if dt.datetime.now(dt.UTC) < until:
        raise LedgerTransient(
            vendor.ledger.system,
            f"{vendor.id} {day}: a post sent at {sent_at:%H:%M:%S} UTC was not answered and {ref} is not in the "
            f"ledger yet; it may still appear until {until:%H:%M:%S} UTC (ledger.visibility_seconds "
            f"{vendor.ledger.visibility}), so nothing is posted before then",
        )


def as_held(sent: Voucher, found: PostedVoucher) -> Voucher:
    """What the ledger holds under `sent`'s reference, as a voucher: `sent` itself when the ledger's
    postings sum to it per (account, VAT code), else `sent` with each differing account's lines
    replaced by the ledger's amounts (a person changed it, or another run posted another version).
    The journal keeps this, so the difference to the day goes through the normal correction path."""
    from kassebro.booking.voucher import VoucherLine

    def key(account: str, vat_code: str | None) -> tuple[str, str | None]:
        return account, no_vat(vat_code)

    held: Counter[tuple[str, str | None]] = Counter()
    for account, amount, vat_code in found.postings:
        held[key(account, vat_code)] += amount
    mine: Counter[tuple[str, str | None]] = Counter()
    for line in sent.lines:
        mine[key(line.account, line.vat_code)] += line.amount
    differing = {k for k in set(held) | set(mine) if held[k] != mine[k]}
    if not differing:
        return sent
    lines = [line for line in sent.lines if key(line.account, line.vat_code) not in differing]
    for k in sorted(differing, key=lambda k: (k[0], k[1] or "")):
        like = next((line for line in sent.lines if key(line.account, line.vat_code) == k), None)
        if held[k]:
            lines.append(
                VoucherLine(
                    k[0],
                    held[k],
                    k[1],
                    like.description if like else f"Ført i regnskapet: {k[0]}",
                    like.department if like else None,
                    like.project if like else None,
                )
            )
    return replace(sent, lines=tuple(lines), meta={**sent.meta, "read_back": "differs from what was sent"})


def _give_back(journal: Journal, vendor: Vendor, day: dt.date, token: str, exc: BaseException, sent: bool) -> None:
    """Release a claim after `exc` with the state that says what the ledger may hold."""
    if isinstance(exc, LedgerRateLimited):  # refused before anything was saved
        state, message = None, str(exc)
    elif isinstance(exc, LedgerTransient) or (sent and not isinstance(exc, LedgerError)):
        state, message = ("unknown", f"outcome unknown: {exc}") if sent else (None, f"not posted: {exc}")
    elif isinstance(exc, LedgerError):  # refused (credentials, data): a person must act
        state, message = "failed", str(exc)
    else:
        state, message = None, f"stopped before posting: {type(exc).__name__}: {exc}"
    try:
        journal.release(vendor.id, day, token, message[:2000], state=state)
    except Exception:  # the journal itself may be what failed: the lease then runs out on its own
        log.exception("could not give the claim on %s %s back; it expires with its lease", vendor.id, day)


def correction_voucher(day_voucher: Voucher, booked: list[Voucher], version: int) -> Voucher:
    """The difference between the day as it is now and what the ledger holds for it."""
    from kassebro.booking.voucher import VoucherLine, external_ref

    def key(line: VoucherLine) -> tuple:
        return (line.account, no_vat(line.vat_code), line.department, line.project, line.customer)

    delta: dict[tuple, int] = {}
    texts: dict[tuple, str] = {}
    for line in day_voucher.lines:
        delta[key(line)] = delta.get(key(line), 0) + line.amount
        texts.setdefault(key(line), line.description)
    for old in booked:
        for line in old.lines:
            delta[key(line)] = delta.get(key(line), 0) - line.amount
            texts.setdefault(key(line), line.description)
    lines = tuple(
        VoucherLine(k[0], amount, k[1], f"Korreksjon: {texts[k]}", k[2], k[3], k[4])
        for k, amount in sorted(delta.items(), key=lambda kv: tuple(str(p) for p in kv[0]))
        if amount
    )
    return Voucher(
        vendor_id=day_voucher.vendor_id,
        business_day=day_voucher.business_day,
        external_ref=external_ref(day_voucher.vendor_id, day_voucher.business_day, version),
        description=f"Korreksjon {version - 1} av {day_voucher.description}",
        lines=lines,
        vat_difference=day_voucher.vat_difference - sum(b.vat_difference for b in booked),
        meta=_customers_meta([day_voucher, *booked]) if any(line.customer for line in lines) else {},
    )


def _customers_meta(vouchers: list[Voucher]) -> dict[str, str]:
    """Who the customers on a correction's lines are: from the day's voucher, else the booked ones."""
    import json

    customers: dict[str, object] = {}
    start = ""
    for voucher in reversed(vouchers):  # the day's voucher last, so its view wins
        customers.update(json.loads(voucher.meta.get("customers") or "{}"))
        start = voucher.meta.get("customer_number_start") or start
    meta = {"customers": json.dumps(customers, sort_keys=True)}
    if start:
        meta["customer_number_start"] = start
    return meta


def verify(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal) -> dict:
    """Read the day's vouchers back and check the ledger holds the day as built, account by account."""
    voucher = load_voucher(vendor, day)
    booked = journal.booked(vendor.id, day)
    if not booked:
        entry = journal.get(vendor.id, day)
        if not voucher.lines:
            return {"day": day.isoformat(), "state": entry.state if entry else "closed", "verified": True}
        state = entry.state if entry else "nothing"
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is {state}, not posted yet")
    sent: Counter[tuple[str, str | None]] = Counter()
    for line in voucher.lines:
        sent[(line.account, no_vat(line.vat_code))] += line.amount
    got: Counter[tuple[str, str | None]] = Counter()
    for version in booked:
        for account, amount, vat_code in ledger.get(version.ledger_id).postings:
            got[(account, no_vat(vat_code))] += amount
    keys = set(sent) | set(got)
    diff = {f"{k[0]}/{k[1] or '-'}": format_ore(got[k] - sent[k]) for k in keys if got[k] != sent[k]}
    ids = ", ".join(b.ledger_id for b in booked)
    if diff:
        raise LedgerValidationError(
            vendor.ledger.system,
            f"voucher(s) {ids} for {vendor.id} {day} differ from the day as built (ledger - built): {diff}",
        )
    return {
        "day": day.isoformat(),
        "ledger_ids": ids,
        "versions": len(booked),
        "verified": True,
        "total": format_ore(voucher.total_debit),
    }


def no_vat(code: str | None) -> str | None:
    """VAT code "0" (no VAT treatment) and no code are the same posting (comparing with the ledger)."""
    return None if code in (None, "", "0") else code


def _ref(vendor: Vendor, day: dt.date) -> str:
    from kassebro.booking.voucher import external_ref

    return external_ref(vendor.id, day)


def _short(issues: list[Issue], limit: int = 2000) -> str:
    text = "\n".join(str(i) for i in issues)
    return text if len(text) <= limit else text[: limit - 1] + "…"
