"""A ledger's long rate limit through the vendor DAG: the post task gives its worker and pool slot
back (rescheduled for when the ledger said), uses no retry, and posts the day once afterwards."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from kassebro.posting.journal import Journal

from .conftest import DAYS, Env

pytestmark = pytest.mark.slow


def test_a_long_rate_limit_reschedules_the_post_instead_of_sleeping(pipeline_env: Env) -> None:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    from kassebro.ledgers.http import IN_TASK_RATE_WAIT

    reset = IN_TASK_RATE_WAIT + 2  # longer than a client waits in its task
    pipeline_env.faults.add("429", path="/ledger/voucher", method="POST", times=1, seconds=reset)
    started = time.monotonic()
    run = pipeline_env.run([DAYS[0]])
    assert run.state == "success"
    assert time.monotonic() - started >= reset  # it did wait as the ledger said ...
    assert [v.external_voucher_number for v in pipeline_env.vouchers()] == [f"kassebro:cafe_solsiden:{DAYS[0]}"]
    assert Journal().get("cafe_solsiden", DAYS[0]).state == "posted"
    (post,) = [ti for ti in run.get_task_instances() if ti.task_id == "day.post"]
    assert post.try_number == 1  # ... rescheduled, not retried
    with create_session() as session:
        rescheduled = session.scalars(select(TaskReschedule).where(TaskReschedule.ti_id == post.id)).all()
    assert len(rescheduled) == 1  # ... and not in the worker: the task gave its slot back meanwhile
    assert (rescheduled[0].reschedule_date - rescheduled[0].end_date).total_seconds() >= reset - 1
