"""`kassebro webshop ...`: the DAG task's function from the command line, with its exit codes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import requests
import yaml

from kassebro.cli import main

PROJECT = Path(__file__).resolve().parents[2]
LAST_DAY = dt.date(2026, 11, 4)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from kassebro.demo.sandboxes import connection, shop_connection
    from kassebro.sandbox import mystore
    from kassebro.sandbox.server import running
    from kassebro.sandbox.tripletex import create_app

    config = tmp_path / "config"
    (config / "webshops").mkdir(parents=True)
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    shutil.copy2(PROJECT / "config" / "webshop_defaults.yaml", config / "webshop_defaults.yaml")
    data = yaml.safe_load((PROJECT / "config" / "webshops" / "mystore_demo.yaml").read_text())
    data.update(enabled_since=LAST_DAY - dt.timedelta(days=10), ledger={"connection": "tripletex_demo"})
    (config / "webshops" / "mystore_demo.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("KASSEBRO_CONFIG", str(config))
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path / "data"))
    now = dt.datetime.combine(LAST_DAY, dt.time(22), dt.UTC)
    with running(create_app()) as tx, running(mystore.create_app(last_day=LAST_DAY, days=3, now=now)) as shop:
        monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(connection("tripletex", tx.url)))
        monkeypatch.setenv("AIRFLOW_CONN_MYSTORE_DEMO", json.dumps(shop_connection("mystore", shop.url)))
        yield config, tx.url, shop.url


def test_check_transfer_status_and_a_retransfer(home, capsys) -> None:
    config, tx, _shop = home
    assert main(["webshop", "check", "--config", str(config)]) == 0
    assert "ok     mystore_demo" in capsys.readouterr().out
    assert main(["webshop", "transfer", "--webshop", "mystore_demo"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "mystore_demo:" in out
    assert main(["webshop", "status", "--webshop", "mystore_demo"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mystore_demo")]
    invoiced = [line.split()[1] for line in rows if "invoice " in line]
    assert rows and invoiced and all(" done " in line for line in rows)
    before = requests.get(tx + "/_sandbox/invoicing", timeout=5).json()
    assert main(["webshop", "transfer", "--webshop", "mystore_demo", "--order", invoiced[0], "--no-email"]) == 0
    after = requests.get(tx + "/_sandbox/invoicing", timeout=5).json()
    assert len(after["invoices"]) == len(before["invoices"]) and len(after["emails"]) == len(before["emails"])


def test_a_refused_order_exits_1_and_an_unreachable_shop_exits_2(home, capsys, monkeypatch) -> None:
    _config, tx, _shop = home
    requests.post(tx + "/_sandbox/invoicing", json={"bank_account_registered": False}, timeout=5)
    assert main(["webshop", "transfer", "--webshop", "mystore_demo"]) == 1
    assert "bankkontonummer" in capsys.readouterr().err
    conn = {"conn_type": "http", "host": "http://127.0.0.1:9", "password": "x", "extra": {"timeout": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_MYSTORE_DEMO", json.dumps(conn))
    assert main(["webshop", "transfer", "--webshop", "mystore_demo"]) == 2
    assert "ShopError" in capsys.readouterr().err


def test_a_broken_webshop_file_is_named(home, capsys) -> None:
    config, _tx, _shop = home
    (config / "webshops" / "broken.yaml").write_text(
        "id: broken\nname: X\npayment_methods: {vipps: {transfer: paid_invoice}}\n"
    )
    assert main(["webshop", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().out
    assert "broken.yaml" in err and "payment_type" in err
