"""No data is not an empty day: waiting until the deadline, missing after it, closed only when the
POS or the shop's calendar says so, and late data booked once by a later run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from kassebro.config import load_vendor
from kassebro.config.schedule import data_deadline
from kassebro.core.errors import DataMissing
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal

from ..e2e.conftest import DAYS, tripletex_home

LATE = DAYS[-1] + dt.timedelta(days=2)  # make_home writes no file for it


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with tripletex_home(tmp_path, monkeypatch) as home:
        yield home


def _write(root: Path, day: dt.date) -> None:
    from kassebro.demo.home import write_sales

    data = yaml.safe_load((root / "config" / "vendors" / "cafe_solsiden.yaml").read_text())
    write_sales(data, [day], root / "data")


def _set(root: Path, **fields) -> None:
    path = root / "config" / "vendors" / "cafe_solsiden.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def test_no_data_waits_until_the_deadline_then_fails_loudly(env) -> None:
    root, app, client = env
    vendor, journal = load_vendor("cafe_solsiden"), Journal()
    deadline = data_deadline(vendor, LATE)
    assert deadline == dt.datetime.combine(LATE + dt.timedelta(days=1), dt.time(6, 30), deadline.tzinfo)
    before = pipeline.prepare(vendor, LATE, journal, now=deadline - dt.timedelta(minutes=1))
    assert before["state"] == "waiting" and journal.get(vendor.id, LATE).state == "waiting"
    assert "waiting for the POS export" in journal.get(vendor.id, LATE).message
    with pytest.raises(DataMissing, match=rf"no sales data for cafe_solsiden {LATE} by .*: is the export running\?"):
        pipeline.prepare(vendor, LATE, journal, now=deadline)
    assert journal.get(vendor.id, LATE).state == "missing"
    with pytest.raises(Exception, match="voucher.json"):
        pipeline.post(vendor, LATE, client(), journal)  # nothing was built: nothing can be posted
    assert app.state.store.list_vouchers() == []


def test_a_calendar_closed_day_is_closed_and_one_the_calendar_has_open_is_not(env) -> None:
    root, app, client = env
    _set(root, closed_dates=[LATE.isoformat()])
    vendor, journal = load_vendor("cafe_solsiden"), Journal()
    result = pipeline.prepare(vendor, LATE, journal)
    assert result["state"] == "closed_calendar" and result["lines"] == 0
    assert pipeline.post(vendor, LATE, client(), journal)["state"] == "closed_calendar"
    assert pipeline.verify(vendor, LATE, client(), journal)["verified"] is True
    other = LATE + dt.timedelta(days=1)
    _set(root, closed_dates=[], opening_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    with pytest.raises(DataMissing):
        pipeline.prepare(load_vendor("cafe_solsiden"), other, journal)


def test_a_z_report_with_zero_sales_closes_the_day(env) -> None:
    root, app, client = env
    from kassebro.demo.data import write_day

    vendor, journal = load_vendor("cafe_solsiden"), Journal()
    folder = root / "data" / "saft" / "cafe_solsiden"
    write_day("cafe", vendor.org_number, "Café Solsiden AS", LATE, folder, receipts=0, z_without_sales=True)
    result = pipeline.prepare(vendor, LATE, journal)
    assert result["state"] == "closed", result
    assert journal.get(vendor.id, LATE).message.startswith("closed: the POS reports no sales")


def test_late_data_is_booked_once_by_a_later_run(env) -> None:
    root, app, client = env
    vendor, journal = load_vendor("cafe_solsiden"), Journal()
    with pytest.raises(DataMissing):
        pipeline.prepare(vendor, LATE, journal)
    _set(root, closed_dates=[(LATE + dt.timedelta(days=1)).isoformat()])
    vendor = load_vendor("cafe_solsiden")
    pipeline.prepare(vendor, LATE + dt.timedelta(days=1), journal)  # closed by the calendar, no data
    later = LATE + dt.timedelta(days=3)
    again = pipeline.days_to_look_again(vendor, [later], journal)
    assert again == [LATE, LATE + dt.timedelta(days=1)]
    # still nothing: a day looked at again keeps its state quietly
    quiet = pipeline.prepare(vendor, LATE, journal, look_again=True)
    assert quiet == {**quiet, "state": "missing", "look_again": True}
    _write(root, LATE)
    _write(root, LATE + dt.timedelta(days=1))  # the "closed" day had sales after all
    for day in again:
        assert pipeline.prepare(vendor, day, journal, look_again=True)["state"] == "built"
        assert pipeline.post(vendor, day, client(), journal)["state"] == "posted"
    refs = sorted(v.external_voucher_number for v in app.state.store.list_vouchers())
    assert refs == [f"kassebro:cafe_solsiden:{d}" for d in again]
    assert pipeline.days_to_look_again(vendor, [later], journal) == []  # done days are not looked at again
    for day in again:  # and a run that does read them again posts nothing more
        pipeline.prepare(vendor, day, journal, look_again=True)
        assert pipeline.post(vendor, day, client(), journal)["already"] is True
    assert len(app.state.store.list_vouchers()) == 2
