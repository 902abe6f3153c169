"""The vendor pipeline's steps as plain functions: prepare (read, check, book) -> post -> verify.

Airflow tasks are thin wrappers around these; the CLI and tests call them directly. Each step
reads what the previous one wrote under the day's work directory and returns a small JSON-able
summary (that is what travels in XCom), so any step can be re-run alone for a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from kassebro.config import Vendor, data_dir
from kassebro.errors import Issue
from kassebro.journal import Journal
from kassebro.ledgers.base import Ledger, LedgerError, LedgerTransient, LedgerValidationError
from kassebro.money import format_ore
from kassebro.voucher import Voucher

log = logging.getLogger(__name__)


def work_dir(vendor_id: str, day: dt.date) -> Path:
    return data_dir() / "work" / vendor_id / day.isoformat()


def prepare(vendor: Vendor, day: dt.date, journal: Journal) -> dict:
    """Read, check and book the day (`verdict.evaluate_day`, the path the CLI's preview takes too).

    Keeps what it found in the day's work directory: the frames read (parquet), the report of
    every rule (validation.json and .html) and the voucher. A day held back is recorded `failed`
    with every failed rule and raises ValidationFailed (bad data: retrying cannot help).
    """
    from kassebro.verdict import evaluate_day

    verdict = evaluate_day(vendor, day)
    work = work_dir(vendor.id, day)
    if verdict.sales is not None:
        verdict.sales.save(work / "frames")
    report = verdict.report.write(work)
    log.info("%s; report: %s", report.headline, report.report_paths[1])
    ref = _ref(vendor, day)
    if verdict.voucher is None:
        journal.record(vendor.id, day, "failed", external_ref=ref, message=_short(verdict.issues()))
        verdict.raise_if_held_back()
    voucher = verdict.voucher
    assert voucher is not None
    path = work / "voucher.json"
    path.write_text(json.dumps(voucher.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    journal.record(
        vendor.id,
        day,
        "built" if voucher.lines else "empty",
        external_ref=voucher.external_ref,
        ledger_system=vendor.ledger.system,
        voucher=voucher,
        message="" if voucher.lines else "no sales this business day",
    )
    sales = verdict.sales
    return {
        "day": day.isoformat(),
        "rules": len(report.checks),
        "report": [str(p) for p in report.report_paths],
        "receipts": len(sales.receipts) if sales is not None else 0,
        "voucher": str(path),
        "lines": len(voucher.lines),
        "total_ore": voucher.total_debit,
        "total": format_ore(voucher.total_debit),
        "vat_difference_ore": voucher.vat_difference,
    }


def load_voucher(vendor: Vendor, day: dt.date) -> Voucher:
    path = work_dir(vendor.id, day) / "voucher.json"
    return Voucher.from_json(json.loads(path.read_text(encoding="utf-8")))


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
    if not booked and not voucher.lines:
        journal.record(
            vendor.id,
            day,
            "empty",
            external_ref=voucher.external_ref,
            voucher=voucher,
            message="no sales this business day",
        )
        return {**result, "state": "empty"}
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
        from kassebro.voucher import external_ref

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
    """Claim, look up, post one voucher of the day, and record it once confirmed."""
    token = journal.claim(vendor.id, day, correction=version > 1)
    if token is None:
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is being posted by another run; retry later")
    state = "posted" if vendor.ledger.send_to_ledger else "parked"
    try:
        found = ledger.find(sent.external_ref, day)
        if found is not None:
            state = "posted" if found.in_ledger else "parked"
            posted, message = found, "found in the ledger; not posted again"
        else:
            posted, message = ledger.post(sent, send_to_ledger=vendor.ledger.send_to_ledger), ""
    except LedgerTransient as exc:
        journal.release(vendor.id, day, token, f"outcome unknown: {exc}", state="unknown")
        raise
    except LedgerError as exc:
        journal.release(vendor.id, day, token, str(exc), state="failed")
        raise
    if version > 1:
        message = (message + "; " if message else "") + f"{kind} v{version}: the day's sales changed after posting"
    journal.finish(
        vendor.id,
        day,
        token,
        state=state,
        ledger_id=posted.ledger_id,
        ledger_number=posted.number,
        message=message,
        sent=sent,
        day_voucher=day_voucher,
        version=version,
        kind=kind,
    )
    return {"kind": kind, "ledger_id": posted.ledger_id, "found": found is not None}


def correction_voucher(day_voucher: Voucher, booked: list[Voucher], version: int) -> Voucher:
    """The difference between the day as it is now and what the ledger holds for it."""
    from kassebro.voucher import VoucherLine, external_ref

    def key(line: VoucherLine) -> tuple:
        return (line.account, _no_vat(line.vat_code), line.department, line.project)

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
        VoucherLine(k[0], amount, k[1], f"Korreksjon: {texts[k]}", k[2], k[3])
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
    )


def verify(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal) -> dict:
    """Read the day's vouchers back and check the ledger holds the day as built, account by account."""
    voucher = load_voucher(vendor, day)
    booked = journal.booked(vendor.id, day)
    if not booked:
        entry = journal.get(vendor.id, day)
        if not voucher.lines or (entry is not None and entry.state == "empty"):
            return {"day": day.isoformat(), "state": "empty", "verified": True}
        state = entry.state if entry else "nothing"
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is {state}, not posted yet")
    sent: Counter[tuple[str, str | None]] = Counter()
    for line in voucher.lines:
        sent[(line.account, _no_vat(line.vat_code))] += line.amount
    got: Counter[tuple[str, str | None]] = Counter()
    for version in booked:
        for account, amount, vat_code in ledger.get(version.ledger_id).postings:
            got[(account, _no_vat(vat_code))] += amount
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


def _no_vat(code: str | None) -> str | None:
    """VAT code "0" (no VAT treatment) and no code are the same posting."""
    return None if code in (None, "", "0") else code


def _ref(vendor: Vendor, day: dt.date) -> str:
    from kassebro.voucher import external_ref

    return external_ref(vendor.id, day)


def _short(issues: list[Issue], limit: int = 2000) -> str:
    text = "\n".join(str(i) for i in issues)
    return text if len(text) <= limit else text[: limit - 1] + "…"
