"""The mapping check (`kassebro.readback.mapping`): a vendor's accounts against the ledger's live
chart, read through the real clients from the sandboxes (Tripletex, PowerOffice Go, Fiken), from
`kassebro mapping check` and from the vendor DAG, where a mapping that does not fit holds the
vendor's days back before anything is posted."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kassebro.config import Vendor, load_vendor
from kassebro.ledgers.base import LedgerAccount, LedgerVatCode
from kassebro.ledgers.tripletex import TripletexClient
from kassebro.posting.journal import Journal
from kassebro.readback.mapping import (
    MappingChecks,
    MappingRefused,
    check_mapping,
    check_once_a_day,
    hold_back,
    mapping_digest,
)
from kassebro.sandbox import tripletex as tx
from kassebro.sandbox.server import running

PROJECT = Path(__file__).resolve().parents[2]
INACTIVE = tx.Account(291_400_001, 1960, "Gammel kassekonto", "0", True, is_inactive=True)


# ---------------------------------------------------------------------------------------------
# helpers


def home(root: Path, vendor_id: str, change: Callable[[dict], None] | None = None) -> Path:
    """A config dir holding one demo vendor file, changed by `change`; returns the vendor file."""
    config = root / "config"
    (config / "vendors").mkdir(parents=True, exist_ok=True)
    if not (config / "ledgers").exists():
        shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
        shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    data = yaml.safe_load((PROJECT / "config" / "vendors" / f"{vendor_id}.yaml").read_text())
    if change is not None:
        change(data)
    path = config / "vendors" / f"{vendor_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def vendor(root: Path, vendor_id: str = "cafe_solsiden", change: Callable[[dict], None] | None = None) -> Vendor:
    path = home(root, vendor_id, change)
    return load_vendor(vendor_id, root=path.parent.parent)


def payments(**accounts: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["mapping"].setdefault("payment_types", {}).update(accounts)

    return change


def coffee(**entry: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["mapping"]["accounting_keys"]["KAFFE"] = {"description": "Kaffe og te", **entry}

    return change


@pytest.fixture(scope="module")
def tripletex() -> Iterator[Any]:
    """The Tripletex sandbox with its seeded chart and one inactive account (1960)."""
    app = tx.create_app(extra_accounts=[INACTIVE])
    with running(app) as server:
        yield app, server


@pytest.fixture
def client(tripletex) -> TripletexClient:
    app, server = tripletex
    app.state.calls.clear()
    return TripletexClient(server.url, "demo-consumer-token", "demo-employee-token")


def calls(app: Any) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in app.state.calls.list() if "/token/" not in c["path"]]


# ---------------------------------------------------------------------------------------------
# the chart as the clients read it back


def test_tripletex_reads_its_whole_chart_with_inactive_accounts_and_vat_locks(tripletex, client) -> None:
    app, _ = tripletex
    accounts = {a.number: a for a in client.accounts()}
    assert accounts["1960"] == LedgerAccount("1960", "Gammel kassekonto", active=False, vat_code=None, vat_locked=True)
    assert accounts["3030"] == LedgerAccount(
        "3030", "Salgsinntekt, avgiftspliktig, middels sats", vat_code="31", vat_locked=True
    )
    assert accounts["3010"].vat_code == "3" and not accounts["3010"].vat_locked
    assert len(accounts) == len(tx.CHART) + 1
    codes = {v.code: v for v in client.vat_codes()}
    assert codes["31"] == LedgerVatCode("31", "6005", "Utgående avgift, middels sats", codes["31"].rate)
    assert codes["31"].rate == 15 and codes["0"].rate == 0
    assert calls(app) == ["GET /ledger/account", "GET /ledger/vatType"]
    # what was read fills the lookup cache: resolving for a post costs no call now
    assert client.resolve_accounts(["3000", "1920"]) and client.vat_type_id("33") == 6006
    assert calls(app) == ["GET /ledger/account", "GET /ledger/vatType"]


def test_tripletex_reads_every_page_of_the_chart(tripletex, client) -> None:
    client.page_size = 10
    assert len(client.accounts()) == len(tx.CHART) + 1
    assert [c for c in calls(tripletex[0]) if "account" in c] == ["GET /ledger/account"] * 4


# ---------------------------------------------------------------------------------------------
# check_mapping against the Tripletex sandbox


def test_a_correct_demo_vendor_passes(tmp_path: Path, client) -> None:
    report = check_mapping(vendor(tmp_path), client)
    assert report.ok and report.problems == ()
    assert report.summary == "ok, 19 accounts checked against Tripletex"
    # every place of the mapping is among the accounts checked: keys, rates, payments, special accounts
    assert {"3000", "3030", "3040", "3100", "3200", "1900", "1945", "2910", "7798", "1570", "7799"} <= set(
        report.accounts
    )


def test_a_missing_account_fails_naming_vendor_account_rule_and_place(tmp_path: Path, client) -> None:
    report = check_mapping(vendor(tmp_path, change=payments(**{"12011": "1946", "12999": "1946"})), client)
    assert not report.ok
    (problem,) = report.problems
    assert (problem.vendor_id, problem.rule, problem.account) == ("cafe_solsiden", "account_exists", "1946")
    assert problem.places == ("payment_types.12011", "payment_types.12999")
    assert problem.message == (
        "account 1946 (payment_types.12011, payment_types.12999) is not in the Tripletex chart of accounts"
    )
    assert report.text().splitlines() == [  # 1945 and 1949 are no longer used: 18 accounts
        "vendor cafe_solsiden: the mapping does not fit Tripletex: 1 problem(s) in 18 accounts checked",
        f"- [account_exists] {problem.message}",
    ]


def test_credit_sales_on_the_customer_ledger_check_the_customer_account(tmp_path: Path, client) -> None:
    def on_customers(account: str) -> Callable[[dict], None]:
        def change(data: dict) -> None:
            data["mapping"].update(credit_sales="customer_ledger", customer_account=account)

        return change

    report = check_mapping(vendor(tmp_path, change=on_customers("1500")), client)
    assert report.ok and "1500" in report.accounts
    report = check_mapping(vendor(tmp_path, change=on_customers("1599")), client)
    (problem,) = report.problems
    assert (problem.rule, problem.account, problem.places) == ("account_exists", "1599", ("customer_account",))


def test_an_inactive_account_fails(tmp_path: Path, client) -> None:
    report = check_mapping(vendor(tmp_path, change=lambda d: d["mapping"].update(rounding_account="1960")), client)
    (problem,) = report.problems
    assert (problem.rule, problem.account, problem.places, problem.ledger_says) == (
        "account_active",
        "1960",
        ("rounding_account",),
        "inactive",
    )
    assert "account 1960 'Gammel kassekonto' (rounding_account) is inactive in Tripletex" in problem.message


def test_a_vat_locked_account_that_gets_another_code_fails(tmp_path: Path, client) -> None:
    # take-away coffee (15 %, code 31) booked on 3000, which Tripletex locks to code 3
    report = check_mapping(vendor(tmp_path, change=coffee(account="3000", alternative_accounts={15: "3000"})), client)
    (problem,) = report.problems
    assert (problem.rule, problem.account, problem.places) == (
        "vat_lock",
        "3000",
        ("accounting_keys.KAFFE.alternative_accounts.15",),
    )
    assert (problem.ledger_says, problem.mapping_says) == ("locked to VAT code 3", "VAT code 31")
    assert "is locked to VAT code 3 in Tripletex, but accounting_keys.KAFFE.alternative_accounts.15 books " in (
        problem.message
    )


def test_a_key_whose_own_account_is_locked_to_a_rate_it_sends_elsewhere_fails(tmp_path: Path, client) -> None:
    """3030 is locked to 31 (15 %), but the key sends 15 % to 3000: its own account never gets 31."""
    report = check_mapping(vendor(tmp_path, change=coffee(account="3030", alternative_accounts={15: "3000"})), client)
    assert [(p.rule, p.account, p.places) for p in report.problems] == [
        ("vat_lock", "3000", ("accounting_keys.KAFFE.alternative_accounts.15",)),
        ("vat_lock", "3030", ("accounting_keys.KAFFE.account",)),
    ]


def test_unlocked_accounts_take_any_code_and_balance_accounts_no_code(tmp_path: Path, client) -> None:
    # 3010 is not locked; 2900 (locked to no VAT) takes a key without VAT
    def change(data: dict) -> None:
        coffee(account="3010", alternative_accounts={15: "3010"})(data)
        data["mapping"]["accounting_keys"]["GAVEKORT"] = {"account": "2900", "vat": False}

    assert check_mapping(vendor(tmp_path, change=change), client).ok
    # ... while revenue with VAT on 2900 is refused there
    report = check_mapping(vendor(tmp_path, change=coffee(account="2900")), client)
    assert [(p.rule, p.account, p.ledger_says) for p in report.problems] == [
        ("vat_lock", "2900", "locked to VAT code none")
    ]


def test_several_problems_are_all_listed_in_rule_order(tmp_path: Path, client) -> None:
    def change(data: dict) -> None:
        payments(**{"12011": "1946"})(data)
        data["mapping"]["rounding_account"] = "1960"
        coffee(account="3000", alternative_accounts={15: "3000"})(data)

    report = check_mapping(vendor(tmp_path, change=change), client)
    assert [(p.rule, p.account) for p in report.problems] == [
        ("account_exists", "1946"),
        ("account_active", "1960"),
        ("vat_lock", "3000"),
    ]


def test_a_vat_code_the_ledger_does_not_know_fails(tmp_path: Path) -> None:
    app = tx.create_app(vat_types=[v for v in tx.VAT_TYPES if v.number != "52"])
    with running(app) as server:
        client = TripletexClient(server.url, "demo-consumer-token", "demo-employee-token")
        change = coffee(account="3000", vat_code_accounts={"52": "3100"})
        report = check_mapping(vendor(tmp_path, change=change), client)
    problems = [(p.rule, p.account, p.places) for p in report.problems]
    assert ("vat_code_known", "3100", ("accounting_keys.KAFFE.vat_code_accounts.52",)) in problems
    # 3100 is also locked to 5, and export (52) is another code: both are said
    assert ("vat_lock", "3100", ("accounting_keys.KAFFE.vat_code_accounts.52",)) in problems


# ---------------------------------------------------------------------------------------------
# PowerOffice Go and Fiken


def test_poweroffice_demo_vendor_passes_and_a_bad_mapping_fails(tmp_path: Path) -> None:
    from kassebro.ledgers.poweroffice import PowerOfficeClient
    from kassebro.sandbox import poweroffice as po

    inactive = po.GlAccount(5_551_960, 1960, "Gammel kassekonto", "0", True, is_active=False)
    custom = po.VatCode(3_200_103, "C3", "Utgående mva, kiosk", "0.25", 2700, base_id=3_200_003)
    kiosk = po.GlAccount(5_553_050, 3050, "Salgsinntekt kiosk", "C3", True)
    app = po.create_app(accounts=[*po.ACCOUNTS, inactive, kiosk], vat_codes=[*po.VAT_CODES, custom])
    with running(app) as server:
        client = PowerOfficeClient(
            server.url,
            server.url + po.TOKEN_PATH,
            application_key=po.DEMO_APPLICATION_KEY,
            client_key=po.DEMO_CLIENT_KEY,
            subscription_key=po.DEMO_SUBSCRIPTION_KEY,
        )
        accounts = {a.number: a for a in client.accounts()}
        assert accounts["1960"] == LedgerAccount("1960", "Gammel kassekonto", active=False, vat_locked=True)
        assert (accounts["3030"].vat_code, accounts["3030"].vat_locked) == ("31", True)
        codes = {v.code: v for v in client.vat_codes()}
        assert (codes["33"].own_id, codes["33"].rate) == ("3200033", 12)

        good = check_mapping(vendor(tmp_path / "good", "bakeri_bryggen"), client)
        assert good.ok and good.summary == "ok, 19 accounts checked against PowerOffice Go"
        # 3050 is locked to the custom code C3, which is based on the standard code 3
        assert (accounts["3050"].vat_code, accounts["3050"].vat_locked) == ("3", True)
        assert [(v.own_id, v.name) for v in client.vat_codes() if v.code == "3"] == [
            ("3200003", "Utgående mva, alminnelig sats"),
            ("3200103", "Utgående mva, kiosk"),
        ]
        assert check_mapping(vendor(tmp_path / "custom", "bakeri_bryggen", coffee(account="3050")), client).ok

        def change(data: dict) -> None:
            payments(**{"12011": "1946"})(data)
            data["mapping"]["tips_account"] = "1960"
            coffee(account="3000", alternative_accounts={15: "3000"})(data)

        bad = check_mapping(vendor(tmp_path / "bad", "bakeri_bryggen", change), client)
    assert [(p.rule, p.account) for p in bad.problems] == [
        ("account_exists", "1946"),
        ("account_active", "1960"),
        ("vat_lock", "3000"),
    ]
    assert "is inactive in PowerOffice Go" in bad.problems[1].message


def fiken_client(server: Any) -> Any:
    from kassebro.ledgers.fiken import FikenClient
    from kassebro.sandbox.fiken import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN

    return FikenClient(
        server.url,
        "demo-kiosk-as",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        refresh_token=DEMO_REFRESH_TOKEN,
        timeout=5,
    )


def test_fiken_payment_accounts_must_be_1901_sub_accounts(tmp_path: Path) -> None:
    from kassebro.sandbox.fiken import create_app

    with running(create_app()) as server:
        client = fiken_client(server)
        kiosk = vendor(tmp_path, "kiosk_torget")
        assert check_mapping(kiosk, client).ok  # the demo kiosk: every payment type on 1901:NNNNN

        # the bank account 1920:10001 exists in Fiken, but a POS payment belongs on 1901. The config
        # check refuses it when the file loads; this vendor comes from one that loaded before.
        bank = kiosk.model_copy(
            update={"mapping": kiosk.mapping.model_copy(update={"payment_types": {"12002": "1920:10001"}})}
        )
        (problem,) = check_mapping(bank, client).problems
        assert (problem.rule, problem.account, problem.places) == (
            "payment_account",
            "1920:10001",
            ("payment_types.12002",),
        )
        assert problem.message == (
            "payment type '12002' is mapped to 1920:10001; Fiken books POS payments on sub-accounts of 1901 "
            "(1901:NNNNN, one per payment type)"
        )

        # plain 1901 loads (the config check allows it), but Fiken's chart has only its sub-accounts
        plain = check_mapping(vendor(tmp_path / "plain", "kiosk_torget", payments(**{"12001": "1901"})), client)
    assert [(p.rule, p.account) for p in plain.problems] == [("account_exists", "1901"), ("payment_account", "1901")]


def test_the_sub_account_rule_is_fikens_only(tmp_path: Path, client) -> None:
    """On Tripletex a payment account is any account of its chart."""
    report = check_mapping(vendor(tmp_path, change=payments(**{"12002": "1920"})), client)
    assert report.ok


# ---------------------------------------------------------------------------------------------
# once a day, and holding days back


def test_a_pass_is_kept_for_the_ledger_day_and_a_failure_never(tmp_path: Path, tripletex, client) -> None:
    app, _ = tripletex
    store = MappingChecks(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    cafe = vendor(tmp_path / "a")
    morning = dt.datetime(2026, 11, 3, 1, 30, tzinfo=dt.UTC)
    made: list[int] = []

    def ledger() -> TripletexClient:
        made.append(1)
        return client

    first = check_once_a_day(cafe, ledger, store=store, now=morning)
    assert first.ok and not first.from_cache and len(made) == 1
    reads = len(calls(app))
    again = check_once_a_day(cafe, ledger, store=store, now=morning + dt.timedelta(hours=20))  # 22:30 Oslo
    assert again.ok and again.from_cache and again.accounts == first.accounts
    assert len(made) == 1 and len(calls(app)) == reads  # no client made, nothing read
    assert "passed earlier today" in again.summary
    # a new ledger day in the vendor's zone (23:30 UTC is 00:30 in Oslo) reads the chart again
    check_once_a_day(cafe, ledger, store=store, now=morning + dt.timedelta(hours=22))
    assert len(made) == 2
    # a changed mapping is checked again the same day, and its failure is not kept
    broken = vendor(tmp_path / "b", change=payments(**{"12011": "1946"}))
    assert mapping_digest(broken) != mapping_digest(cafe)
    for _ in range(2):
        assert not check_once_a_day(broken, ledger, store=store, now=morning).ok
    assert len(made) == 4


def test_hold_back_records_the_days_and_names_them_all(tmp_path: Path, client) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    broken = vendor(tmp_path, change=payments(**{"12011": "1946"}))
    report = check_mapping(broken, client)
    days = [dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)]
    journal.record("cafe_solsiden", days[2], "closed", external_ref="kassebro:cafe_solsiden:2026-11-04")
    error = hold_back(broken, days, report, journal)
    assert isinstance(error, MappingRefused) and error.report is report
    text = str(error)
    assert text.splitlines()[0] == (
        "vendor cafe_solsiden: days 2026-11-02, 2026-11-03, 2026-11-04 held back, nothing posted: "
        "vendor cafe_solsiden: the mapping does not fit Tripletex: 1 problem(s) in 19 accounts checked"
    )
    assert "cafe_solsiden/mapping: [account_exists] account 1946 (payment_types.12011)" in text
    for day in days[:2]:
        entry = journal.get("cafe_solsiden", day)
        assert entry.state == "failed" and entry.external_ref == f"kassebro:cafe_solsiden:{day}"
        assert f"vendor cafe_solsiden, day {day} held back" in entry.message
        assert "[account_exists] account 1946" in entry.message
    assert journal.get("cafe_solsiden", days[2]).state == "closed"  # nothing to post: left as it was
    with pytest.raises(ValueError):
        hold_back(broken, days, check_mapping(vendor(tmp_path / "ok"), client), journal)


# ---------------------------------------------------------------------------------------------
# kassebro mapping check


def test_the_cli_exit_codes(tmp_path: Path, tripletex, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kassebro.cli import main
    from kassebro.demo.sandboxes import connection

    _, server = tripletex
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path / "data"))  # the connection's lookup cache file
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(connection("tripletex", server.url)))
    good = home(tmp_path / "good", "cafe_solsiden")
    assert main(["mapping", "check", "--vendor", str(good)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ok, 19 accounts checked against Tripletex"

    bad = home(tmp_path / "bad", "cafe_solsiden", payments(**{"12011": "1946"}))
    assert main(["mapping", "check", "--vendor", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "vendor cafe_solsiden: the mapping does not fit Tripletex: 1 problem(s) in 19 accounts checked",
        "- [account_exists] account 1946 (payment_types.12011) is not in the Tripletex chart of accounts",
    ]

    # a vendor id reads the configured directory
    monkeypatch.setenv("KASSEBRO_CONFIG", str(tmp_path / "bad" / "config"))
    assert main(["mapping", "check", "--vendor", "cafe_solsiden"]) == 1
    capsys.readouterr()

    # nothing could be checked: exit 2, saying why (never the credential itself)
    wrong = connection("tripletex", server.url, password="not-the-employee-token")
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(wrong))
    assert main(["mapping", "check", "--vendor", str(good)]) == 2
    err = capsys.readouterr().err
    assert "the mapping could not be checked" in err and "employee token" in err
    assert "not-the-employee-token" not in err
    assert main(["mapping", "check", "--vendor", str(tmp_path / "none.yaml")]) == 2
    assert "no vendor file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the vendor DAG holds a failing vendor back


@pytest.mark.slow
def test_the_dag_holds_a_failing_vendor_back_and_others_go_on(
    tmp_path: Path, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from kassebro.airflow.dagtest import run_test
    from kassebro.demo.sandboxes import connection

    from ..e2e.conftest import DAYS, make_home
    from ..e2e.test_every_ledger import write_vendor

    root = make_home(tmp_path)  # the café, its SAF-T files for DAYS
    config = root / "config"
    write_vendor(config, root / "data", "bar_nattugla")  # another Tripletex vendor, same connection
    cafe_file = config / "vendors" / "cafe_solsiden.yaml"
    good = cafe_file.read_text()
    data = yaml.safe_load(good)
    payments(**{"12011": "1946"})(data)
    cafe_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    monkeypatch.setenv("KASSEBRO_CONFIG", str(config))
    monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
    app = tx.create_app()
    with running(app) as server:
        monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(connection("tripletex", server.url, timeout=5)))

        def run(vendor_id: str, days: list[dt.date]) -> Any:
            bag = DagBag(dag_folder=str(PROJECT / "dags"))
            return run_test(bag.dags[f"vendor_{vendor_id}"], run_conf={"dates": [d.isoformat() for d in days]})

        def posted() -> list[str]:
            return sorted(v.external_voucher_number for v in app.state.store.list_vouchers())

        held = run("cafe_solsiden", DAYS[:2])
        assert held.state == "failed"
        tis = {ti.task_id: ti for ti in held.get_task_instances() if ti.map_index in (-1, 0)}
        assert tis["plan_days"].state == "failed" and tis["plan_days"].try_number == 1  # no retries
        assert {ti.state for ti in held.get_task_instances() if ti.task_id.startswith("day.")} <= {
            "upstream_failed",
            None,
        }
        assert posted() == []
        for day in DAYS[:2]:
            entry = Journal().get("cafe_solsiden", day)
            assert entry.state == "failed", entry
            assert f"vendor cafe_solsiden, day {day} held back" in entry.message
            assert "[account_exists] account 1946 (payment_types.12011)" in entry.message

        # another vendor on the same ledger goes on
        assert run("bar_nattugla", DAYS[:1]).state == "success"
        assert posted() == [f"kassebro:bar_nattugla:{DAYS[0]}"]

        # mended the same day: the failure was not kept, the chart is read again and the days post
        cafe_file.write_text(good)
        assert run("cafe_solsiden", DAYS[:2]).state == "success"
        assert posted() == [f"kassebro:bar_nattugla:{DAYS[0]}"] + [f"kassebro:cafe_solsiden:{d}" for d in DAYS[:2]]
        assert [Journal().get("cafe_solsiden", d).state for d in DAYS[:2]] == ["posted", "posted"]
