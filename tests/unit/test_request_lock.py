"""One request at a time per ledger company across processes (`ledgers.request_lock`): the file
lock a one-host deployment uses; the PostgreSQL advisory lock is tested in the integration tier
(tests/integration/test_postgres.py) with the same checks (`held_in_turn`, `gives_up_after`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kassebro.ledgers.base import LedgerRateLimited
from kassebro.ledgers.request_lock import lock_key, one_at_a_time


def held_in_turn(url: str) -> None:
    """Two holders of one name take turns; another name is not held up."""
    spans: dict[str, tuple[float, float]] = {}

    def hold(who: str, name: str, delay: float) -> None:
        time.sleep(delay)
        with one_at_a_time("Fiken", name, url):
            entered = time.monotonic()
            time.sleep(0.4)
            spans[who] = (entered, time.monotonic())

    threads = [
        threading.Thread(target=hold, args=("first", "fiken:a", 0.0)),
        threading.Thread(target=hold, args=("second", "fiken:a", 0.1)),
        threading.Thread(target=hold, args=("other", "fiken:b", 0.1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (a_in, a_out), (b_in, b_out) = sorted((spans["first"], spans["second"]))
    assert b_in >= a_out  # one waited for the other to leave
    assert spans["other"][0] < a_out  # another company went on meanwhile


def gives_up_after(url: str) -> None:
    """A request that waits longer than `wait` is rate limited (nothing was sent), naming the lock."""
    inside = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with one_at_a_time("Fiken", "fiken:a", url):
            inside.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    started = time.monotonic()
    try:
        with pytest.raises(LedgerRateLimited) as caught, one_at_a_time("Fiken", "fiken:a", url, wait=0.3):
            pass
    finally:
        done.set()
        holder.join()
    assert 0.25 <= time.monotonic() - started < 5
    assert "fiken:a" in str(caught.value) and caught.value.retry_after > 0
    with one_at_a_time("Fiken", "fiken:a", url, wait=1):  # free again once the holder left
        pass


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path / "data"))
    return f"sqlite:///{tmp_path / 'journal.db'}"


def test_file_lock_takes_turns(sqlite_url: str) -> None:
    held_in_turn(sqlite_url)


def test_file_lock_gives_up_after_its_wait(sqlite_url: str, tmp_path: Path) -> None:
    gives_up_after(sqlite_url)
    assert list((tmp_path / "data" / "locks").iterdir())  # the lock files live in the data directory


def test_keys_are_signed_64_bit_and_differ() -> None:
    keys = {lock_key(f"fiken:{i}") for i in range(1000)}
    assert len(keys) == 1000 and all(-(2**63) <= k < 2**63 for k in keys)
