"""Every vendor file gives one healthy DAG; a broken file never takes the others down."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from airflow.dag_processing.dagbag import DagBag

from kassebro.config import load_vendors

PROJECT = Path(__file__).resolve().parents[2]


def dagbag(config: Path) -> DagBag:
    os.environ["KASSEBRO_CONFIG"] = str(config)
    try:
        return DagBag(dag_folder=str(PROJECT / "dags"))
    finally:
        os.environ.pop("KASSEBRO_CONFIG", None)


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return dagbag(PROJECT / "config")


def test_no_import_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}


def test_one_dag_per_vendor_file(bag: DagBag) -> None:
    vendors = load_vendors(PROJECT / "config").vendors
    assert sorted(d for d in bag.dag_ids if d.startswith("vendor_")) == sorted(f"vendor_{v.id}" for v in vendors)


def test_one_readback_dag_per_ledger_connection(bag: DagBag) -> None:
    from kassebro.config.readback import load_readback

    vendors = load_vendors(PROJECT / "config").vendors
    firms = {c for c, scope in load_readback(PROJECT / "config").connections.items() if scope.system}
    assert firms == {"tripletex_firm"}  # the demo accounting firm, read back only
    connections = {v.ledger.connection for v in vendors} | firms
    assert sorted(d for d in bag.dag_ids if d.startswith("readback_")) == sorted(f"readback_{c}" for c in connections)
    assert {d.split("_")[0] for d in bag.dag_ids} == {"vendor", "readback", "webshop"}
    for connection in connections:
        dag = bag.dags[f"readback_{connection}"]
        assert [t.task_id for t in dag.tasks] == ["plan_companies", "read_back", "year_end"]
        assert {"kassebro", "readback"} <= set(dag.tags) and dag.catchup is False
        assert dag.doc_md and "missing" in dag.doc_md and connection in dag.doc_md
        for t in dag.tasks:
            assert t.owner == "data-team" and t.retries >= 2


@pytest.mark.parametrize("vendor", load_vendors(PROJECT / "config").vendors, ids=lambda v: v.id)
def test_vendor_dag_shape(bag: DagBag, vendor) -> None:
    dag = bag.dags[vendor.dag_id]
    assert dag is not None
    steps = ["day.prepare", "day.post"]  # post reads the day back in the same process (three per day-run)
    assert [t.task_id for t in dag.tasks] == ["plan_days", *steps]
    # plan_days checks the mapping against the ledger's chart before any day is read or posted
    assert dag.task_dict["plan_days"].downstream_task_ids == {"day.prepare"}
    for upstream, downstream in zip(steps, steps[1:], strict=False):
        assert dag.task_dict[upstream].downstream_task_ids == {downstream}
    assert (
        type(dag.task_group_dict["day"]).__name__ == "MappedTaskGroup"
    )  # one day failing does not hold back the others
    assert dag.catchup is True
    assert {"kassebro", f"ledger:{vendor.ledger.system}"} <= set(dag.tags)
    assert dag.doc_md and "Re-running a day" in dag.doc_md and vendor.id in dag.doc_md
    for t in dag.tasks:
        assert t.owner == vendor.owner
        assert t.retries == vendor.retries >= 2
        assert t.retry_exponential_backoff
    assert dag.task_dict["day.post"].pool == vendor.pool
    assert dag.task_dict["plan_days"].pool == vendor.pool  # it reads the ledger's chart too
    # runs are planned first, and a prepared day posts before another day is prepared
    weights = {t.task_id: (t.priority_weight, t.weight_rule) for t in dag.tasks}
    assert weights == {"plan_days": (3, "absolute"), "day.prepare": (1, "absolute"), "day.post": (2, "absolute")}
    assert vendor.pool == (
        f"ledger_fiken_{vendor.ledger.company}" if vendor.ledger.system == "fiken" else f"ledger_{vendor.ledger.system}"
    )
    if len(vendor.schedule.crons) == 1:
        assert dag.timetable.expression == vendor.schedule.cron
        assert str(dag.timetable.timezone) == vendor.timezone
    else:  # a time per weekday
        assert type(dag.timetable).__name__ == "MultipleCronTriggerTimetable"
        assert tuple(t.expression for t in dag.timetable.timetables) == vendor.schedule.crons
    assert dag.start_date.astimezone(ZoneInfo(vendor.timezone)).date() <= vendor.enabled_since
    assert set(dag.params.keys()) == {"dates", "dry_run"}
    # waiting for late data holds no worker slot; the day's own deadline fails it first
    prepare = dag.task_dict["day.prepare"]
    assert prepare.mode == "reschedule" and prepare.poke_interval == vendor.data_poke_seconds
    # a night not posted in time mails the data team
    (alert,) = dag.deadline
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.callback.path == "kassebro.airflow.alerts.night_not_posted"
    assert alert.callback.kwargs == {"vendor_id": vendor.id}
    report = min(int(t[:2]) * 60 + int(t[3:]) for t in vendor.schedule.report_times.values())
    post_by = int(vendor.alert.post_by[:2]) * 60 + int(vendor.alert.post_by[3:])
    assert alert.interval.total_seconds() == ((post_by - report) % 1440 or 1440) * 60


def test_each_task_writes_one_xcom(bag: DagBag) -> None:
    """A task returning a dict would write one XCom per key besides the whole (TaskFlow infers
    `multiple_outputs` from `-> dict`): each an execution-API call and a metadata DB row that
    nothing reads."""
    tasks = [t for dag in bag.dags.values() for t in dag.tasks]
    assert {"day.post", "read_back", "year_end", "transfer"} <= {t.task_id for t in tasks}
    assert [f"{t.dag_id}.{t.task_id}" for t in tasks if getattr(t, "multiple_outputs", False)] == []


def test_first_catchup_interval_posts_enabled_since(bag: DagBag) -> None:
    from airflow.serialization.encoders import coerce_to_core_timetable

    from kassebro.config.schedule import business_days

    for vendor in load_vendors(PROJECT / "config").vendors:
        dag = bag.dags[vendor.dag_id]
        core = coerce_to_core_timetable(dag.timetable)
        info = core.next_dagrun_info(last_automated_data_interval=None, restriction=_restriction(dag))
        days = business_days(vendor, info.data_interval.start, info.data_interval.end)
        assert days and days[0] == vendor.enabled_since, (vendor.id, info.data_interval, days)


def _restriction(dag):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)


def test_broken_vendor_file_leaves_the_others_intact(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(PROJECT / "config", config)
    bad = config / "vendors" / "butikk_fjord.yaml"
    bad.write_text(bad.read_text().replace('time: "22:30"', 'time: "half past ten"'))
    (config / "vendors" / "Broken File.yaml").write_text("id: [oops\n")
    bag = dagbag(config)
    assert bag.import_errors == {}
    expected = {f"vendor_{p.stem}" for p in (PROJECT / "config" / "vendors").glob("*.yaml")}
    assert {d for d in bag.dag_ids if d.startswith("vendor_")} == expected | {"vendor_Broken_File"}
    broken = bag.dags["vendor_butikk_fjord"]
    assert "config-error" in broken.tags and broken.schedule is None
    assert "schedule.time" in broken.doc_md and str(bad) in broken.doc_md
    assert "CONFIG ERROR" in broken.description
    assert "config-error" not in bag.dags["vendor_cafe_solsiden"].tags


@pytest.mark.parametrize("dag_file", ["vendor_postings.py", "ledger_readback.py"])
def test_dag_file_imports_nothing_heavy(tmp_path: Path, dag_file: str) -> None:
    code = (
        "import sys, json, runpy; runpy.run_path(sys.argv[1]);"
        "print(json.dumps(sorted(m for m in ('pandas','great_expectations','lxml','pyarrow','kassebro.posting.journal',"
        "'kassebro.ledgers.tripletex','kassebro.readback.reconcile','requests') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(PROJECT / "dags" / dag_file)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KASSEBRO_CONFIG": str(PROJECT / "config")},
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    # requests comes with Airflow itself; what we must never pull in at parse time:
    assert loaded.isdisjoint(
        {
            "pandas",
            "great_expectations",
            "lxml",
            "pyarrow",
            "kassebro.posting.journal",
            "kassebro.ledgers.tripletex",
            "kassebro.readback.reconcile",
        }
    )


def test_parsing_context_builds_only_the_wanted_dag() -> None:
    code = (
        "import sys; from airflow.sdk import get_parsing_context;"
        "import runpy; ns = runpy.run_path(sys.argv[1]);"
        "print(sorted(k for k in ns if k.startswith('vendor_')))"
    )
    env = {
        **os.environ,
        "KASSEBRO_CONFIG": str(PROJECT / "config"),
        "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "vendor_bar_nattugla",
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(PROJECT / "dags" / "vendor_postings.py")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert out.stdout.strip().splitlines()[-1] == "['vendor_bar_nattugla']"


def test_one_webshop_dag_per_webshop_file(bag: DagBag) -> None:
    from kassebro.config.webshop import load_webshops

    shops = load_webshops(PROJECT / "config").webshops
    assert len(shops) == 2
    assert sorted(d for d in bag.dag_ids if d.startswith("webshop_")) == sorted(f"webshop_{s.id}" for s in shops)
    for shop in shops:
        dag = bag.dags[shop.dag_id]
        assert [t.task_id for t in dag.tasks] == ["transfer"]
        assert {"kassebro", "webshop", shop.source.kind} <= set(dag.tags)
        assert dag.catchup is False and dag.max_active_runs == 1
        assert dag.doc_md and "re-transfer" in dag.doc_md
        assert set(dag.params) == {"order_numbers", "email"}
        (transfer,) = dag.tasks
        assert transfer.owner == "data-team" and transfer.retries >= 2 and transfer.pool == "ledger_tripletex"


def test_start_dates_are_in_the_vendor_zone(bag: DagBag) -> None:
    dag = bag.dags["vendor_cafe_solsiden"]
    assert dag.start_date.astimezone(ZoneInfo("Europe/Oslo")).time() == dt.time(2, 30)
