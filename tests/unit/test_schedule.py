"""Business days from data intervals: every day once, skipped days carried, DST-safe."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kassebro.config import Schedule, Vendor
from kassebro.config.schedule import business_days, parse_dates, start_date

OSLO = ZoneInfo("Europe/Oslo")


def vendor(days: tuple[str, ...], time: str, since: dt.date = dt.date(2026, 11, 2)) -> Vendor:
    return Vendor.model_validate(
        {
            "id": "v",
            "name": "V",
            "enabled_since": since,
            "schedule": Schedule(days=days, time=time),
            "source": {"path": "x"},
            "ledger": {"connection": "c"},
            "mapping": {},
        }
    )


def local(y: int, m: int, d: int, h: int, mi: int) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=OSLO)


def test_morning_report_posts_yesterday() -> None:
    v = vendor(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "02:30")
    assert business_days(v, local(2026, 11, 9, 2, 30), local(2026, 11, 10, 2, 30)) == [dt.date(2026, 11, 9)]


def test_evening_report_posts_the_same_day() -> None:
    v = vendor(("mon", "tue", "wed", "thu", "fri", "sat"), "22:30")
    assert business_days(v, local(2026, 11, 9, 22, 30), local(2026, 11, 10, 22, 30)) == [dt.date(2026, 11, 10)]


def test_monday_run_carries_the_weekend() -> None:
    v = vendor(("mon", "tue", "wed", "thu", "fri"), "02:30")
    days = business_days(v, local(2026, 11, 6, 2, 30), local(2026, 11, 9, 2, 30))  # Fri -> Mon
    assert days == [dt.date(2026, 11, 6), dt.date(2026, 11, 7), dt.date(2026, 11, 8)]


def test_consecutive_intervals_cover_every_day_once() -> None:
    v = vendor(("tue", "thu", "sat"), "06:15", since=dt.date(2026, 10, 20))
    ticks = [local(2026, 10, 20, 6, 15) + dt.timedelta(days=i) for i in range(40)]
    ticks = [t for t in ticks if t.strftime("%a").lower()[:3] in ("tue", "thu", "sat")]
    seen: list[dt.date] = []
    for start, end in zip(ticks, ticks[1:], strict=False):
        seen += business_days(v, start, end)
    assert seen == sorted(set(seen))
    assert seen == [seen[0] + dt.timedelta(days=i) for i in range(len(seen))]


def test_dst_change_does_not_shift_days() -> None:
    v = vendor(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "02:30", since=dt.date(2026, 10, 1))
    # 2026-10-25: clocks go back at 03:00; intervals given in UTC as Airflow passes them
    start = local(2026, 10, 24, 2, 30).astimezone(dt.UTC)
    end = local(2026, 10, 25, 2, 30).astimezone(dt.UTC)
    nxt = local(2026, 10, 26, 2, 30).astimezone(dt.UTC)
    assert business_days(v, start, end) == [dt.date(2026, 10, 24)]
    assert business_days(v, end, nxt) == [dt.date(2026, 10, 25)]


def test_nothing_before_enabled_since() -> None:
    v = vendor(("mon", "tue", "wed", "thu", "fri"), "02:30", since=dt.date(2026, 11, 8))
    assert business_days(v, local(2026, 11, 6, 2, 30), local(2026, 11, 9, 2, 30)) == [dt.date(2026, 11, 8)]


def test_start_date_is_the_report_before_the_first_covering_one() -> None:
    morning = vendor(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "02:30", since=dt.date(2026, 11, 2))
    assert start_date(morning) == local(2026, 11, 2, 2, 30)  # next report (Nov 3) covers Nov 2
    evening = vendor(("mon", "tue", "wed", "thu", "fri", "sat"), "22:30", since=dt.date(2026, 11, 2))
    assert start_date(evening) == local(2026, 10, 31, 22, 30)  # Sunday has no report: Saturday's
    assert business_days(evening, start_date(evening), local(2026, 11, 2, 22, 30)) == [dt.date(2026, 11, 2)]


def test_parse_dates() -> None:
    assert parse_dates(["2026-11-03", "2026-11-01", "2026-11-03"]) == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 3),
    ]
    assert parse_dates("2026-11-03, 2026-11-04") == [dt.date(2026, 11, 3), dt.date(2026, 11, 4)]
    assert parse_dates(None) == [] and parse_dates([]) == []


def test_last_reported_day() -> None:
    from kassebro.config.schedule import last_reported_day

    evening = vendor(("mon", "tue", "wed", "thu", "fri", "sat"), "22:30")
    assert last_reported_day(evening, local(2026, 11, 10, 22, 0)) == dt.date(2026, 11, 9)
    assert last_reported_day(evening, local(2026, 11, 10, 22, 31)) == dt.date(2026, 11, 10)
    morning = vendor(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "02:30")
    assert last_reported_day(morning, local(2026, 11, 10, 2, 0)) == dt.date(2026, 11, 8)
    assert last_reported_day(morning, local(2026, 11, 10, 3, 0)) == dt.date(2026, 11, 9)


def _per_weekday(times: dict[str, str], since: dt.date = dt.date(2026, 11, 2)) -> Vendor:
    return Vendor.model_validate(
        {
            "id": "v",
            "name": "V",
            "enabled_since": since,
            "schedule": {"times": times},
            "source": {"path": "x"},
            "ledger": {"connection": "c"},
            "mapping": {},
        }
    )


def test_a_time_per_weekday_drives_days_deadlines_and_the_alert() -> None:
    """Mon-Fri at 21:00, Saturday at 17:00, no Sunday report: Monday's run carries Sunday."""
    from kassebro.config.schedule import alert_interval, data_deadline, report_moment

    v = _per_weekday({d: "21:00" for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": "17:00"})
    assert v.schedule.crons == ("0 17 * * sat", "0 21 * * mon,tue,wed,thu,fri")
    # a trigger timetable's point interval and a cron data interval give the same days
    saturday = local(2026, 11, 7, 17, 0)
    assert business_days(v, saturday, saturday) == [dt.date(2026, 11, 7)]
    monday = local(2026, 11, 9, 21, 0)
    assert business_days(v, monday, monday) == [dt.date(2026, 11, 8), dt.date(2026, 11, 9)]
    assert business_days(v, local(2026, 11, 6, 21, 0), local(2026, 11, 6, 21, 0)) == [dt.date(2026, 11, 6)]
    # every day is covered exactly once over three weeks of reports
    seen: list[dt.date] = []
    moment = local(2026, 11, 2, 12, 0)
    while moment < local(2026, 11, 23, 23, 0):
        for clock in ("17:00", "21:00"):
            at = dt.datetime.combine(moment.date(), dt.time.fromisoformat(clock), OSLO)
            if v.schedule.report_times.get(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[at.weekday()]) == clock:
                seen += business_days(v, at, at)
        moment += dt.timedelta(days=1)
    assert seen == [dt.date(2026, 11, 2) + dt.timedelta(days=n) for n in range(22)]
    # the deadline follows each day's own report time; Sunday waits for Monday's
    assert report_moment(v, dt.date(2026, 11, 7)) == local(2026, 11, 7, 17, 0)
    assert report_moment(v, dt.date(2026, 11, 8)) == local(2026, 11, 9, 21, 0)
    assert data_deadline(v, dt.date(2026, 11, 7)) == local(2026, 11, 7, 21, 0)
    # one alert interval: from the earliest time, so it never fires before post_by
    assert alert_interval(v) == dt.timedelta(hours=15)
    assert start_date(v) == local(2026, 10, 31, 17, 0)  # Saturday's: Monday's covers the 2nd


def test_times_must_stay_on_one_side_of_noon() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must all be before noon"):
        _per_weekday({"mon": "02:30", "sat": "22:00"})
