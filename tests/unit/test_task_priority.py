"""Task processes yield the CPU (`kassebro.airflow.priority`), each in a process of its own here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.fixture(autouse=True)
def _from_zero() -> None:
    if os.getpriority(os.PRIO_PROCESS, 0) != 0:
        pytest.fail("the test process itself runs niced; these checks start from niceness 0")


def test_default_is_ten_and_idempotent() -> None:
    assert _run(None) == (0, 10, 10)


def test_setting_is_read_and_clamped() -> None:
    assert _run("5") == (0, 5, 5)
    assert _run("40") == (0, 19, 19)
    assert _run("0") == (0, 0, 0)
    assert _run("not a number") == (0, 10, 10)


def test_never_raises_priority_back() -> None:
    """A worker started niced further (an operator's choice) is left as it is."""
    assert _run("5", start_nice=15) == (15, 15, 15)
