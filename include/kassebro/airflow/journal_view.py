"""The morning view: every vendor's days as a calendar grid, a page inside Airflow's UI.

One row per vendor, one column per day, each cell coloured *and* marked by its state (posted,
parked for approval, closed, waiting for data, held back by validation, failed, reconciliation
finding, not posted yet, not yet due), with the day's DAG run, validation report and voucher in
the ledger one click away, and the vendor's last 30 days of sales as a sparkline.

Served by the API server through the plugin in `plugins/kassebro_plugin.py` (under `/kassebro`);
only signed-in Airflow users see it (the same session cookie or bearer token as the rest of the
UI). `/kassebro/morning` is the page, `/kassebro/morning.json` the same data as JSON.

What a page reads, whatever the number of vendors: the vendor files (kept until one changes), one
journal query and one findings query for the page's vendors and days, one query on Airflow's
metadata DB for the page's DAG runs, and each distinct ledger connection (kept a minute). A
state filter first reads the states of every vendor it filters (one lighter journal query; the
findings query then covers them all) to know which vendors to page through. Never a query per cell.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from kassebro.config import ConfigSet, Vendor
    from kassebro.readback.findings import Finding

URL_PREFIX = "/kassebro"
"""Where the plugin mounts the app (plugins/kassebro_plugin.py); Airflow's UI is what lies above it."""
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
DEFAULT_DAYS = 30
MIN_DAYS, MAX_DAYS = 7, 62
SPARK_DAYS = 30
ZONE = ZoneInfo("Europe/Oslo")
"""Whose "today" ends the grid by default (each vendor's own zone decides when its days are due)."""
MESSAGE_CHARS = 300
VENDOR_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")  # as kassebro.config.Vendor.id


@dataclass(frozen=True)
class Look:
    """How a state shows: its name for people, colour, mark (text, so colour is never alone), meaning."""

    key: str
    label: str
    colour: str
    mark: str
    meaning: str


LOOKS: tuple[Look, ...] = (
    Look("posted", "Posted", "#1a7f37", "✓", "the voucher is in the ledger"),
    Look("parked", "Parked for approval", "#0969da", "P", "the voucher waits for someone to approve it in the ledger"),
    Look(
        "closed",
        "Closed",
        "#6e7781",
        "–",
        "nothing to post: the POS reported no sales, or the calendar has the shop closed",
    ),
    Look("waiting", "Waiting for data", "#9a6700", "…", "no sales data yet (outlined red: past its data deadline)"),
    Look("held_back", "Held back by validation", "#bc4c00", "!", "a validation or booking rule failed: see the report"),
    Look("failed", "Failed", "#cf222e", "✗", "the ledger refused the voucher or the credentials"),
    Look("finding", "Reconciliation finding", "#8250df", "≠", "the ledger disagrees with the journal or the Z report"),
    Look(
        "in_progress", "Not posted yet", "#1b7c83", "↻", "built or being posted; an unknown outcome is looked up first"
    ),
    Look("not_due", "Not yet due", "#ffffff", "·", "the report covering the day is not due yet"),
    Look("blank", "Not enabled", "#f6f8fa", "", "before the vendor's enabled-since date"),
)
LOOK = {look.key: look for look in LOOKS}
STATE_KEYS = tuple(look.key for look in LOOKS)

_JOURNAL_TO_STATE = {
    "posted": "posted",
    "parked": "parked",
    "closed": "closed",
    "closed_calendar": "closed",
    "empty": "closed",
    "waiting": "waiting",
    "missing": "waiting",
    "extracted": "in_progress",
    "validated": "in_progress",
    "built": "in_progress",
    "posting": "in_progress",
    "unknown": "in_progress",
}
NO_REPORT = ("waiting", "missing", "empty")
"""Journal states recorded without a validation report (prepare writes one for every day it read)."""
_REVENUE_STATES = ("posted", "parked", "built", "posting", "unknown", "closed", "closed_calendar", "empty")
"""Journal states whose stored voucher is the day as last built (a held-back day may keep an older one)."""

# ---------------------------------------------------------------------------------------------
# Voucher addresses in the ledgers' own web apps, per (system, environment). Only where the system
# gives one; elsewhere the cell names the voucher number without a link rather than guess an address.
VOUCHER_URLS: dict[tuple[str, str], str] = {
    # Tripletex: its v2 API hands this link out itself (an expense's links in an API answer carry
    # rel GO_TO_VOUCHER, href "/execute/voucherMenu?voucherId=<id>&contextId=<company id>", relative
    # to the API's host). Observed in an answer, not in the API reference. contextId (the company)
    # is left out: INFERRED that Tripletex then opens the voucher in the signed-in user's own
    # company, which is the vendor's for a company's own connection (accounting-firm clients get
    # no link: their company id is not known here).
    ("tripletex", "production"): "https://tripletex.no/execute/voucherMenu?voucherId={ledger_id}",
    # INFERRED: the test environment serves its web app on its API's host, as production does
    # (https://tripletex.no/v2 -> https://tripletex.no/execute/...).
    ("tripletex", "test"): "https://api-test.tripletex.tech/execute/voucherMenu?voucherId={ledger_id}",
    # Fiken, PowerOffice Go, Xledger, Duett: no documented web address of a single voucher found;
    # left out (the cell shows the voucher number and the ledger's id instead).
}
SANDBOX_VOUCHERS = "{origin}/_sandbox/vouchers"
"""Every local sandbox lists what it holds here (`kassebro.sandbox.admin`); they have no web app."""


def voucher_url(system: str, environment: str, base_url: str, ledger_id: str | None) -> str | None:
    """The voucher's address for a person: the system's web app, a sandbox's voucher listing, or None."""
    if not ledger_id:
        return None
    if environment == "sandbox":
        parts = urlsplit(base_url)
        return SANDBOX_VOUCHERS.format(origin=f"{parts.scheme}://{parts.netloc}") if parts.netloc else None
    template = VOUCHER_URLS.get((system, environment))
    return template.format(ledger_id=quote(str(ledger_id), safe="")) if template else None


# ---------------------------------------------------------------------------------------------
# What the page is made of


@dataclass(frozen=True)
class Row:
    """The journal columns the page reads for one vendor-day (voucher_json only for the page itself)."""

    vendor_id: str
    business_day: dt.date
    state: str
    ledger_id: str | None = None
    ledger_number: str | None = None
    attempts: int = 0
    message: str = ""
    total_debit_ore: int = 0
    voucher_json: str | None = None


@dataclass(frozen=True)
class RunRef:
    """A DAG run as Airflow's metadata DB holds it (the columns the page needs)."""

    dag_id: str
    run_id: str
    run_type: str
    state: str | None
    run_after: dt.datetime
    data_interval_start: dt.datetime | None = None
    data_interval_end: dt.datetime | None = None
    conf: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Cell:
    day: dt.date
    state: str
    title: str
    message: str = ""
    journal_state: str | None = None
    overdue: bool = False
    revenue_ore: int | None = None
    voucher: str = ""
    run_url: str | None = None
    run_label: str = ""
    report_url: str | None = None
    voucher_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "state": self.state,
            "label": LOOK[self.state].label,
            "title": self.title,
            "message": self.message,
            "journal_state": self.journal_state,
            "overdue": self.overdue,
            "revenue_ore": self.revenue_ore,
            "voucher": self.voucher,
            "links": {"run": self.run_url, "report": self.report_url, "voucher": self.voucher_url},
            "run": self.run_label,
        }


@dataclass(frozen=True)
class VendorRow:
    vendor_id: str
    name: str
    ledger_system: str
    dag_id: str
    enabled_since: dt.date
    cells: tuple[Cell, ...]
    revenue: tuple[tuple[dt.date, int | None], ...]
    dag_url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor_id,
            "name": self.name,
            "ledger_system": self.ledger_system,
            "dag_id": self.dag_id,
            "dag_url": self.dag_url,
            "enabled_since": self.enabled_since.isoformat(),
            "revenue": [{"day": d.isoformat(), "ore": ore} for d, ore in self.revenue],
            "cells": [cell.to_json() for cell in self.cells],
        }


@dataclass(frozen=True)
class Query:
    """What the person asked for (the page's query parameters)."""

    ledger: str = ""
    state: str = ""
    page: int = 1
    per_page: int = PAGE_SIZE
    days: int = DEFAULT_DAYS
    end: dt.date | None = None

    def params(self, **change: Any) -> str:
        values = {
            "ledger": self.ledger,
            "state": self.state,
            "page": self.page,
            "per_page": self.per_page,
            "days": self.days,
            "end": self.end.isoformat() if self.end else "",
            **change,
        }
        defaults = {"page": 1, "per_page": PAGE_SIZE, "days": DEFAULT_DAYS}
        return urlencode({k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v})


@dataclass(frozen=True)
class Morning:
    query: Query
    first: dt.date
    last: dt.date
    page: int
    pages: int
    total: int
    rows: tuple[VendorRow, ...]
    systems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATE_KEYS, 0)
        for row in self.rows:
            for cell in row.cells:
                counts[cell.state] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "filters": {"ledger": self.query.ledger or None, "state": self.query.state or None},
            "page": self.page,
            "pages": self.pages,
            "per_page": self.query.per_page,
            "vendors_matching": self.total,
            "ledger_systems": list(self.systems),
            "legend": [{"state": look.key, "label": look.label, "meaning": look.meaning} for look in LOOKS],
            "counts": self.counts(),
            "notes": list(self.notes),
            "generated_at": self.now.isoformat(),
            "vendors": [row.to_json() for row in self.rows],
        }


# ---------------------------------------------------------------------------------------------
# A day's state


def held_back(vendor_id: str, day: dt.date, message: str) -> bool:
    """Whether a `failed` journal row is a day held back by validation rather than a ledger failure.

    The journal has no column for the kind; the message tells them apart. `pipeline.prepare`
    records a held-back day with its failed rules as `Issue`s, one per line, each
    "<vendor>/<day>: [<rule>] <message>" (`ValidationReport.issues`); a ledger's refusal is
    recorded when the post gives its claim back, with the LedgerError's text, which starts with
    the system's name ("Tripletex: ...").
    """
    return message.startswith(f"{vendor_id}/{day.isoformat()}: [")


def revenue_accounts(vendor: Vendor) -> frozenset[str]:
    """The vendor's sales accounts: every account its accounting keys book revenue to (keys with
    `vat: false` hold gift cards and deposits, which are not revenue)."""
    accounts: set[str] = set()
    for key in vendor.mapping.accounting_keys.values():
        if key.vat:
            accounts.update((key.account, *key.alternative_accounts.values(), *key.vat_code_accounts.values()))
    return frozenset(accounts)


def revenue_ore(voucher_json: str | None, accounts: frozenset[str]) -> int | None:
    """The day's sales including VAT, net of returns and discounts: what the voucher credits to the
    vendor's sales accounts (the day's debit total would count the payments too, and tips, gift
    cards and rounding with them)."""
    if not voucher_json:
        return None
    lines = json.loads(voucher_json).get("lines", [])
    return -sum(int(line["amount"]) for line in lines if str(line["account"]) in accounts)


def _when(moment: dt.datetime) -> str:
    return f"{moment:%a %d %b %H:%M} {moment.tzname()}"


def judge(vendor: Vendor, day: dt.date, row: Row | None, findings: Sequence[Finding], now: dt.datetime) -> Cell:
    """The cell of one vendor-day: its state and the sentence a person reads (no links yet)."""
    from kassebro.config.schedule import data_deadline, report_moment
    from kassebro.ledgers import registry

    where = f"{vendor.id} {day.isoformat()}"
    if row is None and not findings:
        if day < vendor.enabled_since:
            return Cell(day, "blank", f"{where}: not enabled; posted from {vendor.enabled_since.isoformat()}")
        due = report_moment(vendor, day)
        if now < due:
            return Cell(day, "not_due", f"{where}: not yet due; its report is due {_when(due)}")
        deadline = data_deadline(vendor, day)
        late = now >= deadline
        closed = "" if vendor.is_open(day) else " The calendar has the shop closed that day."
        text = (
            f"{where}: waiting; no run has recorded this day yet (its report was due {_when(due)}"
            f"{'; the data deadline ' + _when(deadline) + ' has passed' if late else ''}).{closed}"
        )
        return Cell(day, "waiting", text, overdue=late)
    journal_state = row.state if row else None
    voucher = (row.ledger_number or row.ledger_id or "") if row and row.state in ("posted", "parked") else ""
    if findings:
        said = "; ".join(f"{f.kind}: {f.message}" for f in findings)
        underneath = f" (journal: {row.state})" if row else ""
        title = f"{where}: reconciliation finding{underneath}: {said}"
        return Cell(day, "finding", title, said[:MESSAGE_CHARS], journal_state, voucher=voucher)
    assert row is not None
    message = row.message[:MESSAGE_CHARS]
    system = registry.get(vendor.ledger.system).title if vendor.ledger.system in registry.names() else ""
    if row.state == "failed":
        if held_back(vendor.id, day, row.message):
            rules = sorted(set(re.findall(r"^\S+: \[([^\]]+)\]", row.message, flags=re.M)))
            title = f"{where}: held back by validation ({', '.join(rules)})"
            return Cell(day, "held_back", title, message, row.state)
        return Cell(day, "failed", f"{where}: failed after {row.attempts} attempt(s): {message}", message, row.state)
    state = _JOURNAL_TO_STATE.get(row.state, "in_progress")
    if state == "posted":
        title = f"{where}: posted, voucher {voucher} in {system}"
    elif state == "parked":
        title = f"{where}: parked for approval in {system}, voucher {voucher}"
    elif row.state == "missing":
        title = f"{where}: waiting for data, past its deadline: {message}"
    elif row.state == "unknown":
        title = f"{where}: outcome unknown; the next attempt looks the voucher up before posting: {message}"
    elif state == "in_progress":
        title = f"{where}: {row.state}, not posted yet{': ' + message if message else ''}"
    else:
        title = f"{where}: {LOOK[state].label.lower()}{': ' + message if message else ''}"
    return Cell(day, state, title, message, row.state, overdue=row.state == "missing", voucher=voucher)


def has_revenue(vendor_id: str, day: dt.date, row: Row | None) -> bool:
    """Whether the row's stored voucher is the day's sales as last built: not for a day held back
    (it may keep the voucher of an earlier build) or one without data."""
    if row is None:
        return False
    return row.state in _REVENUE_STATES or (row.state == "failed" and not held_back(vendor_id, day, row.message))


# ---------------------------------------------------------------------------------------------
# DAG runs


def run_days(vendor: Vendor, run: RunRef) -> list[dt.date]:
    """The business days a run carried, as its `plan_days` task chose them: the dates given on
    trigger, else the days of its data interval (`config.schedule.business_days`)."""
    from kassebro.config.schedule import business_days, parse_dates

    try:
        asked = parse_dates((run.conf or {}).get("dates"))
    except (TypeError, ValueError):
        asked = []
    if asked:
        return asked
    if run.data_interval_start is None or run.data_interval_end is None:
        return []
    return business_days(vendor, run.data_interval_start, run.data_interval_end)


def runs_by_day(vendor: Vendor, runs: Iterable[RunRef]) -> dict[dt.date, RunRef]:
    """Each day's latest run that carried it (a later manual run over a day wins)."""
    found: dict[dt.date, RunRef] = {}
    for run in sorted(runs, key=lambda r: r.run_after):
        for day in run_days(vendor, run):
            found[day] = run
    return found


def run_url(ui: str, vendor: Vendor, day: dt.date, run: RunRef | None) -> str:
    """The day's DAG run in Airflow's UI.

    Run ids are not derivable from the day alone: a scheduled run is `scheduled__<run_after>`, but
    a backfill's is `backfill__...` and a manual run with `dates` (the demo, `kassebro`'s tests, a
    person re-running a day) is `manual__<run_after>` at whatever moment it was triggered. So the
    page looks the runs up in Airflow's metadata DB; without one for the day, the link goes to the
    DAG's runs filtered by *run after* from the day's start to a day after its report time (the UI's
    `run_after_gte`/`run_after_lte`; the logical date would not do: it is the data interval's
    start, the previous report, and a manual run's is its trigger time).
    """
    dag = quote(vendor.dag_id, safe="")
    if run is not None:
        return f"{ui}/dags/{dag}/runs/{quote(run.run_id, safe='')}"
    from kassebro.config.schedule import report_moment

    start = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(vendor.timezone)).astimezone(dt.UTC)
    until = (report_moment(vendor, day) + dt.timedelta(days=1)).astimezone(dt.UTC)
    query = urlencode({"run_after_gte": start.isoformat(), "run_after_lte": until.isoformat()})
    return f"{ui}/dags/{dag}/runs?{query}"


def airflow_runs(dag_ids: Sequence[str], since: dt.datetime) -> list[RunRef]:
    """The DAG runs of these DAGs that may carry a day from `since` on: one query on Airflow's DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if not dag_ids:
        return []
    t = DagRun.__table__.c
    query = select(
        t.dag_id,
        t.run_id,
        t.run_type,
        t.state,
        t.run_after,
        t.data_interval_start,
        t.data_interval_end,
        t.conf,
    ).where(t.dag_id.in_(list(dag_ids)), t.run_after >= since)
    with create_session() as session:
        rows = session.execute(query).all()
    return [
        RunRef(
            r.dag_id,
            r.run_id,
            str(r.run_type),
            r.state,
            r.run_after,
            r.data_interval_start,
            r.data_interval_end,
            r.conf if isinstance(r.conf, Mapping) else None,
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------
# Ledger connections (for voucher addresses) and vendor files, both kept between requests

_LOCATIONS: dict[tuple[str, str], tuple[float, tuple[str, str] | None]] = {}
_LOCK = threading.Lock()
LOCATION_SECONDS = 60.0


def ledger_location(system: str, conn_id: str) -> tuple[str, str] | None:
    """(environment, API base URL) of a ledger connection, as the hooks resolve them; None when the
    connection cannot be read. Kept LOCATION_SECONDS: one lookup per connection, not per cell."""
    key = (system, conn_id)
    with _LOCK:
        kept = _LOCATIONS.get(key)
        if kept and time.monotonic() - kept[0] < LOCATION_SECONDS:
            return kept[1]
    found: tuple[str, str] | None
    try:
        from airflow.models.connection import Connection

        from kassebro.ledgers import registry

        conn = Connection.get_connection_from_secrets(conn_id)
        extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
        environment = extra.get("environment") or extra.get(f"extra__{system}__environment")
        environment = environment or ("sandbox" if conn.host else "production")
        found = (environment, registry.get(system).urls(environment, conn.host)[0])
    except Exception:  # noqa: BLE001 - a connection we cannot read only costs the voucher link
        found = None
    with _LOCK:
        _LOCATIONS[key] = (time.monotonic(), found)
    return found


_VENDORS: dict[str, tuple[tuple, ConfigSet]] = {}


def current_vendors(root: Path | None = None) -> ConfigSet:
    """Every vendor file, loaded again only when a file under the config directory changed."""
    from kassebro.config import config_dir, load_vendors

    root = root or config_dir()
    files = sorted(root.rglob("*.y*ml")) if root.is_dir() else []
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _LOCK:
        kept = _VENDORS.get(str(root))
        if kept and kept[0] == stamp:
            return kept[1]
    configs = load_vendors(root)
    with _LOCK:
        _VENDORS[str(root)] = (stamp, configs)
    return configs


# ---------------------------------------------------------------------------------------------
# The page's data: a handful of queries, whatever the number of vendors


def _journal_rows(
    url: str, vendor_ids: Sequence[str], first: dt.date, last: dt.date, *, light: bool
) -> dict[tuple[str, dt.date], Row]:
    """The journal rows of these vendors from `first` to `last`: one query. `light` leaves out the
    voucher and all but the head of the message (enough to tell a held-back day)."""
    from sqlalchemy import func, select

    from kassebro.posting.journal import Journal, journal_table

    c = journal_table.c
    message = func.substr(c.message, 1, 100).label("message") if light else c.message
    columns = [c.vendor_id, c.business_day, c.state, message]
    if not light:
        columns += [c.ledger_id, c.ledger_number, c.attempts, c.total_debit_ore, c.voucher_json]
    query = select(*columns).where(c.business_day >= first, c.business_day <= last)
    wanted = set(vendor_ids)
    if len(wanted) <= 500:  # else read the days of every vendor and keep ours (no huge IN list)
        query = query.where(c.vendor_id.in_(sorted(wanted)))
    with Journal(url).engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {
        (r["vendor_id"], r["business_day"]): Row(**{**r, "message": r["message"] or ""})
        for r in rows
        if r["vendor_id"] in wanted
    }


def _findings(url: str, vendor_ids: Sequence[str], first: dt.date, last: dt.date) -> dict[tuple[str, dt.date], list]:
    from kassebro.readback.findings import Findings

    found: dict[tuple[str, dt.date], list] = {}
    ids = list(vendor_ids) if len(vendor_ids) <= 500 else None
    wanted = set(vendor_ids)
    for finding in Findings(url).read(ids, first, last):
        if finding.vendor_id in wanted:
            found.setdefault((finding.vendor_id, finding.business_day), []).append(finding)
    return found


def build(
    query: Query,
    vendors: Sequence[Vendor],
    *,
    journal_url: str,
    now: dt.datetime,
    runs: Callable[[Sequence[str], dt.datetime], list[RunRef]] = airflow_runs,
    locations: Callable[[str, str], tuple[str, str] | None] = ledger_location,
    ui: str = "",
    base: str = "",
    notes: Sequence[str] = (),
) -> Morning:
    """The morning view's data for one page. `ui` is Airflow UI's root path, `base` this app's."""
    last = query.end or now.astimezone(ZONE).date()
    first = last - dt.timedelta(days=query.days - 1)
    spark_first = last - dt.timedelta(days=SPARK_DAYS - 1)
    days = [first + dt.timedelta(days=i) for i in range(query.days)]
    notes = list(notes)

    candidates = sorted((v for v in vendors if not query.ledger or v.ledger.system == query.ledger), key=lambda v: v.id)
    all_findings: dict[tuple[str, dt.date], list] | None = None
    if query.state:
        ids = [v.id for v in candidates]
        light = _journal_rows(journal_url, ids, first, last, light=True)
        all_findings = _findings(journal_url, ids, first, last)
        candidates = [
            v
            for v in candidates
            if any(
                judge(v, d, light.get((v.id, d)), all_findings.get((v.id, d), ()), now).state == query.state
                for d in days
            )
        ]
    total = len(candidates)
    pages = max(1, math.ceil(total / query.per_page))
    page = min(max(1, query.page), pages)
    shown = candidates[(page - 1) * query.per_page : page * query.per_page]
    ids = [v.id for v in shown]

    rows = _journal_rows(journal_url, ids, min(first, spark_first), last, light=False) if ids else {}
    findings = all_findings if all_findings is not None else (_findings(journal_url, ids, first, last) if ids else {})
    try:
        dag_runs = runs([v.dag_id for v in shown], dt.datetime.combine(first, dt.time(), dt.UTC) - dt.timedelta(days=1))
    except Exception as exc:  # noqa: BLE001 - the page still shows the journal; the links say less
        dag_runs = []
        notes.append(
            f"Airflow's DAG runs could not be read ({type(exc).__name__}): each day links to its DAG's runs "
            "filtered by date instead of the run itself."
        )
    by_dag: dict[str, list[RunRef]] = {}
    for run in dag_runs:
        by_dag.setdefault(run.dag_id, []).append(run)

    out = []
    for vendor in shown:
        accounts = revenue_accounts(vendor)
        location = locations(vendor.ledger.system, vendor.ledger.connection)
        firm_client = bool(vendor.ledger.client_org_number)
        carried = runs_by_day(vendor, by_dag.get(vendor.dag_id, ()))
        cells = []
        for day in days:
            row = rows.get((vendor.id, day))
            cell = judge(vendor, day, row, findings.get((vendor.id, day), ()), now)
            if cell.state == "blank":
                cells.append(cell)
                continue
            run = carried.get(day)
            report = None
            if row is not None and row.state not in NO_REPORT:  # no lookup per cell in the work store
                report = f"{base}/report/{vendor.id}/{day.isoformat()}"
            link = None
            if row is not None and row.state in ("posted", "parked") and location and not firm_client:
                link = voucher_url(vendor.ledger.system, location[0], location[1], row.ledger_id)
            cells.append(
                replace(
                    cell,
                    run_url=run_url(ui, vendor, day, run) if cell.state != "not_due" or run else None,
                    run_label=f"{run.run_id} ({run.state})" if run else "",
                    report_url=report,
                    voucher_url=link,
                    revenue_ore=revenue_ore(row.voucher_json, accounts) if has_revenue(vendor.id, day, row) else None,
                )
            )
        revenue = []
        for i in range(SPARK_DAYS):
            day = spark_first + dt.timedelta(days=i)
            row = rows.get((vendor.id, day))
            revenue.append((day, revenue_ore(row.voucher_json, accounts) if has_revenue(vendor.id, day, row) else None))
        out.append(
            VendorRow(
                vendor.id,
                vendor.name,
                vendor.ledger.system,
                vendor.dag_id,
                vendor.enabled_since,
                tuple(cells),
                tuple(revenue),
                dag_url=f"{ui}/dags/{quote(vendor.dag_id, safe='')}",
            )
        )
    systems = tuple(sorted({v.ledger.system for v in vendors} | ({query.ledger} if query.ledger else set())))
    return Morning(query, first, last, page, pages, total, tuple(out), systems, tuple(notes), now)


# ---------------------------------------------------------------------------------------------
# HTML


def kroner(ore: int) -> str:
    """12345678 -> "123 456.78" (a thin space between thousands)."""
    sign = "-" if ore < 0 else ""
    whole, part = divmod(abs(ore), 100)
    return f"{sign}{whole:,}".replace(",", "\u2009") + f".{part:02d}"


def sparkline(values: Sequence[tuple[dt.date, int | None]], width: int = 120, height: int = 26) -> str:
    """An inline SVG of the sales per day; a day without a figure breaks the line."""
    known = [v for _, v in values if v is not None]
    total = sum(known)
    label = (
        f"Sales incl. VAT {values[0][0].isoformat()} to {values[-1][0].isoformat()}: {len(known)} day(s) known, "
        f"total kr {kroner(total)}" + (f", highest kr {kroner(max(known))}" if known else "")
        if values
        else "no sales"
    )
    top = max(known, default=0) or 1
    n = max(len(values) - 1, 1)
    pad = 2

    def point(i: int, v: int) -> str:
        x = pad + i * (width - 2 * pad) / n
        y = height - pad - max(v, 0) * (height - 2 * pad) / top
        return f"{x:.1f},{y:.1f}"

    shapes, run = [], []
    for i, (_, v) in enumerate([*values, (None, None)]):
        if v is None:
            if len(run) > 1:
                shapes.append(f'<polyline points="{" ".join(run)}"/>')
            elif len(run) == 1:
                x, y = run[0].split(",")
                shapes.append(f'<circle cx="{x}" cy="{y}" r="1.5"/>')
            run = []
        else:
            run.append(point(i, v))
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(label)}"><title>{html.escape(label)}</title>'
        f'<line x1="0" y1="{height - pad}" x2="{width}" y2="{height - pad}" class="base"/>{"".join(shapes)}</svg>'
    )


_CSS = """
body{font:14px system-ui,sans-serif;margin:1em 1.5em;color:#1f2328;background:#fff}
h1{font-size:1.4em;margin:.2em 0}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
form.filters{display:flex;gap:1em;align-items:end;flex-wrap:wrap;margin:.6em 0}
form.filters label{display:flex;flex-direction:column;font-size:.85em;gap:.2em}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.6em 0}
ul.legend li{display:flex;align-items:center;gap:.35em}
.sw{display:inline-flex;width:1.4em;height:1.4em;align-items:center;justify-content:center;border-radius:3px;
 color:#fff;font-weight:700;font-size:.85em}
table.grid{border-collapse:separate;border-spacing:2px}
table.grid th{font-weight:600;font-size:.8em;text-align:center;white-space:nowrap}
table.grid th.v{text-align:left;font-size:.9em;padding-right:.6em}
table.grid th.v small{display:block;font-weight:400;color:#57606a}
table.grid th.we{color:#8c959f}
table.grid th.today{text-decoration:underline}
td.spark{padding-right:.6em;white-space:nowrap;font-size:.8em;color:#57606a}
svg.spark polyline{fill:none;stroke:#0969da;stroke-width:1.5}svg.spark circle{fill:#0969da}
svg.spark .base{stroke:#d0d7de;stroke-width:1}
td.c{position:relative;width:1.9em;height:1.9em;padding:0;text-align:center;border-radius:3px}
td.c a.g{display:block;line-height:1.9em;color:#fff;font-weight:700;text-decoration:none}
td.c a.g:focus{outline:3px solid #1f2328;outline-offset:1px}
td.s-not_due{border:1px dashed #8c959f}td.s-not_due a.g{color:#57606a}
td.s-blank{background:#f6f8fa}
td.overdue{box-shadow:inset 0 0 0 3px #cf222e}
td.c .pop{display:none;position:absolute;z-index:5;top:100%;left:0;width:22em;text-align:left;background:#fff;
 color:#1f2328;border:1px solid #8c959f;border-radius:6px;padding:.5em .7em;box-shadow:0 4px 12px #0003;
 font-size:.85em}
td.c.right .pop{left:auto;right:0}
td.c:hover .pop,td.c:focus-within .pop{display:block}
td.c .pop p{margin:.2em 0}td.c .pop .msg{white-space:pre-wrap;color:#57606a}
td.c .pop ul{margin:.3em 0 0;padding-left:1.1em}
nav.pages{margin:.8em 0;display:flex;gap:1em;align-items:center}
p.note{background:#fff8c5;border:1px solid #d4a72c;padding:.4em .7em;border-radius:6px}
"""


_FRAMED_LINKS = """(function () {
  if (window.top === window) return;
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[target]");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    try {
      var doc = window.top.document, twin = doc.createElement("a");
      twin.href = a.href; twin.target = a.target; twin.rel = a.rel; twin.style.display = "none";
      doc.body.appendChild(twin); twin.click(); twin.remove();
      e.preventDefault();
    } catch (err) { /* a page of another origin above: the browser decides */ }
  });
})();"""
"""Airflow shows the view in a frame whose sandbox allows neither top navigation nor pop-ups, so a
run's link (target _top) or a report's (target _blank) clicked there would do nothing. The frame is
same-origin and may run scripts, so a click is handed to a twin link in Airflow's own page, which
may navigate and open tabs (the click's user activation reaches it). Outside a frame, links are
plain links."""


def _look_css() -> str:
    return (
        "".join(
            f"td.s-{look.key},.sw.s-{look.key}{{background:{look.colour}}}"
            for look in LOOKS
            if look.key not in ("not_due", "blank")
        )
        + ".sw.s-not_due{background:#fff;border:1px dashed #8c959f;color:#57606a}.sw.s-blank{background:#f6f8fa}"
    )


def _cell_html(row: VendorRow, cell: Cell, right: bool) -> str:
    esc = html.escape
    look = LOOK[cell.state]
    classes = f"c s-{cell.state}" + (" overdue" if cell.overdue else "") + (" right" if right else "")
    attrs = f'class="{classes}" data-state="{cell.state}" data-day="{cell.day.isoformat()}" title="{esc(cell.title)}"'
    if cell.state == "blank":
        return f'<td {attrs}><span class="sr">{esc(look.label)}</span></td>'
    mark = esc(look.mark)
    label = f"{look.label}{' (past its deadline)' if cell.overdue else ''}"
    target, what = (cell.run_url, "open the DAG run") if cell.run_url else (row.dag_url, "open the DAG")
    head = f'<a class="g" href="{esc(target)}" target="_top" aria-label="{esc(cell.title)}; {what}">{mark}</a>'
    links = []
    if cell.run_url:
        what = f"DAG run {esc(cell.run_label)}" if cell.run_label else "DAG runs of the day (filtered by date)"
        links.append(f'<li><a class="run" href="{esc(cell.run_url)}" target="_top">{what}</a></li>')
    if cell.report_url:
        links.append(f'<li><a class="report" href="{esc(cell.report_url)}" target="_blank">validation report</a></li>')
    if cell.voucher_url:
        links.append(
            f'<li><a class="voucher" href="{esc(cell.voucher_url)}" target="_blank" rel="noopener">'
            f"voucher {esc(cell.voucher)} in the ledger</a></li>"
        )
    elif cell.voucher:
        links.append(f"<li>voucher {esc(cell.voucher)} (no web address known for {esc(row.ledger_system)})</li>")
    sales = f"<p>sales incl. VAT kr {kroner(cell.revenue_ore)}</p>" if cell.revenue_ore is not None else ""
    message = f'<p class="msg">{esc(cell.message)}</p>' if cell.message else ""
    pop = (
        f'<div class="pop"><p><strong>{esc(label)}</strong> · {esc(row.vendor_id)} · {cell.day.isoformat()}</p>'
        f"{message}{sales}{'<ul>' + ''.join(links) + '</ul>' if links else ''}</div>"
    )
    return f"<td {attrs}>{head}{pop}</td>"


def _total(values: Sequence[tuple[dt.date, int | None]]) -> str:
    known = [v for _, v in values if v is not None]
    return f"kr {kroner(sum(known))} in {len(known)} day(s)" if known else "no sales figures"


def render_html(m: Morning) -> str:
    esc = html.escape
    q = m.query
    today = m.now.astimezone(ZONE).date()
    counts = m.counts()
    summary = ", ".join(f"{n} {LOOK[k].label.lower()}" for k, n in counts.items() if n and k != "blank") or "no days"
    legend = "".join(
        f'<li><span class="sw s-{look.key}" aria-hidden="true">{esc(look.mark)}</span>'
        f"<span><strong>{esc(look.label)}</strong>: {esc(look.meaning)}</span></li>"
        for look in LOOKS
    )
    ledger_options = "".join(
        f'<option value="{esc(s)}"{" selected" if s == q.ledger else ""}>{esc(s)}</option>' for s in m.systems
    )
    state_options = "".join(
        f'<option value="{look.key}"{" selected" if look.key == q.state else ""}>{esc(look.label)}</option>'
        for look in LOOKS
        if look.key != "blank"
    )
    heads = "".join(
        f'<th scope="col" class="{"we" if d.weekday() >= 5 else ""}{" today" if d == today else ""}" '
        f'title="{d:%A} {d.isoformat()}"><abbr title="{d.isoformat()}">{d.day:02d}</abbr><br>{d:%a}</th>'
        for d in m.days
    )
    right = max(0, len(m.days) - 8)
    body = "".join(
        f'<tr data-vendor="{esc(r.vendor_id)}"><th scope="row" class="v"><a href="{esc(r.dag_url)}" target="_top">'
        f"{esc(r.name)}</a><small>{esc(r.vendor_id)} · {esc(r.ledger_system)}</small></th>"
        f'<td class="spark">{sparkline(r.revenue)}<br>{_total(r.revenue)}</td>'
        + "".join(_cell_html(r, cell, i >= right) for i, cell in enumerate(r.cells))
        + "</tr>"
        for r in m.rows
    )
    pager = [f"<span>page {m.page} of {m.pages} · {m.total} vendor(s)</span>"]
    if m.page > 1:
        pager.insert(0, f'<a rel="prev" href="?{esc(q.params(page=m.page - 1))}">‹ previous</a>')
    if m.page < m.pages:
        pager.append(f'<a rel="next" href="?{esc(q.params(page=m.page + 1))}">next ›</a>')
    notes = "".join(f'<p class="note" role="status">{esc(n)}</p>' for n in m.notes)
    empty = "" if m.rows else "<p>No vendor matches these filters.</p>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>kassebro: the morning view</title>
<style>{_CSS}{_look_css()}</style></head><body>
<h1>kassebro: the morning view</h1>
<p>{m.first.isoformat()} to {m.last.isoformat()} · this page: {esc(summary)} ·
<a href="morning.json?{esc(q.params(page=m.page))}">JSON</a></p>{notes}
<form class="filters" method="get" action="morning" aria-label="filters">
<label>Ledger system<select name="ledger"><option value="">all</option>{ledger_options}</select></label>
<label>State<select name="state"><option value="">any</option>{state_options}</select></label>
<label>Days<input type="number" name="days" min="{MIN_DAYS}" max="{MAX_DAYS}" value="{q.days}"></label>
<label>Vendors per page<input type="number" name="per_page" min="1" max="{MAX_PAGE_SIZE}" value="{q.per_page}"></label>
{f'<input type="hidden" name="end" value="{q.end.isoformat()}">' if q.end else ""}
<button type="submit">Show</button></form>
<h2 class="sr">Legend</h2><ul class="legend" aria-label="legend">{legend}</ul>
<nav class="pages" aria-label="pages">{"".join(pager)}</nav>{empty}
<table class="grid"><caption class="sr">Vendors by day, {m.first.isoformat()} to {m.last.isoformat()}; each cell
is a day's state, with its DAG run, validation report and voucher</caption>
<thead><tr><th scope="col" class="v">Vendor</th><th scope="col">Sales, {SPARK_DAYS} days</th>{heads}</tr></thead>
<tbody>{body}</tbody></table>
<script>{_FRAMED_LINKS}</script>
</body></html>"""


# ---------------------------------------------------------------------------------------------
# The app


def create_app(
    *,
    runs: Callable[[Sequence[str], dt.datetime], list[RunRef]] | None = None,
    locations: Callable[[str, str], tuple[str, str] | None] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> FastAPI:
    """The plugin's app. `runs`, `locations` and `clock` replace Airflow's DB, the connections and
    the time (tests); by default they are Airflow's."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    app = FastAPI(title="kassebro morning view", dependencies=[Depends(requires_authenticated())])

    def morning_for(
        request: Request, ledger: str, state: str, page: int, per_page: int, days: int, end: str
    ) -> Morning:
        from kassebro.config import journal_url

        if state and state not in STATE_KEYS:
            raise HTTPException(422, f"state must be one of {', '.join(STATE_KEYS)}")
        if not 1 <= per_page <= MAX_PAGE_SIZE or not MIN_DAYS <= days <= MAX_DAYS or page < 1:
            raise HTTPException(
                422, f"per_page 1..{MAX_PAGE_SIZE}, days {MIN_DAYS}..{MAX_DAYS} and page from 1, please"
            )
        try:
            last = dt.date.fromisoformat(end) if end else None
        except ValueError:
            raise HTTPException(422, f"end must be a date (YYYY-MM-DD), not {end!r}") from None
        configs = current_vendors()
        notes = (
            [
                f"{len(configs.broken_files)} vendor file(s) do not load and are not shown: "
                + ", ".join(p.name for p in configs.broken_files)
                + " (their DAGs say why; `kassebro config check`)"
            ]
            if configs.broken_files
            else []
        )
        root = request.scope.get("root_path", "").rstrip("/")
        return build(
            Query(ledger, state, page, per_page, days, last),
            configs.vendors,
            journal_url=journal_url(),
            now=(clock or (lambda: dt.datetime.now(dt.UTC)))(),
            runs=runs or airflow_runs,
            locations=locations or ledger_location,
            ui=root.removesuffix(URL_PREFIX),
            base=root,
            notes=notes,
        )

    @app.get("/morning", response_class=HTMLResponse)
    def morning_page(
        request: Request,
        ledger: str = "",
        state: str = "",
        page: int = 1,
        per_page: int = PAGE_SIZE,
        days: int = DEFAULT_DAYS,
        end: str = "",
    ) -> str:
        return render_html(morning_for(request, ledger, state, page, per_page, days, end))

    @app.get("/morning.json")
    def morning_json(
        request: Request,
        ledger: str = "",
        state: str = "",
        page: int = 1,
        per_page: int = PAGE_SIZE,
        days: int = DEFAULT_DAYS,
        end: str = "",
    ) -> dict[str, Any]:
        return morning_for(request, ledger, state, page, per_page, days, end).to_json()

    @app.get("/report/{vendor_id}/{day}")
    def report(vendor_id: str, day: str, format: str = "html") -> Response:
        """A day's validation report as `prepare` wrote it into the day's work directory."""
        from kassebro.posting.pipeline import work_dir

        try:
            the_day = dt.date.fromisoformat(day)
        except ValueError:
            raise HTTPException(404, "no such day") from None
        if not VENDOR_ID.match(vendor_id) or format not in ("html", "json"):
            raise HTTPException(404, "no such report")
        path = work_dir(vendor_id, the_day) / f"validation.{format}"
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise HTTPException(
                404, f"no validation report for {vendor_id} {the_day} in the work store (the day was never read)"
            ) from None
        return Response(body, media_type="text/html; charset=utf-8" if format == "html" else "application/json")

    @app.get("/journal")
    def journal() -> RedirectResponse:
        """The old journal table's address: the morning view replaced it."""
        return RedirectResponse("morning", status_code=308)

    return app
