"""A folder of daily SAF-T exports read through its index: one day costs its own file, not the archive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from kassebro.checks import DayContext, validate_day
from kassebro.core.errors import SourceError
from kassebro.demo import data as demo_data
from kassebro.sources.file_index import FileIndex, files_table
from kassebro.sources.saft import read_day
from tests.corpus.make_corpus import _all, _one, _shift_z, _simple

FIRST = dt.date(2026, 10, 22)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(6)]  # Sunday 25 October: clocks go back
TRANSACTION_FRAMES = ("lines", "receipts", "payments", "z_vat", "z_payments", "z_art_groups", "skipped")


@pytest.fixture
def index(tmp_path: Path) -> FileIndex:
    return FileIndex(f"sqlite:///{tmp_path / 'journal.sqlite'}")


def folder_of(tmp_path: Path, profile: str) -> Path:
    folder = tmp_path / profile
    demo_data.write_range(profile, "910000039", "Demo AS", DAYS[0], DAYS[-1], folder)
    return folder


@pytest.mark.parametrize(("profile", "day_start"), [("shop", 0), ("bar", 5), ("cafe", 0)])
def test_each_day_reads_one_file_and_the_same_day_as_all_files(
    tmp_path: Path, index: FileIndex, profile: str, day_start: int
) -> None:
    folder = folder_of(tmp_path, profile)
    for n, day in enumerate(DAYS):
        selection = index.select(folder, day, day_start)
        assert selection.total == len(DAYS) and selection.indexed == (len(DAYS) if n == 0 else 0)
        closed = profile == "shop" and day.weekday() == 6
        assert len(selection.files) == (0 if closed else 1), (day, selection.files)
        chosen = read_day(selection.files, "v", day, day_start_hour=day_start, neighbours=selection.neighbours)
        every = read_day(folder, "v", day, day_start_hour=day_start)
        for name in TRANSACTION_FRAMES:
            pd.testing.assert_frame_equal(getattr(chosen, name), getattr(every, name), obj=f"{day} {name}")
        report = validate_day(chosen, DayContext(day_start_hour=day_start, organisation_number="910000039"))
        assert report.success, report.issues()


def test_a_changed_or_new_file_is_indexed_again(tmp_path: Path, index: FileIndex) -> None:
    folder = folder_of(tmp_path, "cafe")
    index.select(folder, DAYS[0])
    (rewritten,) = [p for p in folder.iterdir() if f"{DAYS[3] + dt.timedelta(days=1):%Y%m%d}" in p.name]
    demo_data.write_day("cafe", "910000039", "Demo AS", DAYS[3], folder, receipts=7)  # the export ran again
    extra = demo_data.write_day("cafe", "910000039", "Demo AS", DAYS[-1] + dt.timedelta(days=1), folder)
    selection = index.select(folder, DAYS[3])
    assert selection.indexed == 2 and selection.files == [rewritten]
    assert len(read_day(selection.files, "v", DAYS[3]).receipts) == 7
    assert index.select(folder, DAYS[-1] + dt.timedelta(days=1)).files == [extra]
    with index.engine.connect() as conn:  # kept in the journal's database
        assert len(conn.execute(files_table.select()).all()) == len(DAYS) + 1


def test_a_file_that_cannot_be_summarised_is_always_read(tmp_path: Path, index: FileIndex) -> None:
    folder = folder_of(tmp_path, "cafe")
    (folder / "broken.xml").write_bytes(b"<auditfile>")
    selection = index.select(folder, DAYS[2])
    assert folder / "broken.xml" in selection.files and len(selection.files) == 2
    with pytest.raises(SourceError, match="broken.xml"):
        read_day(selection.files, "v", DAYS[2])


def test_a_receipt_missing_between_two_daily_files_shows_on_both_days(tmp_path: Path, index: FileIndex) -> None:
    """Day 1's last receipt is missing (its Z report without it too): day 1 alone looks complete,
    but the numbers of day 2's file, not read, say one is missing; and day 2 sees it from day 1's."""
    folder = folder_of(tmp_path, "cafe")
    (path,) = [p for p in folder.iterdir() if f"{DAYS[1] + dt.timedelta(days=1):%Y%m%d}" in p.name]
    tree = etree.parse(str(path))
    register = _all(tree, "//cashregister")[0]
    last = _all(register, "cashtransaction")[-1]
    if not _simple(last):  # a receipt with a tip or discount: take the one before it
        last = _all(register, "cashtransaction")[-2]
        assert _simple(last)
    _shift_z(_one(register, "event/eventReport"), last, -1)
    register.remove(last)
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    for day in (DAYS[1], DAYS[2]):
        selection = index.select(folder, day)
        assert len(selection.files) == 1
        sales = read_day(selection.files, "v", day, neighbours=selection.neighbours)
        report = validate_day(sales, DayContext(organisation_number="910000039"))
        assert {check.rule for check in report.failed} == {"receipt_numbering"}, (day, report.issues())
        assert "1 number missing" in report.failed[0].message


def test_read_sales_goes_through_the_index_unless_it_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.config import load_vendor
    from kassebro.sources import read_sales

    monkeypatch.setenv("KASSEBRO_JOURNAL_URL", f"sqlite:///{tmp_path / 'journal.sqlite'}")
    folder = folder_of(tmp_path, "shop")
    vendor = load_vendor("butikk_fjord", Path(__file__).resolve().parents[2] / "config")
    via_index = read_sales(vendor, DAYS[4], str(folder))
    assert via_index.source.count(".xml") == 1
    monkeypatch.setenv("KASSEBRO_SOURCE_INDEX", "off")
    every = read_sales(vendor, DAYS[4], str(folder))
    assert every.source == via_index.source  # the files that held the day: the same one
    for name in TRANSACTION_FRAMES:
        pd.testing.assert_frame_equal(getattr(via_index, name), getattr(every, name))
