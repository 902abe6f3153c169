"""The deadline alert: a vendor's night not posted by `alert.post_by` mails the data team.

Each vendor DAG carries an Airflow `DeadlineAlert` (reference: when its run was queued, that is
its report time for a scheduled run). When the scheduler finds it missed, the triggerer awaits
`night_not_posted` with the run's facts; it names the vendor, the run's days and each day's state
from the journal, and sends the mail through Airflow's SMTP notifier (provider smtp).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from typing import Any

CALLBACK = "kassebro.airflow.alerts.night_not_posted"


def deadline_alert(vendor: Any) -> Any:
    """The DeadlineAlert of a vendor's DAG, or None when nobody is to be told (`alert.to` empty)."""
    if not vendor.alert.to:
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from kassebro.config.schedule import alert_interval

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=alert_interval(vendor),
        callback=AsyncCallback(CALLBACK, kwargs={"vendor_id": vendor.id}),
        name=f"{vendor.id} posted by {vendor.alert.post_by}",
    )


def days_of_run(vendor: Any, dag_run: dict[str, Any]) -> list[dt.date]:
    """The business days a run covers: the dates it was given, else those of its data interval."""
    from kassebro.config.schedule import business_days, parse_dates

    asked = parse_dates((dag_run.get("conf") or {}).get("dates"))
    if asked:
        return asked
    start, end = dag_run.get("data_interval_start"), dag_run.get("data_interval_end")
    if not start or not end:
        return []
    return business_days(vendor, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))


def compose(vendor: Any, dag_run: dict[str, Any], journal: Any) -> tuple[str, str]:
    """(subject, html body): the vendor, the run's days and their states, and the recent days not done."""
    from kassebro.posting.journal import DONE, LOOK_AGAIN

    days = days_of_run(vendor, dag_run)
    recent: list[dt.date] = []
    if days:
        first = max(vendor.enabled_since, min(days) - dt.timedelta(days=vendor.lookback_days))
        recent = [d for d in journal.days_in(vendor.id, LOOK_AGAIN, first, max(days)) if d not in days]
    rows = []
    for day in [*days, *recent]:
        entry = journal.get(vendor.id, day)
        state = entry.state if entry else "not started"
        message = entry.message if entry else ""
        rows.append((day, state, message))
    not_done = [r for r in rows if r[1] not in DONE]
    subject = (
        f"kassebro: {vendor.name} ({vendor.id}) not posted by {vendor.alert.post_by}: "
        + (", ".join(f"{d} {s}" for d, s, _m in not_done) or "run not finished")
    )[:250]
    table = "".join(
        f"<tr><td>{d}</td><td>{html.escape(s)}</td><td>{html.escape(m[:500])}</td></tr>" for d, s, m in rows
    )
    body = (
        f"<p>The night of <b>{html.escape(vendor.name)}</b> (<code>{vendor.id}</code>, "
        f"{vendor.ledger.system}) was not posted by {vendor.alert.post_by} "
        f"(run <code>{html.escape(str(dag_run.get('run_id', '')))}</code>, state "
        f"{html.escape(str(dag_run.get('state', '')))}).</p>"
        f"<table><tr><th>day</th><th>state</th><th>message</th></tr>{table}</table>"
        "<p>Airflow UI: the vendor's DAG; the morning view: Kassebro journal. "
        "See docs/operations.md.</p>"
    )
    return subject, body


async def night_not_posted(vendor_id: str, context: dict[str, Any] | None = None, **_: Any) -> None:
    """The deadline alert's callback (run by the triggerer): mail the vendor's state."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from kassebro.config import load_vendor
    from kassebro.posting.journal import Journal

    context = context or {}
    vendor = await asyncio.to_thread(load_vendor, vendor_id)
    subject, body = await asyncio.to_thread(compose, vendor, context.get("dag_run") or {}, Journal())
    notifier = SmtpNotifier(
        to=list(vendor.alert.to),
        from_email=vendor.alert.from_email,
        subject=subject,
        html_content=body,
        smtp_conn_id=vendor.alert.smtp_connection,
    )
    await notifier.async_notify(context)
