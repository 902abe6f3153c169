"""Test settings: a private Airflow home and kassebro data dir per test session.

Set before anything imports Airflow (like mozilla/telemetry-airflow's conftest, connections and
settings come from environment variables).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SPEC_DIR = Path(__file__).resolve().parent / "contracts" / "specs"  # vendored API specs, see ORIGIN.md there
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="kassebro-test-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_HOME / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "KASSEBRO_DATA": str(_SESSION_HOME / "data"),
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        # the e2e tests run tasks in this process (dag.test): they must not renice the session
        # (kassebro.airflow.priority; test_task_priority sets its own in its subprocesses)
        "KASSEBRO_TASK_NICE": "0",
    }
)
os.environ.pop("KASSEBRO_CONFIG", None)
os.environ.pop("KASSEBRO_JOURNAL_URL", None)


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The ledger APIs' specs as vendored in the repo (tests/contracts/specs/<system>/, provenance in
    ORIGIN.md there). Never a skip: without them the spec-shape tests must fail."""
    if not SPEC_DIR.is_dir():
        pytest.fail(f"the vendored API specs are missing: {SPEC_DIR}")
    return SPEC_DIR


@pytest.fixture
def project_dir() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata DB (SQLite in the session's AIRFLOW_HOME), migrated once."""
    import subprocess
    import sys

    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        env=os.environ,
        stdout=subprocess.DEVNULL,
    )
