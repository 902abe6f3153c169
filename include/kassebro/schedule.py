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


def last_reported_day(vendor: Vendor, now: dt.datetime) -> dt.date:
    """The last business day whose report time has passed at `now` (ignoring skipped weekdays)."""
    local = now.astimezone(ZoneInfo(vendor.timezone))
    hour, minute = (int(p) for p in vendor.schedule.time.split(":"))
    report_today = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    latest_report = report_today if local >= report_today else report_today - dt.timedelta(days=1)
    return last_covered_day(latest_report, vendor.schedule.posts_same_day)


def business_days(vendor: Vendor, interval_start: dt.datetime, interval_end: dt.datetime) -> list[dt.date]:
    """The business days a run with this data interval posts, from *enabled since* on."""
    zone = ZoneInfo(vendor.timezone)
    same_day = vendor.schedule.posts_same_day
    first = last_covered_day(interval_start.astimezone(zone), same_day) + dt.timedelta(days=1)
    last = last_covered_day(interval_end.astimezone(zone), same_day)
    first = max(first, vendor.enabled_since)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def start_date(vendor: Vendor) -> dt.datetime:
    """The report time whose *next* report is the first to cover *enabled since*.

    Used as the DAG's start_date, so the first catch-up interval ends at the first report that
    covers *enabled since* and no interval before it is created.
    """
    hour, minute = (int(p) for p in vendor.schedule.time.split(":"))
    zone = ZoneInfo(vendor.timezone)
    # latest report date r with last_covered_day(r) < enabled_since, on a scheduled weekday
    latest = vendor.enabled_since - dt.timedelta(days=1) if vendor.schedule.posts_same_day else vendor.enabled_since
    for back in range(7):
        day = latest - dt.timedelta(days=back)
        if WEEKDAYS[day.weekday()] in vendor.schedule.days:
            return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    raise AssertionError("a schedule has at least one weekday")  # pragma: no cover


def parse_dates(values: object) -> list[dt.date]:
    """Dates given on a manual trigger ("2026-11-03", or a list of them); raises ValueError."""
    if values in (None, "", []):
        return []
    items = values.replace(",", " ").split() if isinstance(values, str) else list(values)  # type: ignore[union-attr]
    return sorted({dt.date.fromisoformat(str(v).strip()) for v in items})


def report_moment(vendor: Vendor, day: dt.date) -> dt.datetime:
    """When the report covering business day `day` is due (local, aware): the schedule's time on
    the day itself for an afternoon or evening report, on the next day for one in the small hours."""
    hour, minute = (int(p) for p in vendor.schedule.time.split(":"))
    on = day if vendor.schedule.posts_same_day else day + dt.timedelta(days=1)
    return dt.datetime(on.year, on.month, on.day, hour, minute, tzinfo=ZoneInfo(vendor.timezone))


def data_deadline(vendor: Vendor, day: dt.date) -> dt.datetime:
    """The moment by which `day`'s sales data must be there (report time + `data_deadline_hours`)."""
    return report_moment(vendor, day) + dt.timedelta(hours=vendor.data_deadline_hours)
