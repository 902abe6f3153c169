"""The processes tasks are forked from import our heavy modules once (`kassebro.airflow.preload`).

Checked against Airflow itself: its settings import `airflow_local_settings` from our plugins
folder in a fresh process, and that preloads only where tasks are forked from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kassebro.airflow.preload import forks_tasks

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/venv/bin/airflow", "scheduler"], True),
        (["airflow", "celery", "worker", "--celery-hostname", "w1"], True),
        (["airflow", "api-server", "--port", "8080"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "dags", "list"], False),
        (["airflow", "celery", "flower"], False),
        (["python", "-m", "pytest"], False),
        ([], False),
    ],
)
def test_only_the_processes_tasks_are_forked_from_preload(argv, expected) -> None:
    assert forks_tasks(argv) is expected


def _fresh_airflow(tmp_path: Path, setting: str) -> str:
    """Initialise Airflow's settings in a fresh interpreter; report whether GX got imported and
    every rule's suite built (a forked task then builds none: about 35 ms a rule)."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "KASSEBRO_PRELOAD": setting,
    }
    code = (
        "import sys, airflow.settings\n"
        "from kassebro.checks import gx\n"
        "from kassebro.checks.validate import RULES\n"
        "built = gx._gx is not None and all(rule in gx._gx.definitions for rule in RULES)\n"
        "print('great_expectations' in sys.modules, built)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_airflow_loads_our_local_settings_and_preloads_when_asked(tmp_path) -> None:
    assert _fresh_airflow(tmp_path, "1") == "True True"


def test_a_process_that_forks_no_tasks_stays_light(tmp_path) -> None:
    assert _fresh_airflow(tmp_path, "auto") == "False False"  # python -c: no scheduler, no worker
    assert _fresh_airflow(tmp_path, "0") == "False False"
