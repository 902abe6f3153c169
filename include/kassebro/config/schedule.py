"""Which business days a run posts, derived from its data interval (never from logical_date).

A run's data interval is (previous report time, this report time] in the vendor's zone. The last
business day a report at local time t covers is t's date for an afternoon/evening report and the
day before for a report in the small hours. A run carries every day after the previous report's
last day up to its own: a Monday run of a Mon-Fri schedule carries Friday to Sunday, and adjacent
runs never share a day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kassebro.config import WEEKDAYS, Vendor


def last_covered_day(moment: dt.datetime, posts_same_day: bool) -> dt.date:
    """The last business day a report sent at `moment` (local, aware) covers."""
    return moment.date() if posts_same_day else moment.date() - dt.timedelta(days=1)


def report_on(vendor: Vendor, day: dt.date) -> dt.datetime | None:
    """The report moment on calendar date `day` (local, aware), or None when that weekday has none."""
    clock = vendor.schedule.report_times.get(WEEKDAYS[day.weekday()])
    if clock is None:
        return None
    hour, minute = (int(p) for p in clock.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(vendor.timezone))


def report_at_or_before(vendor: Vendor, moment: dt.datetime) -> dt.datetime:
    """The latest scheduled report at or before `moment`."""
    local = moment.astimezone(ZoneInfo(vendor.timezone))
    for back in range(8):
        report = report_on(vendor, local.date() - dt.timedelta(days=back))
        if report is not None and report <= local:
            return report
    raise AssertionError("a schedule reports at least once a week")  # pragma: no cover


def report_before(vendor: Vendor, moment: dt.datetime) -> dt.datetime:
    """The latest scheduled report strictly before `moment`."""
    return report_at_or_before(vendor, moment - dt.timedelta(minutes=1))


def last_reported_day(vendor: Vendor, now: dt.datetime) -> dt.date:
    """The last business day whose report time has passed at `now`."""
    return last_covered_day(report_at_or_before(vendor, now), vendor.schedule.posts_same_day)


def business_days(vendor: Vendor, interval_start: dt.datetime, interval_end: dt.datetime) -> list[dt.date]:
    """The business days a run whose data interval ends at `interval_end` posts, from *enabled
    since* on: those after the previous report's last day up to the last day of the latest report
    at or before `interval_end`. The start is taken from the schedule, not from `interval_start`,
    so a cron data interval and a trigger timetable's point interval give the same days.
    """
    same_day = vendor.schedule.posts_same_day
    this_report = report_at_or_before(vendor, interval_end)
    first = last_covered_day(report_before(vendor, this_report), same_day) + dt.timedelta(days=1)
    last = last_covered_day(this_report, same_day)
    first = max(first, vendor.enabled_since)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def first_report(vendor: Vendor) -> dt.datetime:
    """The first scheduled report that covers *enabled since*."""
    covered_from = vendor.enabled_since if vendor.schedule.posts_same_day else vendor.enabled_since + dt.timedelta(1)
    for ahead in range(8):
        report = report_on(vendor, covered_from + dt.timedelta(days=ahead))
        if report is not None:
            return report
    raise AssertionError("a schedule reports at least once a week")  # pragma: no cover


def start_date(vendor: Vendor) -> dt.datetime:
    """The report time whose *next* report is the first to cover *enabled since*.

    Used as the DAG's start_date, so the first catch-up interval ends at the first report that
    covers *enabled since* and no interval before it is created.
    """
    return report_before(vendor, first_report(vendor))


def parse_dates(values: object) -> list[dt.date]:
    """Dates given on a manual trigger ("2026-11-03", or a list of them); raises ValueError."""
    if values in (None, "", []):
        return []
    items = values.replace(",", " ").split() if isinstance(values, str) else list(values)  # type: ignore[union-attr]
    return sorted({dt.date.fromisoformat(str(v).strip()) for v in items})


def report_moment(vendor: Vendor, day: dt.date) -> dt.datetime:
    """When the report covering business day `day` is due (local, aware): the first scheduled
    report from the day itself (an afternoon or evening schedule) or the next day (one in the
    small hours), at that weekday's time."""
    on = day if vendor.schedule.posts_same_day else day + dt.timedelta(days=1)
    for ahead in range(8):
        report = report_on(vendor, on + dt.timedelta(days=ahead))
        if report is not None:
            return report
    raise AssertionError("a schedule reports at least once a week")  # pragma: no cover


def data_deadline(vendor: Vendor, day: dt.date) -> dt.datetime:
    """The moment by which `day`'s sales data must be there (report time + `data_deadline_hours`)."""
    return report_moment(vendor, day) + dt.timedelta(hours=vendor.data_deadline_hours)


def alert_interval(vendor: Vendor) -> dt.timedelta:
    """From the report time (when a scheduled run is queued) to the vendor's `alert.post_by`.

    One interval serves every weekday: with a time per weekday it is measured from the earliest,
    so the alert never fires before `post_by`; on a later-reporting weekday it fires that much late.
    """

    def minutes(text: str) -> int:
        hour, minute = (int(p) for p in text.split(":"))
        return hour * 60 + minute

    earliest = min(minutes(t) for t in vendor.schedule.report_times.values())
    gap = (minutes(vendor.alert.post_by) - earliest) % (24 * 60)
    return dt.timedelta(minutes=gap or 24 * 60)
