"""The pipeline steps without Airflow, against the live sandbox: exactly once and its edge cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kassebro.config import load_vendor
from kassebro.core.errors import InputError
from kassebro.ledgers.base import LedgerTransient, LedgerValidationError
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal
from kassebro.sources import source_path

from ..e2e.conftest import DAYS, tripletex_home

DAY = DAYS[0]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with tripletex_home(tmp_path, monkeypatch) as (_root, app, client):
        vendor = load_vendor("cafe_solsiden")
        journal = Journal()
        pipeline.prepare(vendor, DAY, journal)
        yield vendor, journal, app, client


def test_post_then_verify(env) -> None:
    vendor, journal, app, client = env
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["state"] == "posted"
    assert pipeline.verify(vendor, DAY, client(), journal)["verified"] is True
    again = pipeline.post(vendor, DAY, client(), journal)
    assert again["already"] is True and again["ledger_id"] == result["ledger_id"]
    assert len(app.state.store.list_vouchers()) == 1


def test_journal_lost_but_ledger_has_it(env, tmp_path: Path) -> None:
    """The ledger is the source of truth: a fresh journal still finds the voucher by its reference."""
    vendor, journal, app, client = env
    pipeline.post(vendor, DAY, client(), journal)
    fresh = Journal(f"sqlite:///{tmp_path / 'other.sqlite'}")
    fresh.record(vendor.id, DAY, "built", external_ref=f"kassebro:{vendor.id}:{DAY}")
    result = pipeline.post(vendor, DAY, client(), fresh)
    assert result["already"] is True
    assert len(app.state.store.list_vouchers()) == 1


def test_dropped_connection_leaves_unknown_then_the_lookup_resolves_it(env) -> None:
    vendor, journal, app, client = env
    app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST")
    with pytest.raises(LedgerTransient):
        pipeline.post(vendor, DAY, client(), journal)
    assert journal.get(vendor.id, DAY).state == "unknown"
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["already"] is True and result["state"] == "posted"
    assert len(app.state.store.list_vouchers()) == 1


def _change_sales(vendor, amount: int = 100) -> None:
    """Move `amount` øre of the day's revenue, as late receipts would (the voucher stays balanced)."""
    import json

    voucher = pipeline.load_voucher(vendor, DAY).to_json()
    revenue = [line for line in voucher["lines"] if line["vat_code"] == "3"][0]
    payment = [line for line in voucher["lines"] if line["amount"] > 0][0]
    revenue["amount"] -= amount
    payment["amount"] += amount
    (pipeline.work_dir(vendor.id, DAY) / "voucher.json").write_text(json.dumps(voucher))


def test_changed_sales_after_posting_get_a_correction_voucher(env) -> None:
    vendor, journal, app, client = env
    first = pipeline.post(vendor, DAY, client(), journal)
    _change_sales(vendor)
    second = pipeline.post(vendor, DAY, client(), journal)
    assert second["version"] == 2 and second["ledger_id"] != first["ledger_id"]
    refs = sorted(v.external_voucher_number for v in app.state.store.list_vouchers())
    assert refs == [f"kassebro:cafe_solsiden:{DAY}", f"kassebro:cafe_solsiden:{DAY}:v2"]
    correction = app.state.store.voucher(int(second["ledger_id"]))
    assert sorted(p.gross for p in correction.postings if not p.system_generated) == [-100, 100]
    assert pipeline.verify(vendor, DAY, client(), journal)["versions"] == 2  # original + correction = the day
    again = pipeline.post(vendor, DAY, client(), journal)
    assert again["already"] is True and len(app.state.store.list_vouchers()) == 2
    assert [b.kind for b in journal.booked(vendor.id, DAY)] == ["original", "correction"]


def test_reverse_and_repost_by_option(env) -> None:
    vendor, journal, app, client = env
    vendor = vendor.model_copy(update={"ledger": vendor.ledger.model_copy(update={"on_change": "reverse"})})
    first = pipeline.post(vendor, DAY, client(), journal)
    _change_sales(vendor)
    app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST")  # the reversal's answer is lost
    with pytest.raises(LedgerTransient):
        pipeline.post(vendor, DAY, client(), journal)
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["kinds"] == ["reversal", "repost"] and result["version"] == 3
    stored = {v.external_voucher_number: v for v in app.state.store.list_vouchers()}
    assert sorted(stored) == [
        f"kassebro:cafe_solsiden:{DAY}",
        f"kassebro:cafe_solsiden:{DAY}:v2",
        f"kassebro:cafe_solsiden:{DAY}:v3",
    ]
    original = app.state.store.voucher(int(first["ledger_id"]))

    def user_rows(v) -> list[int]:
        return sorted(p.gross for p in v.postings if not p.system_generated)

    assert user_rows(stored[f"kassebro:cafe_solsiden:{DAY}:v2"]) == sorted(-g for g in user_rows(original))
    new_day = pipeline.load_voucher(vendor, DAY)
    assert user_rows(stored[f"kassebro:cafe_solsiden:{DAY}:v3"]) == sorted(line.amount for line in new_day.lines)
    assert pipeline.verify(vendor, DAY, client(), journal)["versions"] == 3
    assert [b.kind for b in journal.booked(vendor.id, DAY)] == ["original", "reversal", "repost"]
    assert pipeline.post(vendor, DAY, client(), journal)["already"] is True
    assert len(app.state.store.list_vouchers()) == 3


def test_correction_survives_a_dropped_connection(env) -> None:
    vendor, journal, app, client = env
    pipeline.post(vendor, DAY, client(), journal)
    _change_sales(vendor)
    app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST")
    with pytest.raises(LedgerTransient):
        pipeline.post(vendor, DAY, client(), journal)
    assert journal.get(vendor.id, DAY).state == "unknown"
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["version"] == 2 and result["already"] is True
    assert len(app.state.store.list_vouchers()) == 2


def test_another_run_holding_the_claim_makes_us_wait(env) -> None:
    vendor, journal, app, client = env
    assert journal.claim(vendor.id, DAY)
    with pytest.raises(LedgerTransient, match="another run"):
        pipeline.post(vendor, DAY, client(), journal)
    assert app.state.store.list_vouchers() == []


def test_verify_catches_a_voucher_changed_in_the_ledger(env) -> None:
    vendor, journal, app, client = env
    result = pipeline.post(vendor, DAY, client(), journal)
    stored = app.state.store.voucher(int(result["ledger_id"]))
    user_rows = [p for p in stored.postings if not p.system_generated]
    user_rows[0].gross += 100
    user_rows[1].gross -= 100
    with pytest.raises(LedgerValidationError, match="differ from the day as built"):
        pipeline.verify(vendor, DAY, client(), journal)


def test_dry_run_posts_nothing(env) -> None:
    vendor, journal, app, client = env
    assert pipeline.post(vendor, DAY, client(), journal, dry_run=True)["state"] == "dry_run"
    assert app.state.store.list_vouchers() == []


def test_validation_failure_records_the_day_as_failed(env) -> None:
    vendor, journal, app, client = env
    folder = source_path(vendor)
    day = DAYS[1]
    (path,) = [p for p in folder.iterdir() if f"{day + dt.timedelta(days=1):%Y%m%d}" in p.name]
    text = path.read_text(encoding="utf-8")
    start = text.index("<paidAmnt>") + len("<paidAmnt>")
    kroner, ore = text[start : text.index("<", start)].split(".")
    path.write_text(text[:start] + f"{int(kroner) + 1}.{ore}" + text[text.index("<", start) :], encoding="utf-8")
    with pytest.raises(InputError) as err:
        pipeline.prepare(vendor, day, journal)
    assert "receipt_balances" in str(err.value) and str(day) in str(err.value)
    entry = journal.get(vendor.id, day)
    assert entry.state == "failed" and "receipt_balances" in entry.message
    report = pipeline.work_dir(vendor.id, day) / "validation.json"
    assert "receipt_balances" in report.read_text(encoding="utf-8")  # the report is kept for a person


def test_careful_lookup_only_when_an_earlier_attempt_or_approval_may_have_left_a_voucher(env) -> None:
    vendor, journal, app, client = env
    assert pipeline.careful_lookup(vendor, DAY, journal) is False  # first attempt, direct mode
    parked = vendor.model_copy(update={"ledger": vendor.ledger.model_copy(update={"send_to_ledger": False})})
    assert pipeline.careful_lookup(parked, DAY, journal) is True  # drafts are where approval posts go
    app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST")
    with pytest.raises(LedgerTransient):
        pipeline.post(vendor, DAY, client(), journal)
    assert pipeline.careful_lookup(vendor, DAY, journal) is True  # tried before: its outcome is unknown


class _Wrapped:
    """A real client with one call changed: what a parse error, a dying worker or a slow holder does."""

    def __init__(self, inner, **calls) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name: str):
        return self._calls.get(name) or getattr(self._inner, name)


def test_any_error_before_the_post_gives_the_claim_back_as_it_was(env) -> None:
    vendor, journal, app, client = env

    def broken_find(ref, day):
        raise ValueError("the answer was not JSON")

    with pytest.raises(ValueError):
        pipeline.post(vendor, DAY, _Wrapped(client(), find=broken_find), journal)
    entry = journal.get(vendor.id, DAY)
    assert entry.state == "built" and "lookup failed" not in entry.message and "ValueError" in entry.message
    assert pipeline.post(vendor, DAY, client(), journal)["state"] == "posted"  # no waiting for the lease
    assert len(app.state.store.list_vouchers()) == 1


def test_an_error_after_the_post_leaves_unknown_and_the_next_try_finds_it(env) -> None:
    vendor, journal, app, client = env
    real = client()

    def post_then_choke(voucher, send_to_ledger=True):
        real.post(voucher, send_to_ledger=send_to_ledger)
        raise KeyError("value")  # the answer could not be read

    with pytest.raises(KeyError):
        pipeline.post(vendor, DAY, _Wrapped(real, post=post_then_choke), journal)
    assert journal.get(vendor.id, DAY).state == "unknown"
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["already"] is True and len(app.state.store.list_vouchers()) == 1


def test_a_journal_error_in_finish_leaves_unknown(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    vendor, journal, app, client = env

    def down(*args, **kwargs):
        raise OperationalError("UPDATE kassebro_journal", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(journal, "finish", down)
        pipeline.post(vendor, DAY, client(), journal)
    assert journal.get(vendor.id, DAY).state == "unknown"
    assert pipeline.post(vendor, DAY, client(), journal)["already"] is True
    assert len(app.state.store.list_vouchers()) == 1


def test_a_holder_whose_lease_ran_out_never_posts(env) -> None:
    from kassebro.posting.journal import ClaimLost

    vendor, journal, app, client = env
    real = client()
    taken: list[str] = []

    def slow_find(ref, day):
        found = real.find(ref, day)
        taken.append(journal.claim(vendor.id, DAY, lease_seconds=0))  # another run takes the day over
        return found

    with pytest.raises(ClaimLost, match="nothing was sent or posted"):
        pipeline.post(vendor, DAY, _Wrapped(real, find=slow_find), journal)
    assert app.state.store.list_vouchers() == []
    assert taken[0] and journal.get(vendor.id, DAY).state == "posting"  # the new holder's claim stands


def test_a_killed_worker_is_taken_over_when_its_lease_ends(env, tmp_path: Path) -> None:
    """SIGKILL while the post is in flight: the retry waits out the lease, then finds what was saved."""
    import os
    import signal
    import subprocess
    import sys
    import time

    vendor, journal, app, client = env
    assert vendor.ledger.lease == 2
    app.state.faults.add("delay", path="/ledger/voucher", method="POST", seconds=1.0)
    c = client()
    script = (
        "import datetime as dt, sys\n"
        "from kassebro.posting import pipeline\nfrom kassebro.config import load_vendor\n"
        "from kassebro.posting.journal import Journal\n"
        "from kassebro.ledgers.tripletex import TripletexClient\n"
        f"client = TripletexClient({c.base_url!r}, 'demo-consumer-token', 'demo-employee-token')\n"
        f"pipeline.post(load_vendor({vendor.id!r}), dt.date.fromisoformat({DAY.isoformat()!r}), client, Journal())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    deadline = time.monotonic() + 60
    while app.state.faults.list():  # the delayed POST has reached the ledger
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert app.state.store.list_vouchers() == []  # killed before the ledger saved it
    assert journal.get(vendor.id, DAY).state == "posting"  # stranded, until the lease ends
    with pytest.raises(LedgerTransient, match="another run"):
        pipeline.post(vendor, DAY, client(), journal)
    time.sleep(2.2)
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["state"] == "posted" and result["already"] is True
    assert len(app.state.store.list_vouchers()) == 1


def test_a_voucher_found_after_an_unknown_outcome_is_read_back_and_its_difference_corrected(env) -> None:
    """The ledger is the truth: what `find` returns is what the journal keeps, not what was meant."""
    vendor, journal, app, client = env
    app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST")
    with pytest.raises(LedgerTransient):
        pipeline.post(vendor, DAY, client(), journal)
    (stored,) = app.state.store.list_vouchers()
    user_rows = [p for p in stored.postings if not p.system_generated]
    user_rows[0].gross += 100  # changed in the ledger before we saw it (a person, or another system)
    user_rows[1].gross -= 100
    result = pipeline.post(vendor, DAY, client(), journal)
    assert result["kinds"] == ["original", "correction"] and result["version"] == 2  # v1 found, v2 posted
    v1, v2 = journal.booked(vendor.id, DAY)
    held = {(p[0], p[1]) for p in client().get(v1.ledger_id).postings}
    assert {(line.account, line.amount) for line in v1.voucher.lines} <= held  # the journal keeps what is held
    assert sorted(line.amount for line in v2.voucher.lines) == [-100, 100]
    assert pipeline.verify(vendor, DAY, client(), journal)["verified"] is True
    assert len(app.state.store.list_vouchers()) == 2
