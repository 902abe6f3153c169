"""The morning view inside Airflow: vendors x days from a journal the real pipeline wrote against
the Tripletex sandbox (posted, parked, held back, refused by the ledger), a reconciliation finding,
days not yet due, filters, paging, links, and closed to anonymous users."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from ..e2e.conftest import DAYS, PROJECT, tripletex_home

NOW = dt.datetime(2026, 11, 6, 12, 0, tzinfo=ZoneInfo("Europe/Oslo"))
"""Friday noon: cafe's and kiosk's 6 Nov is not due until the small hours, the shop's until 22:30."""
HELD, REFUSED, FOUND = DAYS[1], DAYS[2], DAYS[2] + dt.timedelta(days=1)


def _break_day(folder: Path, day: dt.date) -> None:
    """One receipt pays a krone more than it sells: the day's receipt_balances rule fails."""
    (path,) = [p for p in folder.iterdir() if f"{day + dt.timedelta(days=1):%Y%m%d}" in p.name]
    text = path.read_text(encoding="utf-8")
    start = text.index("<paidAmnt>") + len("<paidAmnt>")
    kroner, ore = text[start : text.index("<", start)].split(".")
    path.write_text(text[:start] + f"{int(kroner) + 1}.{ore}" + text[text.index("<", start) :], encoding="utf-8")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """cafe_solsiden's days posted, held back, refused and found wrong by the real pipeline; the shop's
    days parked for approval; the kiosk's (Fiken) with no data at all."""
    from kassebro.core.errors import InputError
    from kassebro.demo.home import write_sales
    from kassebro.ledgers.base import LedgerError
    from kassebro.ledgers.tripletex import TripletexClient
    from kassebro.posting import pipeline
    from kassebro.posting.journal import Journal
    from kassebro.readback.findings import Finding, Findings
    from kassebro.sources import source_path

    root = tmp_path_factory.mktemp("morning")
    with pytest.MonkeyPatch.context() as mp, tripletex_home(root, mp) as (home, app, client):
        from kassebro.config import load_vendor

        for other in ("kiosk_torget", "butikk_fjord"):
            data = yaml.safe_load((PROJECT / "config" / "vendors" / f"{other}.yaml").read_text())
            data["enabled_since"] = DAYS[0] - dt.timedelta(days=1)
            (home / "config" / "vendors" / f"{other}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
            if other == "butikk_fjord":
                write_sales(data, DAYS, home / "data")
        cafe, shop = load_vendor("cafe_solsiden"), load_vendor("butikk_fjord")
        journal = Journal()
        for day in (DAYS[0], FOUND):
            pipeline.prepare(cafe, day, journal)
            pipeline.post(cafe, day, client(), journal)
        _break_day(source_path(cafe), HELD)
        with pytest.raises(InputError):
            pipeline.prepare(cafe, HELD, journal)
        pipeline.prepare(cafe, REFUSED, journal)
        with pytest.raises(LedgerError):
            pipeline.post(cafe, REFUSED, TripletexClient(app.state.url, "demo-consumer-token", "wrong-token"), journal)
        for day in DAYS:
            pipeline.prepare(shop, day, journal)
            pipeline.post(shop, day, client(), journal)
        Findings().replace(
            [("cafe_solsiden", FOUND)],
            [Finding("cafe_solsiden", FOUND, "changed", f"kassebro:cafe_solsiden:{FOUND}", "3000 <b>changed</b>")],
        )
        mp.setenv(
            "AIRFLOW_CONN_TRIPLETEX_DEMO",
            json.dumps({"conn_type": "tripletex", "host": f"{app.state.url}/v2", "extra": {"environment": "sandbox"}}),
        )
        yield {"home": home, "url": app.state.url, "journal": journal, "cafe": cafe}


def _client(home: dict, **options) -> TestClient:
    from kassebro.airflow import journal_view

    journal_view._LOCATIONS.clear()
    options.setdefault("runs", lambda dag_ids, since: [])
    return TestClient(journal_view.create_app(clock=lambda: NOW, **options))


def _signed_in(client: TestClient) -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    client.app.dependency_overrides[get_user] = lambda: object()
    return client


def _cells(data: dict, vendor: str) -> dict[str, dict]:
    (row,) = [r for r in data["vendors"] if r["vendor"] == vendor]
    return {c["day"]: c for c in row["cells"]}


def test_anonymous_users_are_refused(home: dict) -> None:
    client = _client(home)
    for path in ("/morning", "/morning.json", f"/report/cafe_solsiden/{HELD}"):
        assert client.get(path).status_code in (401, 403), path


def test_each_day_shows_what_the_pipeline_recorded(home: dict) -> None:
    data = _signed_in(_client(home)).get("/morning.json", params={"days": 7, "end": "2026-11-06"}).json()
    assert (data["first"], data["last"]) == ("2026-10-31", "2026-11-06")
    cafe = _cells(data, "cafe_solsiden")
    assert {d: c["state"] for d, c in cafe.items()} == {
        "2026-10-31": "blank",
        "2026-11-01": "blank",  # enabled since 2 Nov
        "2026-11-02": "posted",
        "2026-11-03": "held_back",
        "2026-11-04": "failed",
        "2026-11-05": "finding",
        "2026-11-06": "not_due",  # its report is due at 02:30 on the 7th
    }
    posted = cafe["2026-11-02"]
    entry = home["journal"].get("cafe_solsiden", DAYS[0])
    assert posted["voucher"] == (entry.ledger_number or entry.ledger_id) and posted["voucher"] in posted["title"]
    assert "receipt_balances" in cafe["2026-11-03"]["title"] and cafe["2026-11-03"]["journal_state"] == "failed"
    assert cafe["2026-11-04"]["message"].startswith("Tripletex: ")  # the ledger refused: not held back
    assert cafe["2026-11-05"]["journal_state"] == "posted" and "changed" in cafe["2026-11-05"]["message"]
    shop = _cells(data, "butikk_fjord")
    assert [shop[d.isoformat()]["state"] for d in DAYS] == ["parked"] * 3
    assert shop["2026-11-05"]["state"] == "waiting" and shop["2026-11-05"]["overdue"] is True  # deadline was 02:30
    assert shop["2026-11-06"]["state"] == "not_due"  # the shop reports at 22:30 the same day
    kiosk = _cells(data, "kiosk_torget")
    assert kiosk["2026-11-01"]["state"] == "waiting" and kiosk["2026-11-01"]["overdue"] is True
    assert "no run has recorded this day" in kiosk["2026-11-01"]["title"]


def test_a_day_waits_until_its_data_deadline_then_is_overdue(home: dict) -> None:
    from kassebro.airflow.journal_view import judge
    from kassebro.config import load_vendor

    shop, day = load_vendor("butikk_fjord"), dt.date(2026, 11, 5)  # reports 22:30, 4 h for the data
    at = lambda h, m=0: dt.datetime(2026, 11, 5, h, m, tzinfo=ZoneInfo("Europe/Oslo")) + dt.timedelta(days=h < 12)  # noqa: E731
    assert judge(shop, day, None, (), at(22, 29)).state == "not_due"
    assert (judge(shop, day, None, (), at(22, 30)).state, judge(shop, day, None, (), at(22, 30)).overdue) == (
        "waiting",
        False,
    )
    late = judge(shop, day, None, (), at(2, 30))
    assert (late.state, late.overdue) == ("waiting", True) and "deadline" in late.title


def test_sales_are_the_z_reports_less_what_is_not_revenue(home: dict) -> None:
    """The sparkline's figure is the day's sales incl. VAT: the Z reports' sales, less gift cards
    sold (money held, not revenue); the journal's debit total would count the payments."""
    from kassebro.sources.saft import read_day

    data = _signed_in(_client(home)).get("/morning.json", params={"end": "2026-11-06"}).json()
    revenue = {(r["vendor"], x["day"]): x["ore"] for r in data["vendors"] for x in r["revenue"]}
    assert len(revenue) == 3 * 30
    for vendor, days in (("cafe_solsiden", (DAYS[0], REFUSED, FOUND)), ("butikk_fjord", DAYS)):
        for day in days:  # the refused day's sales are known too
            sales = read_day(home["home"] / "data" / "saft" / vendor, vendor, day)
            gift_cards = int(sales.lines.loc[sales.lines["art_group_id"] == "GAVEKORT", "gross"].sum())
            assert revenue[(vendor, day.isoformat())] == int(sales.z_vat["gross"].sum()) - gift_cards, (vendor, day)
            if vendor == "butikk_fjord":
                assert gift_cards > 0
                assert revenue[(vendor, day.isoformat())] != home["journal"].get(vendor, day).total_debit_ore
    assert revenue[("cafe_solsiden", HELD.isoformat())] is None  # held back: no figure to trust
    assert revenue[("cafe_solsiden", "2026-10-31")] is None and revenue[("kiosk_torget", "2026-11-02")] is None


def test_the_page_a_person_reads(home: dict) -> None:
    page = _signed_in(_client(home)).get("/morning", params={"end": "2026-11-06"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for label in ("Posted", "Parked for approval", "Waiting for data", "Held back by validation", "Failed",
                  "Reconciliation finding", "Not yet due"):  # fmt: skip
        assert f"<strong>{label}</strong>" in text, label  # the legend names every colour
    assert re.search(
        r'<td class="c s-posted[^"]*" data-state="posted" data-day="2026-11-02" title="cafe_solsiden ', text
    )
    assert "3000 &lt;b&gt;changed&lt;/b&gt;" in text and "<b>changed</b>" not in text  # escaped
    assert text.count('<svg class="spark"') == 3 and "Sales incl. VAT" in text
    assert 'href="/dags/vendor_cafe_solsiden/runs?run_after_gte=2026-11-01T23%3A00%3A00%2B00%3A00' in text


def test_filters_narrow_the_vendors(home: dict) -> None:
    client = _signed_in(_client(home))

    def vendors(**params) -> list[str]:
        return [
            r["vendor"] for r in client.get("/morning.json", params={"end": "2026-11-06", **params}).json()["vendors"]
        ]

    assert vendors() == ["butikk_fjord", "cafe_solsiden", "kiosk_torget"]
    assert vendors(ledger="fiken") == ["kiosk_torget"]
    assert vendors(ledger="tripletex") == ["butikk_fjord", "cafe_solsiden"]
    assert vendors(state="held_back") == ["cafe_solsiden"]
    assert vendors(state="parked") == ["butikk_fjord"]
    assert vendors(state="waiting") == ["butikk_fjord", "kiosk_torget"]
    assert vendors(state="waiting", ledger="fiken") == ["kiosk_torget"]
    assert vendors(state="failed", ledger="fiken") == []
    assert client.get("/morning.json", params={"state": "nonsense"}).status_code == 422


def test_paging(home: dict) -> None:
    client = _signed_in(_client(home))
    first = client.get("/morning.json", params={"per_page": 2, "end": "2026-11-06"}).json()
    second = client.get("/morning.json", params={"per_page": 2, "page": 2, "end": "2026-11-06"}).json()
    assert (first["page"], first["pages"], first["vendors_matching"]) == (1, 2, 3)
    assert [r["vendor"] for r in first["vendors"]] == ["butikk_fjord", "cafe_solsiden"]
    assert [r["vendor"] for r in second["vendors"]] == ["kiosk_torget"]
    page = client.get("/morning", params={"per_page": 2, "end": "2026-11-06"}).text
    assert 'rel="next" href="?page=2&amp;per_page=2&amp;end=2026-11-06"' in page and 'rel="prev"' not in page


def test_cells_link_the_run_that_carried_the_day(home: dict) -> None:
    from kassebro.airflow.journal_view import RunRef

    utc = dt.UTC
    manual = RunRef(
        "vendor_cafe_solsiden",
        "manual__2026-11-06T09:00:00+00:00",
        "manual",
        "failed",
        dt.datetime(2026, 11, 6, 9, tzinfo=utc),
        conf={"dates": [DAYS[0].isoformat(), HELD.isoformat()]},
    )
    scheduled = RunRef(  # the report at 02:30 on the 5th carries the 4th
        "vendor_cafe_solsiden",
        "scheduled__2026-11-05T01:30:00+00:00",
        "scheduled",
        "success",
        dt.datetime(2026, 11, 5, 1, 30, tzinfo=utc),
        dt.datetime(2026, 11, 4, 1, 30, tzinfo=utc),
        dt.datetime(2026, 11, 5, 1, 30, tzinfo=utc),
    )
    asked = []

    def runs(dag_ids, since):
        asked.append((sorted(dag_ids), since))
        return [manual, scheduled]

    data = _signed_in(_client(home, runs=runs)).get("/morning.json", params={"days": 7, "end": "2026-11-06"}).json()
    assert len(asked) == 1 and asked[0][0] == ["vendor_butikk_fjord", "vendor_cafe_solsiden", "vendor_kiosk_torget"]
    cafe = _cells(data, "cafe_solsiden")
    assert (
        cafe["2026-11-02"]["links"]["run"]
        == "/dags/vendor_cafe_solsiden/runs/manual__2026-11-06T09%3A00%3A00%2B00%3A00"
    )
    assert cafe["2026-11-03"]["run"] == "manual__2026-11-06T09:00:00+00:00 (failed)"
    assert cafe["2026-11-04"]["links"]["run"].endswith("/runs/scheduled__2026-11-05T01%3A30%3A00%2B00%3A00")
    assert "run_after_gte=" in cafe["2026-11-05"]["links"]["run"]  # no run carried it: the day's runs
    assert cafe["2026-11-06"]["links"]["run"] is None  # not due: no run yet


def test_reports_and_vouchers_are_one_click_away(home: dict) -> None:
    client = _signed_in(_client(home))
    cafe = _cells(client.get("/morning.json", params={"end": "2026-11-06"}).json(), "cafe_solsiden")
    held = cafe[HELD.isoformat()]["links"]
    assert held["report"] == f"/report/cafe_solsiden/{HELD}" and held["voucher"] is None
    report = client.get(held["report"])
    assert report.status_code == 200 and "receipt_balances" in report.text and "FAIL" in report.text
    assert "receipt_balances" in client.get(held["report"], params={"format": "json"}).json()["headline"] + json.dumps(
        client.get(held["report"], params={"format": "json"}).json()["checks"]
    )
    assert client.get("/report/cafe_solsiden/2026-10-01").status_code == 404
    assert client.get("/report/..%2F..%2Fetc/2026-11-02").status_code == 404
    assert client.get("/report/cafe_solsiden/..%2Fjournal.sqlite").status_code == 404
    # the demo connection points at the sandbox: its own listing of the vouchers it holds
    assert cafe["2026-11-02"]["links"]["voucher"] == f"{home['url']}/_sandbox/vouchers"
    assert cafe["2026-11-04"]["links"]["voucher"] is None  # refused: nothing in the ledger
    assert client.get("/journal", follow_redirects=False).headers["location"] == "morning"


def test_voucher_addresses() -> None:
    from kassebro.airflow.journal_view import voucher_url

    assert voucher_url("tripletex", "production", "https://tripletex.no/v2", "608") == (
        "https://tripletex.no/execute/voucherMenu?voucherId=608"
    )
    assert (
        voucher_url("tripletex", "sandbox", "http://127.0.0.1:8900/v2", "1")
        == "http://127.0.0.1:8900/_sandbox/vouchers"
    )
    assert voucher_url("fiken", "production", "https://api.fiken.no/api/v2", "77") is None  # none documented
    assert voucher_url("tripletex", "production", "https://tripletex.no/v2", None) is None


def test_a_page_of_a_thousand_vendors_costs_a_few_queries(home: dict, tmp_path: Path) -> None:
    """One journal query and one findings query per page (one more to filter by state), never one per cell."""
    from sqlalchemy import event, insert

    from kassebro.airflow.journal_view import Query, build
    from kassebro.posting.journal import Journal, journal_table

    url = f"sqlite:///{tmp_path / 'big.sqlite'}"
    journal = Journal(url)
    vendors = [home["cafe"].model_copy(update={"id": f"v{i:04d}"}) for i in range(1000)]
    voucher = json.dumps({"lines": [{"account": "1920", "amount": 500}, {"account": "3000", "amount": -500}]})
    first = NOW.date() - dt.timedelta(days=30)
    rows = [
        {
            "vendor_id": v.id,
            "business_day": first + dt.timedelta(days=d),
            "state": "posted",
            "external_ref": "r",
            "ledger_system": "tripletex",
            "ledger_id": str(d),
            "message": "",
            "voucher_json": voucher,
            "updated_at": NOW,
            "attempts": 1,
        }  # fmt: skip
        for v in vendors
        for d in range(30)
    ]
    with journal.engine.begin() as conn:
        conn.execute(insert(journal_table), rows)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(journal.engine, "before_cursor_execute", listen)
    calls = []
    try:
        for query, budget in ((Query(end=NOW.date()), 2), (Query(state="posted", page=3, end=NOW.date()), 3)):
            statements.clear()
            started = time.perf_counter()
            morning = build(
                query,
                vendors,
                journal_url=url,
                now=NOW,
                runs=lambda ids, since: calls.append(len(ids)) or [],
                locations=lambda system, conn: None,
            )
            took = time.perf_counter() - started
            reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "kassebro_" in s]
            assert len(reads) == budget, reads
            assert len(morning.rows) == 50 and morning.total == 1000 and morning.pages == 20
            assert all(c.state in ("posted", "not_due") for r in morning.rows for c in r.cells)
            print(f"{query}: {took:.2f} s")
            assert took < 10  # a generous bound on a shared 2-core machine; ~1 s here
    finally:
        event.remove(journal.engine, "before_cursor_execute", listen)
    assert calls == [50, 50]  # one DAG-run query per page, for the page's DAGs


def test_plugin_registers_the_page() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kassebro_plugin", PROJECT / "plugins" / "kassebro_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.KassebroPlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/kassebro"
    assert plugin.external_views[0]["href"] == "kassebro/morning"


def test_the_plugins_app_is_built_on_its_first_request_not_on_import() -> None:
    """Every task process imports the plugin file; only the API server serves the page."""
    import importlib.util

    from fastapi import FastAPI

    spec = importlib.util.spec_from_file_location("kassebro_plugin", PROJECT / "plugins" / "kassebro_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lazy = module.KassebroPlugin.fastapi_apps[0]["app"]
    assert not lazy.built
    server = FastAPI()
    server.mount("/kassebro", lazy)  # as Airflow's API server mounts a plugin's app
    answer = TestClient(server).get("/kassebro/morning.json")
    assert lazy.built and answer.status_code in (401, 403)  # the view's own sign-in check answered
