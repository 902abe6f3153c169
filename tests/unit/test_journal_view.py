"""The journal page inside Airflow: lists the days, and is closed to anonymous users."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.posting.journal import Journal


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    journal = Journal()
    day = dt.date(2026, 11, 10)
    v = Voucher(
        "cafe", day, "kassebro:cafe:2026-11-10", "d", (VoucherLine("1900", 12345), VoucherLine("3000", -12345, "3"))
    )
    journal.record("cafe", day, "built", external_ref=v.external_ref, voucher=v)
    journal.finish("cafe", day, journal.claim("cafe", day), state="posted", ledger_id="42", ledger_number="7-2026")
    journal.record("bar", day, "failed", external_ref="r", message="receipt 17 <b>does not balance</b>")
    from kassebro.airflow.journal_view import create_app

    return TestClient(create_app())


def test_anonymous_users_are_refused(client: TestClient) -> None:
    assert client.get("/journal").status_code in (401, 403)


def test_page_and_json_for_signed_in_users(client: TestClient) -> None:
    from airflow.api_fastapi.core_api.security import get_user

    client.app.dependency_overrides[get_user] = lambda: object()
    page = client.get("/journal")
    assert page.status_code == 200
    assert "cafe" in page.text and "123.45" in page.text and "7-2026" in page.text
    assert "&lt;b&gt;does not balance" in page.text  # messages are escaped
    assert "1 failed · 1 posted" in page.text
    data = client.get("/journal.json", params={"vendor": "cafe"}).json()
    assert [(d["vendor"], d["state"], d["total"]) for d in data] == [("cafe", "posted", "123.45")]


def test_plugin_registers_the_page() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kassebro_plugin", Path(__file__).parents[2] / "plugins" / "kassebro_plugin.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.KassebroPlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/kassebro"
    assert plugin.external_views[0]["href"] == "kassebro/journal"
