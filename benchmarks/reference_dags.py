"""Airflow's own floor: N DAGs of the vendor DAG's task shape built from constants.

No config files, no pydantic, tasks that do nothing: what Airflow itself spends on DAGs of this
shape (`plan_days`, then per day `prepare`, a sensor, and `post`, in the ledger pools); a task
process builds only its own DAG, as the vendor DAG file does. Used twice:
- the parse benchmark (`KASSEBRO_BENCH_N` DAGs, no day: plan_days plans nothing);
- the night benchmark (`benchmarks/night.py`), with `KASSEBRO_BENCH_DAY` the business day each
  DAG's one run carries (the vendors' schedule: daily at 02:30 Europe/Oslo, starting the day
  before) and `KASSEBRO_BENCH_POOLS` the pools in the generated vendors' order (i-th DAG, i-th
  pool modulo their number).
Copied into a temporary dags folder by the benchmarks.
"""

import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

from airflow.sdk import (
    CronDataIntervalTimetable,
    Param,
    PokeReturnValue,
    dag,
    get_current_context,
    get_parsing_context,
    task,
    task_group,
)

N = int(os.environ.get("KASSEBRO_BENCH_N", "1000"))
DAY = os.environ.get("KASSEBRO_BENCH_DAY", "")
POOLS = (os.environ.get("KASSEBRO_BENCH_POOLS") or "ledger_tripletex").split(",")
ZONE = ZoneInfo("Europe/Oslo")
START = (
    dt.datetime.combine(dt.date.fromisoformat(DAY), dt.time(2, 30), ZONE)
    if DAY
    else dt.datetime(2026, 11, 1, 2, 30, tzinfo=ZONE)
)
DOC = "# reference\nthe same runbook length as a vendor DAG\n" * 40


WORK = {
    step: float(seconds)
    for step, _, seconds in (part.partition("=") for part in os.environ.get("KASSEBRO_BENCH_WORK", "").split(","))
    if step
}


def _yield_cpu(step: str = "", dag_id: str = "reference") -> None:
    """As every kassebro task starts (`kassebro.airflow.priority`): the same niceness, for parity.
    With `KASSEBRO_BENCH_WORK` (`plan_days=0.04,prepare=0.38,post=0.06`, CPU seconds a step) the
    task then spins that long, logged as our steps log theirs: the floor with our steps' work."""
    nice = int(os.environ.get("KASSEBRO_TASK_NICE") or 10)
    if nice > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if WORK.get(step):
        from kassebro.airflow.step_cost import measured

        with measured(step, dag_id, DAY or "-"):
            until = time.process_time() + WORK[step]
            while time.process_time() < until:
                pass


def make(i: int):
    pool = POOLS[i % len(POOLS)]

    @task(pool=pool)
    def plan_days(**context) -> list[dict]:
        _yield_cpu("plan_days", f"vendor_ref_{i:05d}")
        return [{"day": DAY, "look_again": False}] if DAY else []

    @task.sensor(map_index_template="{{ day }}", mode="reschedule", poke_interval=60)
    def prepare(item: dict) -> PokeReturnValue:
        _yield_cpu("prepare", f"vendor_ref_{i:05d}")
        get_current_context()["day"] = item["day"]  # the mapped instance's name, as the vendor DAG sets it
        return PokeReturnValue(is_done=True, xcom_value=item["day"])

    @task(map_index_template="{{ day }}", pool=pool)
    def post(day: str) -> dict:
        _yield_cpu("post", f"vendor_ref_{i:05d}")
        get_current_context()["day"] = day
        return {"day": day, "state": "posted"}

    @dag(
        dag_id=f"vendor_ref_{i:05d}",
        description="reference",
        schedule=CronDataIntervalTimetable("30 2 * * *", timezone="Europe/Oslo"),
        start_date=START,
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
        def one_day(item: dict) -> None:
            post(prepare(item))

        one_day.expand(item=plan_days())

    return _d()


# As the vendor DAG file does (`kassebro.airflow.dagfactory`) and Airflow's docs advise: a task
# process parsing the file for its one DAG builds only that one.
_wanted = get_parsing_context().dag_id
for _i in range(N):
    if _wanted is None or _wanted == f"vendor_ref_{_i:05d}":
        globals()[f"vendor_ref_{_i:05d}"] = make(_i)
