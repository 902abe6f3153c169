"""The vendor pipeline's steps as plain functions: extract -> validate -> build -> post -> verify.

Airflow tasks are thin wrappers around these; the CLI and tests call them directly. Each step
reads what the previous one wrote under the day's work directory and returns a small JSON-able
summary (that is what travels in XCom), so any step can be re-run alone for a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from pathlib import Path

from kassebro.config import Vendor, data_dir
from kassebro.errors import InputError, Issue
from kassebro.journal import Journal
from kassebro.ledgers.base import Ledger, LedgerError, LedgerTransient, LedgerValidationError
from kassebro.money import format_ore
from kassebro.voucher import Voucher

log = logging.getLogger(__name__)


def work_dir(vendor_id: str, day: dt.date) -> Path:
    return data_dir() / "work" / vendor_id / day.isoformat()


def source_path(vendor: Vendor) -> Path:
    path = Path(vendor.source.path)
    return path if path.is_absolute() else data_dir() / path


def extract(vendor: Vendor, day: dt.date, journal: Journal) -> dict:
    """Read the day from the vendor's source into canonical frames saved as parquet."""
    from kassebro.sources.saft import read_day

    sales = read_day(source_path(vendor), vendor.id, day, tz=vendor.timezone, day_start_hour=vendor.day_start_hour)
    path = sales.save(work_dir(vendor.id, day) / "frames")
    journal.record(vendor.id, day, "extracted", external_ref=_ref(vendor, day), ledger_system=vendor.ledger.system)
    summary = {
        "day": day.isoformat(),
        "frames": str(path),
        "receipts": len(sales.receipts),
        "lines": len(sales.lines),
        "gross_ore": int(sales.lines["gross"].sum()),
    }
    log.info("extracted %s %s: %s", vendor.id, day, summary)
    return summary


def validate(vendor: Vendor, day: dt.date, journal: Journal) -> dict:
    """Run the Great Expectations suite; a failure records the day as failed and raises."""
    from kassebro.frames import SalesDay
    from kassebro.validation import validate_day

    sales = SalesDay.load(work_dir(vendor.id, day) / "frames")
    report = validate_day(sales, report_dir=work_dir(vendor.id, day))
    if not report.success:
        journal.record(vendor.id, day, "failed", external_ref=_ref(vendor, day), message=_short(report.issues()))
        report.raise_if_failed()
    journal.record(vendor.id, day, "validated", external_ref=_ref(vendor, day))
    return {
        "day": day.isoformat(),
        "checks": len(report.checks),
        "report": [str(p) for p in report.report_paths],
    }


def build(vendor: Vendor, day: dt.date, journal: Journal) -> dict:
    """Build the balanced voucher and store it in the journal and the work directory."""
    from kassebro.frames import SalesDay
    from kassebro.vouchers import build_voucher

    sales = SalesDay.load(work_dir(vendor.id, day) / "frames")
    try:
        voucher = build_voucher(sales, vendor)
    except InputError as exc:
        journal.record(vendor.id, day, "failed", external_ref=_ref(vendor, day), message=_short(exc.issues))
        raise
    path = work_dir(vendor.id, day) / "voucher.json"
    path.write_text(json.dumps(voucher.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    state = "built" if voucher.lines else "empty"
    journal.record(
        vendor.id,
        day,
        state,
        external_ref=voucher.external_ref,
        voucher=voucher,
        message="" if voucher.lines else "no sales this business day",
    )
    return {
        "day": day.isoformat(),
        "voucher": str(path),
        "lines": len(voucher.lines),
        "total_ore": voucher.total_debit,
        "total": format_ore(voucher.total_debit),
        "vat_difference_ore": voucher.vat_difference,
    }


def load_voucher(vendor: Vendor, day: dt.date) -> Voucher:
    path = work_dir(vendor.id, day) / "voucher.json"
    return Voucher.from_json(json.loads(path.read_text(encoding="utf-8")))


def post(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal, *, dry_run: bool = False) -> dict:
    """Post the day's voucher at most once.

    Order matters: claim the day in the journal (so two runs cannot race), look the external
    reference up in the ledger (the voucher may be there after a dropped connection), and only
    then post. A transient failure leaves the day as "unknown": the next try looks it up first.
    """
    voucher = load_voucher(vendor, day)
    result = {
        "day": day.isoformat(),
        "external_ref": voucher.external_ref,
        "lines": len(voucher.lines),
        "total_ore": voucher.total_debit,
    }
    if not voucher.lines:
        journal.record(
            vendor.id,
            day,
            "empty",
            external_ref=voucher.external_ref,
            voucher=voucher,
            message="no sales this business day",
        )
        return {**result, "state": "empty"}
    if dry_run:
        log.info("dry run: would post %s", json.dumps(voucher.to_json(), indent=1))
        return {**result, "state": "dry_run"}

    entry = journal.get(vendor.id, day)
    if entry and entry.state in ("posted", "parked"):
        if entry.voucher_hash and entry.voucher_hash != voucher.digest():
            raise InputError(
                Issue(
                    f"{vendor.id}/{day}",
                    "source_changed",
                    f"the day was already {entry.state} as {vendor.ledger.system} voucher {entry.ledger_id}, "
                    "but its sales changed since; it is not overwritten (book a correction by hand)",
                )
            )
        return {**result, "state": entry.state, "ledger_id": entry.ledger_id, "already": True}

    token = journal.claim(vendor.id, day)
    if token is None:
        entry = journal.get(vendor.id, day)
        if entry and entry.state in ("posted", "parked"):
            return {**result, "state": entry.state, "ledger_id": entry.ledger_id, "already": True}
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is being posted by another run; retry later")
    # a voucher re-built since an earlier claim: keep the journal's copy in step with what is sent
    journal_state = "parked" if not vendor.ledger.send_to_ledger else "posted"
    try:
        found = ledger.find(voucher.external_ref, day)
        if found is not None:
            journal.finish(
                vendor.id,
                day,
                token,
                state="posted" if found.in_ledger else "parked",
                ledger_id=found.ledger_id,
                ledger_number=found.number,
                message="found in the ledger; not posted again",
            )
            return {
                **result,
                "state": "posted" if found.in_ledger else "parked",
                "ledger_id": found.ledger_id,
                "ledger_number": found.number,
                "already": True,
            }
        posted = ledger.post(voucher, send_to_ledger=vendor.ledger.send_to_ledger)
    except LedgerTransient as exc:
        journal.release(vendor.id, day, token, f"outcome unknown: {exc}", state="unknown")
        raise
    except LedgerError as exc:
        journal.release(vendor.id, day, token, str(exc), state="failed")
        raise
    journal.finish(vendor.id, day, token, state=journal_state, ledger_id=posted.ledger_id, ledger_number=posted.number)
    return {**result, "state": journal_state, "ledger_id": posted.ledger_id, "ledger_number": posted.number}


def verify(vendor: Vendor, day: dt.date, ledger: Ledger, journal: Journal) -> dict:
    """Read the voucher back and check that the ledger holds what was sent, account by account."""
    voucher = load_voucher(vendor, day)
    entry = journal.get(vendor.id, day)
    if not voucher.lines or entry is None or entry.state == "empty":
        return {"day": day.isoformat(), "state": "empty", "verified": True}
    if entry.state not in ("posted", "parked") or not entry.ledger_id:
        raise LedgerTransient(vendor.ledger.system, f"{vendor.id} {day} is {entry.state}, not posted yet")
    held = ledger.get(entry.ledger_id)
    sent: Counter[tuple[str, str | None]] = Counter()
    for line in voucher.lines:
        sent[(line.account, _no_vat(line.vat_code))] += line.amount
    got: Counter[tuple[str, str | None]] = Counter()
    for account, amount, vat_code in held.postings:
        got[(account, _no_vat(vat_code))] += amount
    diff = {f"{k[0]}/{k[1] or '-'}": format_ore(got[k] - sent[k]) for k in set(sent) | set(got) if got[k] != sent[k]}
    if diff:
        raise LedgerValidationError(
            vendor.ledger.system,
            f"voucher {entry.ledger_id} for {vendor.id} {day} differs from what was sent (ledger - sent): {diff}",
        )
    return {
        "day": day.isoformat(),
        "state": entry.state,
        "ledger_id": entry.ledger_id,
        "verified": True,
        "total": format_ore(sum(a for _, a, _ in held.postings if a > 0)),
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
