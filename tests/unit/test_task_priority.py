"""Task processes yield the CPU (`kassebro.airflow.priority`), each in a process of its own here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SNIPPET = (
    "import os; from kassebro.airflow.priority import yield_cpu; "
    "before = os.getpriority(os.PRIO_PROCESS, 0); after = yield_cpu(); again = yield_cpu(); "
    "print(before, after, again)"
)


def _run(nice_env: str | None, start_nice: int = 0) -> tuple[int, int, int]:
    env = {k: v for k, v in os.environ.items() if k != "KASSEBRO_TASK_NICE"}
    if nice_env is not None:
        env["KASSEBRO_TASK_NICE"] = nice_env
    argv = [sys.executable, "-c", SNIPPET]
    if start_nice:
        argv = ["nice", "-n", str(start_nice), *argv]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.split()
    before, after, again = (int(x) for x in out)
    return before, after, again


def _expect(target: int, before: int) -> tuple[int, int, int]:
    """What a process that starts at `before` reports: lowered to target, never raised back."""
    return before, max(before, target), max(before, target)


def test_default_is_ten_and_idempotent() -> None:
    result = _run(None)
    assert result == _expect(10, result[0])


def test_setting_is_read_and_clamped() -> None:
    for setting, target in (("5", 5), ("40", 19), ("0", 0), ("not a number", 10)):
        result = _run(setting)
        assert result == _expect(target, result[0]), setting


def test_never_raises_priority_back() -> None:
    """A worker started niced further (an operator's choice) is left as it is."""
    result = _run("5", start_nice=15)
    assert result[0] >= 15 and result == _expect(5, result[0]) == (result[0],) * 3


def test_make_run_gives_the_local_executor_sixteen_task_slots_a_core(monkeypatch) -> None:
    from kassebro.airflow.priority import task_slots
    from kassebro.demo.home import environment

    assert (task_slots(1), task_slots(2), task_slots(8)) == (16, 32, 128)
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    assert environment(Path("/tmp/home"))["AIRFLOW__CORE__PARALLELISM"] == str(task_slots())
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "12")  # the user's own setting stays
    assert environment(Path("/tmp/home"))["AIRFLOW__CORE__PARALLELISM"] == "12"
