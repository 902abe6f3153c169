"""End-to-end fixtures: a migrated Airflow DB, a demo home with SAF-T files, a live sandbox."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kassebro.airflow.dagtest import run_test

PROJECT = Path(__file__).resolve().parents[2]
DAYS = [dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)]


def make_home(root: Path, vendor_id: str = "cafe_solsiden", profile: str = "cafe") -> Path:
    """A config dir with one vendor enabled since DAYS[0] and SAF-T files for DAYS and the day after,
    as the demo vendor's POS writes them (its organisation number and Z report convention)."""
    from kassebro.demo.home import write_sales

    config = root / "config"
    (config / "vendors").mkdir(parents=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    data = yaml.safe_load((PROJECT / "config" / "vendors" / f"{vendor_id}.yaml").read_text())
    data.update(enabled_since=DAYS[0], retry_delay_seconds=1, retries=2)
    # a dead task's claim and its post's window end before the 3 s of retries, as the config check asks
    data["ledger"].update(lease_seconds=2, visibility_seconds=0)
    (config / "vendors" / f"{vendor_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    write_sales(data, [*DAYS, DAYS[-1] + dt.timedelta(days=1)], root / "data")
    return root


@contextlib.contextmanager
def tripletex_home(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, object, object]]:
    """The demo home at `root` (make_home) with a live Tripletex sandbox: (home, app, client factory)."""
    from kassebro.ledgers.tripletex import TripletexClient
    from kassebro.sandbox.server import running
    from kassebro.sandbox.tripletex import create_app

    home = make_home(root)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(home / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(home / "data"))
    app = create_app()
    with running(app) as server:
        app.state.url = server.url
        yield home, app, lambda: TripletexClient(server.url, "demo-consumer-token", "demo-employee-token")


class Env:
    """A running pipeline environment: config, data, sandbox, connection."""

    def __init__(self, root: Path, sandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        self.store = sandbox.app.state.store
        self.faults = sandbox.app.state.faults

    def dag(self, vendor_id: str = "cafe_solsiden"):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(PROJECT / "dags"))
        assert bag.import_errors == {}
        return bag.dags[f"vendor_{vendor_id}"]

    def run(self, dates: list[dt.date], vendor_id: str = "cafe_solsiden", **conf):
        return run_test(self.dag(vendor_id), run_conf={"dates": [d.isoformat() for d in dates], **conf})

    def vouchers(self) -> list:
        return [v for v in self.store.list_vouchers() if v.external_voucher_number]


@pytest.fixture
def pipeline_env(tmp_path: Path, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from kassebro.sandbox.server import running
    from kassebro.sandbox.tripletex import create_app

    root = make_home(tmp_path)
    app = create_app()
    with running(app) as server:
        monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
        monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
        monkeypatch.setenv(
            "AIRFLOW_CONN_TRIPLETEX_DEMO",
            json.dumps(
                {
                    "conn_type": "tripletex",
                    "host": f"{server.url}/v2",
                    "password": "demo-employee-token",
                    "extra": {"consumer_token": "demo-consumer-token", "company_id": 0, "timeout": 5},
                }
            ),
        )
        server.app = app
        yield Env(root, server)
