"""The posting journal: states, claims that stop two runs posting the same day, no downgrades."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.posting.journal import Journal

DAY = dt.date(2026, 11, 10)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(f"sqlite:///{tmp_path / 'journal.sqlite'}")


def voucher() -> Voucher:
    return Voucher(
        "cafe",
        DAY,
        "kassebro:cafe:2026-11-10",
        "d",
        (VoucherLine("1900", 500), VoucherLine("3000", -500, "3")),
    )


def test_states_and_voucher_are_recorded(journal: Journal) -> None:
    journal.record("cafe", DAY, "extracted", external_ref="r")
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    entry = journal.get("cafe", DAY)
    assert entry.state == "built" and entry.lines == 2 and entry.total_debit_ore == 500
    assert entry.voucher_hash == voucher().digest()
    assert journal.voucher("cafe", DAY) == voucher()


def test_claim_is_exclusive_and_finish_records_the_ledger_id(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    token = journal.claim("cafe", DAY)
    assert token and journal.claim("cafe", DAY) is None
    journal.finish("cafe", DAY, token, state="posted", ledger_id="42", ledger_number="7")
    entry = journal.get("cafe", DAY)
    assert (entry.state, entry.ledger_id, entry.attempts) == ("posted", "42", 1)
    assert journal.claim("cafe", DAY) is None  # posted days are never claimed again


def test_posted_day_is_not_downgraded(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    journal.finish("cafe", DAY, journal.claim("cafe", DAY), state="posted", ledger_id="42")
    journal.record("cafe", DAY, "failed", external_ref="r", message="late")
    assert journal.get("cafe", DAY).state == "posted"


def test_unknown_outcome_can_be_claimed_again(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    token = journal.claim("cafe", DAY)
    journal.release("cafe", DAY, token, "connection dropped", state="unknown")
    assert journal.get("cafe", DAY).state == "unknown"
    assert journal.claim("cafe", DAY) is not None


def test_stale_claim_is_taken_over(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    assert journal.claim("cafe", DAY)
    assert journal.claim("cafe", DAY, lease_seconds=0) is not None


def test_concurrent_claims_one_winner(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(journal.claim("cafe", DAY))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_a_claim_given_back_with_nothing_sent_keeps_its_state(journal: Journal) -> None:
    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    token = journal.claim("cafe", DAY)
    token = journal.claim("cafe", DAY, lease_seconds=0)  # taken over: still claimed from "built"
    assert journal.release("cafe", DAY, token, "lookup failed")
    assert journal.get("cafe", DAY).state == "built"
    journal.release("cafe", DAY, journal.claim("cafe", DAY), "dropped", state="unknown")
    journal.release("cafe", DAY, journal.claim("cafe", DAY), "lookup failed again")
    assert journal.get("cafe", DAY).state == "unknown"  # an unknown outcome is never forgotten


def test_a_lost_claim_can_neither_renew_release_nor_finish(journal: Journal) -> None:
    from kassebro.posting.journal import ClaimLost

    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    old = journal.claim("cafe", DAY)
    new = journal.claim("cafe", DAY, lease_seconds=0)
    assert old and new and old != new
    assert not journal.renew("cafe", DAY, old) and journal.renew("cafe", DAY, new)
    assert not journal.release("cafe", DAY, old, "late", state="failed")
    with pytest.raises(ClaimLost):
        journal.finish("cafe", DAY, old, state="posted", ledger_id="1", sent=voucher(), day_voucher=voucher())
    assert journal.get("cafe", DAY).state == "posting" and journal.booked("cafe", DAY) == []
    journal.finish("cafe", DAY, new, state="posted", ledger_id="2", sent=voucher(), day_voucher=voucher())
    assert [b.ledger_id for b in journal.booked("cafe", DAY)] == ["2"]


def test_a_renewed_lease_is_not_taken_over_and_fence_tells_a_lost_one(journal: Journal) -> None:
    import time

    from kassebro.posting.journal import ClaimLost, Lease

    journal.record("cafe", DAY, "built", external_ref="r", voucher=voucher())
    token = journal.claim("cafe", DAY, lease_seconds=1)
    with Lease(journal, "cafe", DAY, token, 1) as held:
        time.sleep(2.5)  # longer than the lease: only the renewals keep it
        assert journal.claim("cafe", DAY, lease_seconds=1) is None
        held.fence()
    time.sleep(1.2)  # no one renews now
    assert journal.claim("cafe", DAY, lease_seconds=1) is not None
    with pytest.raises(ClaimLost, match="no longer ours"):
        Lease(journal, "cafe", DAY, token, 1).fence()
