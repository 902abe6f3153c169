"""The morning view in a real browser: the demo home and its ledger sandboxes as `make run` makes
them (kassebro.demo.launcher), real posted, parked and held-back days from the vendor DAGs run by
Airflow (`dag.test`, in a child process on the demo's Airflow DB), a reconciliation finding, and
Airflow's own API server with kassebro's plugin; headless Chromium from Debian's `chromium`
package, driven by Playwright (never Playwright's own browser downloads).

Every test here is marked `browser` and runs when asked for (`make test-browser`, `pytest -m
browser`, which .ci/run runs): the stack takes over a minute to start, so a plain `pytest`
(`make test`) deselects them. A missing Chromium fails them, never skips: `make setup` installs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KASSEBRO_CHROMIUM", "/usr/bin/chromium")
DEMO_DAYS = 3
"""The demo's vendors are enabled since this many days before today."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here `browser`: pyproject's addopts deselect them from a plain `pytest`."""
    here = Path(__file__).parent.resolve()
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; never a skip: without it the browser tests fail."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not path:
        pytest.fail(f"Chromium is missing ({CHROMIUM}): `make setup` installs Debian's `chromium` package")
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go for CI: $KASSEBRO_ARTIFACTS, default .artifacts/screenshots."""
    path = Path(os.environ.get("KASSEBRO_ARTIFACTS") or PROJECT / ".artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Stack:
    url: str
    home: Path
    today: dt.date
    runs: dict[str, dict]
    user: str
    password: str

    def day(self, back: int) -> dt.date:
        return self.today - dt.timedelta(days=back)


_RUN_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from kassebro.airflow.dagtest import run_test
plan = json.loads(sys.argv[1])
bag = DagBag(dag_folder=sys.argv[2])
assert not bag.import_errors, bag.import_errors
out = {}
for dag_id, dates in plan.items():
    run = run_test(bag.dags[dag_id], run_conf={"dates": dates})
    out[dag_id] = {"run_id": run.run_id, "state": str(run.state)}
print("RUNS " + json.dumps(out))
"""


def _break_day(folder: Path, day: dt.date) -> None:
    """The day's first receipt pays a krone more than it sells: its receipt_balances rule fails."""
    (path,) = [p for p in folder.iterdir() if f"{day + dt.timedelta(days=1):%Y%m%d}" in p.name]
    text = path.read_text(encoding="utf-8")
    start = text.index("<paidAmnt>") + len("<paidAmnt>")
    kroner, ore = text[start : text.index("<", start)].split(".")
    path.write_text(text[:start] + f"{int(kroner) + 1}.{ore}" + text[text.index("<", start) :], encoding="utf-8")


def _answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo home, its sandboxes and Airflow's API server with the plugin, as `make run` has them
    (less the scheduler: the days are posted by `dag.test` runs of the vendor DAGs)."""
    from kassebro.demo import launcher

    saved = dict(os.environ)
    root = tmp_path_factory.mktemp("browser")
    os.environ["KASSEBRO_HOME"] = str(root / "home")
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(32)
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        ports = launcher.sandbox_ports(preferred=False)
        home, _ = launcher.prepare(DEMO_DAYS, ports)  # demo home, Airflow DB migrated, pools, connections
        phases = {"prepare": time.monotonic() - started}
        procs.append(launcher.start_sandbox(home, ports))
        phases["sandboxes"] = time.monotonic() - started
        today = dt.date.today()
        day = lambda back: (today - dt.timedelta(days=back)).isoformat()  # noqa: E731
        _break_day(home / "data" / "saft" / "cafe_solsiden", today - dt.timedelta(days=2))

        port = launcher._free_port()
        os.environ["AIRFLOW__API__PORT"] = str(port)
        os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
        log = (home / "logs" / "api-server.log").open("ab")
        procs.append(
            subprocess.Popen(
                [launcher._bin("airflow"), "api-server", "--port", str(port), "--workers", "1"],
                env=os.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        plan = {"vendor_cafe_solsiden": [day(3), day(2)]}  # posted, held back (parked: tests/unit)
        done = subprocess.run(
            [sys.executable, "-c", _RUN_DAGS, json.dumps(plan), str(PROJECT / "dags")],
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=300,
        )
        phases["dag runs"] = time.monotonic() - started
        lines = [line for line in done.stdout.splitlines() if line.startswith("RUNS ")]
        assert done.returncode == 0 and lines, (
            f"the DAG runs did not finish:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
        runs = json.loads(lines[-1].removeprefix("RUNS "))

        from kassebro.readback.findings import Finding, Findings

        # what a reconciliation files when the ledger holds a day the journal never booked
        found = today - dt.timedelta(days=1)
        Findings().replace(
            [("cafe_solsiden", found)],
            [
                Finding(
                    "cafe_solsiden",
                    found,
                    "extra",
                    f"kassebro:cafe_solsiden:{found}",
                    f"the ledger holds kassebro:cafe_solsiden:{found}, which the journal does not know as booked",
                    ledger_system="tripletex",
                )
            ],
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while _answers(f"{url}/kassebro/morning") not in (401, 403):  # up, with the plugin, closed to strangers
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not come up; see {home / 'logs' / 'api-server.log'}")
            time.sleep(0.5)
        phases["api server"] = time.monotonic() - started
        print(f"\n[browser] stack ready: {', '.join(f'{k} {v:.1f} s' for k, v in phases.items())}; {url}", flush=True)
        yield Stack(url, home, today, runs, launcher.AIRFLOW_USER, launcher.AIRFLOW_PASSWORD)
    finally:
        for proc in reversed(procs):
            launcher._stop(proc)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
