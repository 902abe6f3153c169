"""Reference for the parse benchmark: N DAGs of the vendor DAG's task shape built from constants.

No config files, no pydantic: what Airflow itself spends on DAGs of this shape. The count comes
from KASSEBRO_BENCH_N. Copied into a temporary dags folder by the benchmark.
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task, task_group

N = int(os.environ.get("KASSEBRO_BENCH_N", "1000"))
DOC = "# reference\nthe same runbook length as a vendor DAG\n" * 40


def make(i: int):
    @task
    def plan_days(**context) -> list[str]:
        return []

    @task(map_index_template="{{ day }}")
    def extract(day: str) -> str:
        return day

    @task(map_index_template="{{ day }}")
    def validate(day: str) -> str:
        return day

    @task(map_index_template="{{ day }}")
    def build_voucher(day: str) -> str:
        return day

    @task(map_index_template="{{ day }}", pool="ledger_tripletex")
    def post(day: str) -> str:
        return day

    @task(map_index_template="{{ day }}", pool="ledger_tripletex")
    def verify(day: str) -> dict:
        return {}

    @dag(
        dag_id=f"vendor_ref_{i:05d}",
        description="reference",
        schedule=CronDataIntervalTimetable("30 2 * * *", timezone="Europe/Oslo"),
        start_date=dt.datetime(2026, 11, 1, 2, 30, tzinfo=ZoneInfo("Europe/Oslo")),
        catchup=True,
        max_active_runs=4,
        doc_md=DOC,
        tags=["kassebro", "ledger:tripletex", "bench"],
        default_args={
            "owner": "data-team",
            "retries": 3,
            "retry_delay": dt.timedelta(minutes=1),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(hours=1),
        },
        params={
            "dates": Param([], type="array", items={"type": "string", "format": "date"}),
            "dry_run": Param(False, type="boolean"),
        },
    )
    def _d() -> None:
        @task_group(group_id="day")
        def one_day(day: str) -> None:
            verify(post(build_voucher(validate(extract(day)))))

        one_day.expand(day=plan_days())

    return _d()


for _i in range(N):
    globals()[f"vendor_ref_{_i:05d}"] = make(_i)
