"""The vendor DAG's shape, in one place: one DAG per vendor file, built from its config.

Parse-time work is limited to reading YAML and pydantic validation; pandas, GX, the journal and
the ledger are imported inside tasks. When the task runner parses the file for one DAG
(`get_parsing_context().dag_id`), only that vendor's file is read.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from airflow.sdk import (
    CronDataIntervalTimetable,
    MultipleCronTriggerTimetable,
    Param,
    dag,
    get_parsing_context,
    task,
    task_group,
)

from kassebro.airflow.alerts import deadline_alert
from kassebro.airflow.priority import yield_cpu
from kassebro.airflow.step_cost import measured
from kassebro.config import MAX_RETRY_DELAY_SECONDS, ConfigSet, Vendor, config_dir, load_vendor, load_vendors
from kassebro.config.schedule import start_date
from kassebro.core.errors import ConfigError, Issue

DAG_PREFIX = "vendor_"
MAX_RETRY_DELAY = dt.timedelta(seconds=MAX_RETRY_DELAY_SECONDS)
MAX_RATE_LIMIT_WAIT = dt.timedelta(hours=6)  # a longer one is a fault: it goes to Airflow's retries
SENSOR_TIMEOUT = dt.timedelta(days=7)
PRIORITY = {"plan_days": 3, "prepare": 1, "post": 2}
"""Absolute task priorities (`weight_rule="absolute"`): a run's plan first (cheap, it opens the
run's days, and in a one-company pool it must not wait behind posts), then a prepared day's post
before another day's prepare. Airflow's default (downstream) ran every prepare before any post:
a night's posts piled up behind the prepares and went at its end through the ledgers' pools."""


def _fail_fast(exc: BaseException) -> BaseException:
    """Bad data, a refused voucher and wrong credentials fail at once: retrying cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    from kassebro.core.errors import InputError
    from kassebro.ledgers.base import LedgerAuthError, LedgerValidationError

    if isinstance(exc, InputError | LedgerValidationError | LedgerAuthError):
        return AirflowFailException(str(exc))
    return exc


def _label(day: str) -> None:
    """Name the mapped instance after its day in the UI (rendered from map_index_template)."""
    from airflow.sdk import get_current_context

    get_current_context()["day"] = day  # type: ignore[index]


def _run(step: str, vendor_id: str, day: str, **kwargs: Any) -> dict:
    """Run one pipeline step for one day, mapping errors to Airflow's retry semantics."""
    from kassebro.airflow.fresh_stack import call_on_fresh_stack
    from kassebro.posting import pipeline
    from kassebro.posting.journal import Journal

    yield_cpu()  # leave the API server and the scheduler the CPU
    _label(day)
    with measured(step, vendor_id, day):
        vendor = load_vendor(vendor_id)
        the_day = dt.date.fromisoformat(day)
        journal = Journal()
        try:
            if step in ("post", "verify"):
                return call_on_fresh_stack(_with_ledger, step, vendor, the_day, journal, **kwargs)
            return call_on_fresh_stack(getattr(pipeline, step), vendor, the_day, journal, **kwargs)
        except Exception as exc:
            converted = _fail_fast(exc)
            if converted is exc:
                raise
            raise converted from exc


def _with_ledger(step: str, vendor: Vendor, day: dt.date, journal: Any, **kwargs: Any) -> dict:
    """Post or verify. When the ledger asks us to slow down for longer than a client waits in
    its task (`ledgers.http.IN_TASK_RATE_WAIT`), the task is rescheduled for when it said: the
    worker and pool slots go back meanwhile, and no retry is used up (the claim was given back)."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    from kassebro.airflow.hooks import ledger_for
    from kassebro.ledgers.base import LedgerRateLimited
    from kassebro.posting import pipeline

    target = vendor.ledger
    careful = step != "post" or pipeline.careful_lookup(vendor, day, journal)
    ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, careful)
    read_back = kwargs.pop("read_back", False)
    try:
        result = getattr(pipeline, step)(vendor, day, ledger, journal, **kwargs)
        if read_back:  # the same client (one login) reads the posted day back
            verified = pipeline.verify(vendor, day, ledger, journal)
            print(f"{vendor.id} {day}: read back: {verified}")
            result = {**result, **verified}
        return result
    except LedgerRateLimited as exc:
        if exc.retry_after > MAX_RATE_LIMIT_WAIT.total_seconds():
            raise
        moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(1.0, exc.retry_after))
        print(f"{vendor.id} {day}: {exc}; rescheduled for {moment:%H:%M:%S} UTC, the slot is free meanwhile")
        raise AirflowRescheduleException(reschedule_date=moment) from None


def _check_mapping(vendor_id: str, items: list[dict], *, dry_run: bool = False) -> list[dict]:
    """The mapping check before any post (`readback.mapping`), the chart read once a ledger day
    while the mapping passes. One that does not fit holds every day of the run back: failed in the
    journal, and the task fails at once naming the vendor, the days, the rules and the accounts
    (other vendors' DAGs go on). A dry run only shows the problems. The items pass through.

    A chart that cannot be read (credentials, an unreachable or busy ledger) holds nothing back:
    the days go on to `post`, which reports such errors per day with their retry rules and still
    checks each voucher's accounts in the client before sending it.
    """
    from kassebro.airflow.hooks import ledger_for
    from kassebro.ledgers.base import LedgerError
    from kassebro.posting.journal import Journal
    from kassebro.readback import mapping

    vendor = load_vendor(vendor_id)
    target = vendor.ledger
    if not items:
        print(f"{vendor.id}: no days in this run; the mapping is not checked")
        return items
    if not mapping.can_read_chart(target.system):
        print(f"{vendor.id}: the {target.system} client cannot read its chart; the mapping is not checked")
        return items
    try:
        report = mapping.check_once_a_day(
            vendor,
            lambda: ledger_for(target.system, target.connection, target.company, target.client_org_number, True),
        )
    except (LedgerError, ConfigError) as exc:  # post reports it per day, failing at once
        print(f"{vendor.id}: the mapping could not be checked ({exc}); the days go on to post")
        return items
    print(f"{vendor.id}: mapping check: {report.text()}")
    if not report.ok and not dry_run:
        days = [dt.date.fromisoformat(item["day"]) for item in items]
        refused = mapping.hold_back(vendor, days, report, Journal())
        raise _fail_fast(refused) from refused
    return items


def vendor_dag(vendor: Vendor, doc_md: str) -> Any:
    """Build the DAG for one vendor."""

    @task(pool=vendor.pool, priority_weight=PRIORITY["plan_days"], weight_rule="absolute")  # reads the chart
    def plan_days(**context: Any) -> list[dict]:
        """The business days of this run (the dates given on trigger, else from the data interval),
        then the recent days a scheduled run looks at again because their data may come late; and
        before any post, every account the mapping can post to against the ledger's chart."""
        from kassebro.config.schedule import business_days, parse_dates
        from kassebro.posting.journal import Journal
        from kassebro.posting.pipeline import days_to_look_again

        yield_cpu()
        with measured("plan_days", vendor.id):
            asked = parse_dates(context["params"].get("dates"))
            if asked:
                days, again = asked, []
            else:
                days = business_days(vendor, context["data_interval_start"], context["data_interval_end"])
                again = days_to_look_again(vendor, days, Journal())
            print(f"{vendor.id}: business days {[d.isoformat() for d in days] or 'none'}", end="")
            print(f"; looking again at {[d.isoformat() for d in again]}" if again else "")
            items = [{"day": d.isoformat(), "look_again": False} for d in days] + [
                {"day": d.isoformat(), "look_again": True} for d in again
            ]
            return _check_mapping(vendor.id, items, dry_run=bool(context["params"].get("dry_run")))

    @task.sensor(
        map_index_template="{{ day }}",
        mode="reschedule",  # waiting for late data holds no worker slot
        poke_interval=vendor.data_poke_seconds,
        timeout=SENSOR_TIMEOUT,  # the day's own data deadline fails it first, with its message
        priority_weight=PRIORITY["prepare"],
        weight_rule="absolute",
    )
    def prepare(item: dict) -> Any:
        """Read the day's sales, run every validation and booking rule, build the voucher; while the
        source holds nothing for the day, wait (rescheduled) until its data deadline."""
        from airflow.sdk import PokeReturnValue
        from airflow.sdk.exceptions import AirflowSkipException

        day = item["day"]
        result = _run("prepare", vendor.id, day, look_again=bool(item.get("look_again")))
        print(f"{vendor.id} {day}: {result}")
        if result.get("look_again"):
            raise AirflowSkipException(f"{vendor.id} {day}: looked at again, still {result['state']}")
        return PokeReturnValue(is_done=result["state"] != "waiting", xcom_value=day)

    # its result as one XCom: a returned dict is otherwise one XCom per key (14 more writes a day)
    @task(
        map_index_template="{{ day }}",
        pool=vendor.pool,
        multiple_outputs=False,
        priority_weight=PRIORITY["post"],
        weight_rule="absolute",
    )
    def post(day: str, **context: Any) -> dict:
        """Post the day exactly once, then read it back from the ledger: one task, one process (a
        retry finds the day booked and only reads it back)."""
        dry_run = bool(context["params"].get("dry_run"))
        result = _run("post", vendor.id, day, dry_run=dry_run, read_back=not dry_run)
        print(f"{vendor.id} {day}: {result}")
        return result

    @dag(
        dag_id=vendor.dag_id,
        description=f"{vendor.name}: nightly POS sales to {vendor.ledger.system}",
        schedule=timetable(vendor),
        start_date=first_start(vendor),
        catchup=True,
        max_active_runs=4,
        deadline=deadline_alert(vendor),
        doc_md=doc_md + _vendor_facts(vendor),
        tags=sorted({"kassebro", f"ledger:{vendor.ledger.system}", *vendor.tags}),
        owner_links={},
        default_args={
            "owner": vendor.owner,
            "retries": vendor.retries,
            "retry_delay": dt.timedelta(seconds=vendor.retry_delay_seconds),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY,
        },
        params={
            "dates": Param(
                [],
                type="array",
                items={"type": "string", "format": "date"},
                description="Business days to (re)process, e.g. 2026-11-03. Empty: the run's own days.",
            ),
            "dry_run": Param(False, type="boolean", description="Build and show the voucher; post nothing."),
        },
        render_template_as_native_obj=False,
    )
    def _vendor() -> None:
        @task_group(group_id="day")
        def one_day(item: dict) -> None:
            """One business day; a mapped group keeps a failing day from holding back the others."""
            post(prepare(item))

        one_day.expand(item=plan_days())

    return _vendor()


def timetable(vendor: Vendor) -> Any:
    """One report time: cron data intervals (report to report). A time per weekday: Airflow's
    multiple-cron trigger timetable; either way `plan_days` takes the days from the schedule."""
    crons = vendor.schedule.crons
    if len(crons) == 1:
        return CronDataIntervalTimetable(crons[0], timezone=vendor.timezone)
    return MultipleCronTriggerTimetable(*crons, timezone=vendor.timezone)


def first_start(vendor: Vendor) -> dt.datetime:
    """The DAG's start_date: the report before the first one covering *enabled since*; a minute
    after it for a trigger timetable, which also runs at start_date itself."""
    start = start_date(vendor)
    return start if len(vendor.schedule.crons) == 1 else start + dt.timedelta(minutes=1)


def broken_vendor_dag(path: Path, issues: list[Issue], doc_md: str) -> Any:
    """A stand-in DAG for a vendor file that does not load: it shows the error and cannot run."""
    message = "\n".join(f"- {issue}" for issue in issues)

    @task
    def config_error() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"vendor file {path} is invalid:\n{message}")

    @dag(
        dag_id=broken_dag_id(path),
        description=f"CONFIG ERROR in {path.name}: {issues[0].message}"[:200],
        schedule=None,
        start_date=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["kassebro", "config-error"],
        doc_md=f"# Configuration error\n\n`{path}` does not load, so this vendor is not posted:\n\n"
        f"{message}\n\nFix the file; `kassebro config check` shows the same.\n\n---\n{doc_md}",
        default_args={"owner": "data-team", "retries": 0},
    )
    def _broken() -> None:
        config_error()

    return _broken()


def broken_dag_id(path: Path) -> str:
    """A valid DAG id for any file name, so one odd name cannot break the whole DAG file."""
    return DAG_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)


def _vendor_facts(vendor: Vendor) -> str:
    return (
        f"\n\n## This vendor\n| | |\n|---|---|\n| vendor | {vendor.name} (`{vendor.id}`) |\n"
        f"| config | `{vendor.config_file}` |\n| ledger | {vendor.ledger.system}, connection "
        f"`{vendor.ledger.connection}`, send to ledger: {vendor.ledger.send_to_ledger} |\n"
        f"| enabled since | {vendor.enabled_since} |\n| schedule | `{vendor.schedule.cron}` {vendor.timezone} |\n"
        f"| day starts at | {vendor.day_start_hour:02d}:00 |\n"
        f"| open | {', '.join(vendor.opening_days)}"
        f"{'; closed ' + ', '.join(d.isoformat() for d in vendor.closed_dates) if vendor.closed_dates else ''} |\n"
        f"| posted by | {vendor.alert.post_by}, else mail to {', '.join(vendor.alert.to) or 'nobody'} |\n"
        f"| data deadline | {vendor.data_deadline_hours:g} h after the report time; looks again "
        f"{vendor.lookback_days} days back |\n"
        f"| source | {vendor.source.kind}: `{vendor.source.path or vendor.source.connection or vendor.source.url}` |\n"
    )


def build_vendor_dags(namespace: dict[str, Any], doc_md: str = "", root: Path | None = None) -> ConfigSet:
    """Register one DAG per vendor file into `namespace` (a DAG file's globals())."""
    root = root or config_dir()
    wanted = get_parsing_context().dag_id
    if wanted and wanted.startswith(DAG_PREFIX):
        path = root / "vendors" / f"{wanted.removeprefix(DAG_PREFIX)}.yaml"
        try:
            configs = ConfigSet((load_vendor(path.stem, root),), (), ())
        except ConfigError as exc:
            configs = ConfigSet((), tuple(exc.issues), (path,))
    else:
        configs = load_vendors(root)
    for vendor in configs.vendors:
        namespace[vendor.dag_id] = vendor_dag(vendor, doc_md)
    for path in configs.broken_files:
        issues = [i for i in configs.issues if i.source.split(":")[0] == str(path)] or list(configs.issues)
        namespace[broken_dag_id(path)] = broken_vendor_dag(path, issues, doc_md)
    return configs
