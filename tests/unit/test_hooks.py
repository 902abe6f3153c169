"""Airflow connections -> ledger clients, for each system, against the live sandboxes."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import requests

from kassebro.sandbox.server import running


def conn_env(monkeypatch: pytest.MonkeyPatch, conn_id: str, body: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))


def test_tripletex_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import TripletexHook
    from kassebro.sandbox.tripletex import create_app

    with running(create_app()) as server:
        conn_env(
            monkeypatch,
            "tx",
            {
                "conn_type": "tripletex",
                "host": f"{server.url}/v2",
                "password": "demo-employee-token",
                "extra": {"consumer_token": "demo-consumer-token"},
            },
        )
        hook = TripletexHook("tx")
        assert hook.test_connection() == (True, "Connection ok")
        assert "consumer_token" not in hook.get_conn().headers  # secrets never become HTTP headers


def fiken_connection(url: str) -> dict:
    """A Fiken connection to the sandbox at `url` with the demo app and its first refresh token."""
    from kassebro.sandbox import fiken

    return {
        "conn_type": "fiken",
        "host": url,
        "login": fiken.DEMO_CLIENT_ID,
        "password": fiken.DEMO_CLIENT_SECRET,
        "extra": {"refresh_token": fiken.DEMO_REFRESH_TOKEN},
    }


def test_fiken_hook_reports_the_company_and_keeps_the_rotated_token(
    monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> None:
    from airflow.models.variable import Variable

    from kassebro.airflow.hooks import FikenHook
    from kassebro.sandbox import fiken

    for seed in (fiken.DEMO_REFRESH_TOKEN, "token-from-a-new-authorization"):  # rotations kept by other tests
        Variable.delete(FikenHook.token_variable(seed))
    app = fiken.create_app(refresh_tokens=(fiken.DEMO_REFRESH_TOKEN, "token-from-a-new-authorization"))
    with running(app) as server:
        body = fiken_connection(server.url)
        conn_env(monkeypatch, "fk", body)
        hook = FikenHook("fk", company=fiken.DEMO_COMPANY.slug)
        ok, message = hook.test_connection()
        assert (ok, message) == (True, f"Connected to Fiken as {fiken.DEMO_COMPANY.name}")
        rotated = hook._stored_refresh_token(fiken.DEMO_REFRESH_TOKEN)
        assert rotated and rotated != fiken.DEMO_REFRESH_TOKEN  # the old token is spent; the new one is kept
        assert FikenHook("fk", company=fiken.DEMO_COMPANY.slug).test_connection()[0]  # and used next time
        # the UI's Test button runs the hook under a transient connection id: same grant, same kept token
        conn_env(monkeypatch, "tmp_test_conn_fk", body)
        assert FikenHook("tmp_test_conn_fk", company=fiken.DEMO_COMPANY.slug).test_connection()[0]
        # someone authorizes the app again and puts the new token in the connection: it wins
        body["extra"]["refresh_token"] = "token-from-a-new-authorization"
        conn_env(monkeypatch, "fk", body)
        assert FikenHook("fk", company=fiken.DEMO_COMPANY.slug).test_connection()[0]
        assert "token-from-a-new-authorization" not in app.state.store.refresh_tokens  # it was the one used
        assert hook._stored_refresh_token("token-from-a-new-authorization")  # kept under the new grant


def test_fiken_tasks_of_one_connection_log_in_at_once(
    monkeypatch: pytest.MonkeyPatch, airflow_db: None, tmp_path: Path
) -> None:
    """Four tasks read the same kept refresh token and log in at the same moment: each rotates it
    in turn from the newest (one of them used to spend a dead token: `make bench-night`)."""
    import threading

    from airflow.models.variable import Variable

    from kassebro.airflow.hooks import FikenHook
    from kassebro.ledgers.fiken import FikenClient
    from kassebro.sandbox import fiken

    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    monkeypatch.setenv("KASSEBRO_JOURNAL_URL", f"sqlite:///{tmp_path / 'journal.db'}")
    Variable.delete(FikenHook.token_variable(fiken.DEMO_REFRESH_TOKEN))
    app = fiken.create_app()
    with running(app) as server:
        body = fiken_connection(server.url)
        conn_env(monkeypatch, "fk4", body)
        slug = fiken.DEMO_COMPANY.slug
        clients = [FikenClient.from_connection(FikenHook("fk4").connection_parts(), company=slug) for _ in range(4)]
        requests.post(
            server.url + "/_sandbox/faults",
            json={"kind": "delay", "method": "POST", "path": "/oauth/token", "seconds": 0.2},
            timeout=5,
        ).raise_for_status()
        errors: list[str] = []
        barrier = threading.Barrier(len(clients))

        def login(client: FikenClient) -> None:
            barrier.wait()
            try:
                client.company()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=login, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        calls = requests.get(server.url + "/_sandbox/calls", timeout=5).json()["calls"]
        assert not [c for c in calls if c["status"] == 429]
        assert FikenHook("fk4")._stored_refresh_token(fiken.DEMO_REFRESH_TOKEN) in app.state.store.refresh_tokens


def test_poweroffice_hook_and_wrong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import PowerOfficeHook
    from kassebro.sandbox import poweroffice

    with running(poweroffice.create_app()) as server:
        body = {
            "conn_type": "poweroffice",
            "host": f"{server.url}/v2",
            "password": poweroffice.DEMO_CLIENT_KEY,
            "extra": {
                "application_key": poweroffice.DEMO_APPLICATION_KEY,
                "subscription_key": poweroffice.DEMO_SUBSCRIPTION_KEY,
            },
        }
        conn_env(monkeypatch, "po", body)
        ok, message = PowerOfficeHook("po").test_connection()
        assert ok and "Demo" in message
        body["extra"]["subscription_key"] = "wrong-subscription-key"
        conn_env(monkeypatch, "po", body)
        ok, message = PowerOfficeHook("po").test_connection()
        assert not ok and "subscription key" in message and "wrong-subscription-key" not in message


def test_xledger_and_duett_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import DuettHook, XledgerHook, ledger_for
    from kassebro.sandbox import duett, xledger

    with running(xledger.create_app()) as server:
        conn_env(
            monkeypatch, "xl", {"conn_type": "xledger", "host": f"{server.url}/graphql", "password": xledger.DEMO_TOKEN}
        )
        assert XledgerHook("xl").test_connection()[0]
        assert ledger_for("xledger", "xl").system == "Xledger"
    with running(duett.create_app()) as server:
        conn_env(
            monkeypatch,
            "du",
            {
                "conn_type": "duett",
                "host": server.url,
                "password": duett.DEMO_CLIENT_KEY,
                "extra": {"integration_key": duett.DEMO_INTEGRATION_KEY},
            },
        )
        ok, message = DuettHook("du").test_connection()
        assert ok and duett.DEMO_CLIENT_NAME in message
        assert "integration_key" not in DuettHook("du").get_conn().headers


def test_ledger_for_unknown_system() -> None:
    from kassebro.airflow.hooks import ledger_for

    with pytest.raises(ValueError, match="unsupported ledger system"):
        ledger_for("abacus", "x")


def test_an_accounting_firm_posts_for_its_client_by_org_number(
    monkeypatch: pytest.MonkeyPatch, tmp_path, airflow_db: None
) -> None:
    """A vendor names the firm's connection and the client's organisation number; the voucher
    lands in the client's books, and the run's lookups are cached for the next task."""
    import datetime as dt

    from kassebro.airflow.hooks import ledger_for
    from kassebro.booking.voucher import Voucher, VoucherLine
    from kassebro.sandbox import tripletex

    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    app = tripletex.create_app()
    bakery = next(c for c in tripletex.DEMO_CLIENT_COMPANIES if c.organization_number == "998877665")
    with running(app) as server:
        conn_env(
            monkeypatch,
            "firm",
            {
                "conn_type": "tripletex",
                "host": f"{server.url}/v2",
                "password": tripletex.DEMO_FIRM_EMPLOYEE_TOKEN,
                "extra": {"consumer_token": tripletex.DEMO_CONSUMER_TOKEN},
            },
        )
        day = dt.date(2026, 11, 2)
        lines = (
            VoucherLine("1900", 12500, None, "Kontant"),
            VoucherLine("3000", -12500, "3", "Salg"),
        )
        voucher = Voucher("bakeri", day, "kassebro:bakeri:2026-11-02", "Dagsoppgjør", lines, 0)
        client = ledger_for("tripletex", "firm", client_org_number="998 877 665")
        posted = client.post(voucher)
        assert [v.id for v in app.state.store.list_vouchers(bakery.id)] == [int(posted.ledger_id)]
        assert app.state.store.list_vouchers() == []  # not in the default company's books
        again = ledger_for("tripletex", "firm", client_org_number="998877665")
        assert again.find(voucher.external_ref, day) is not None
        assert not [c for c in again.calls if "withLoginAccess" in c or c.startswith("GET /ledger/account")]
        with pytest.raises(Exception, match="123456789"):
            ledger_for("tripletex", "firm", client_org_number="123456789").test_connection()


@pytest.mark.parametrize(
    ("conn_type", "environment", "api", "token"),
    [
        ("tripletex", "test", "https://api-test.tripletex.tech/v2", None),
        ("tripletex", None, "https://tripletex.no/v2", None),
        (
            "poweroffice",
            "test",
            "https://goapi.poweroffice.net/demo/v2",
            "https://goapi.poweroffice.net/Demo/OAuth/Token",
        ),
        ("xledger", "production", "https://www.xledger.net/graphql", None),
        ("fiken", "test", "https://api.fiken.no/api/v2", "https://fiken.no/oauth/token"),
    ],
)
def test_the_environment_gives_the_address_when_the_host_is_empty(
    monkeypatch: pytest.MonkeyPatch, conn_type: str, environment: str | None, api: str, token: str | None
) -> None:
    from kassebro.airflow import hooks

    extra = {"environment": environment} if environment else {}
    conn_env(monkeypatch, "env_conn", {"conn_type": conn_type, "password": "secret", "extra": extra})
    hook_class = {
        "tripletex": hooks.TripletexHook,
        "fiken": hooks.FikenHook,
        "poweroffice": hooks.PowerOfficeHook,
        "xledger": hooks.XledgerHook,
    }[conn_type]
    hook = hook_class("env_conn")
    session = hook.get_conn()
    assert (hook.base_url, hook.token_url) == (api, token)
    assert "environment" not in session.headers  # our extras never become HTTP headers


def test_a_sandbox_environment_needs_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import DuettHook

    conn_env(monkeypatch, "dt_env", {"conn_type": "duett", "password": "k", "extra": {"environment": "sandbox"}})
    with pytest.raises(ValueError, match="needs its host"):
        DuettHook("dt_env").get_conn()


def test_cli_connection_test_speaks_each_systems_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], airflow_db: None
) -> None:
    from airflow.models.variable import Variable

    from kassebro.airflow.hooks import FikenHook
    from kassebro.cli import main
    from kassebro.demo.sandboxes import connection, create_app
    from kassebro.sandbox.fiken import DEMO_REFRESH_TOKEN

    Variable.delete(FikenHook.token_variable(DEMO_REFRESH_TOKEN))  # a fresh sandbox knows only the demo token

    with running(create_app("xledger")) as xledger, running(create_app("fiken")) as fiken:
        conn_env(monkeypatch, "xl_cli", connection("xledger", xledger.url))
        conn_env(monkeypatch, "fk_cli", connection("fiken", fiken.url))
        assert main(["connection", "test", "xl_cli"]) == 0
        assert capsys.readouterr().out.strip() == "Connected to Xledger (Query)"
        assert main(["connection", "test", "fk_cli", "--company", "demo-kiosk-as"]) == 0
        assert capsys.readouterr().out.strip() == "Connected to Fiken as Demo Kiosk AS"
        conn_env(monkeypatch, "xl_cli", connection("xledger", xledger.url, password="wrong-token"))
        assert main(["connection", "test", "xl_cli"]) == 1
        out = capsys.readouterr().out
        assert "Xledger" in out and "wrong-token" not in out


def test_the_connections_timeout_extra_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import TripletexHook
    from kassebro.ledgers.base import LedgerTransient
    from kassebro.sandbox.tripletex import create_app

    app = create_app()
    with running(app) as server:
        body = {
            "conn_type": "tripletex",
            "host": f"{server.url}/v2",
            "login": "someone",  # never sent as Basic auth: Tripletex's auth is the session token
            "password": "demo-employee-token",
            "extra": {"consumer_token": "demo-consumer-token", "timeout": 0.5},
        }
        conn_env(monkeypatch, "tx_timeout", body)
        client = TripletexHook("tx_timeout").get_client()
        assert client.timeout == 0.5
        assert client._http.session.auth is None
        client.test_connection()
        app.state.faults.add("delay", path="/ledger/account", seconds=1.5, times=3)
        started = time.monotonic()
        with pytest.raises(LedgerTransient, match="timed out"):
            client.resolve_accounts(["1920"])
        assert time.monotonic() - started < 1.5 * 3  # each of the 3 tries gave up at 0.5 s
        conn_env(monkeypatch, "tx_default", {**body, "extra": {"consumer_token": "demo-consumer-token"}})
        assert TripletexHook("tx_default").get_client().timeout == 30


def _colliding_vendors(slots: int) -> tuple[str, str]:
    """Two vendor ids whose hashed Duett slots are the same (the birthday bound finds them fast)."""
    from kassebro.ledgers.duett import DuettClient

    probe = DuettClient(integration_key="i", client_key="c", series_size=slots * 1000)
    seen: dict[int, str] = {}
    for i in range(10 * slots):
        vendor = f"shop_{i:05d}"
        number = probe.voucher_number(f"kassebro:{vendor}:2026-03-01", dt.date(2026, 3, 1))
        if number in seen:
            return seen[number], vendor
        seen[number] = vendor
    raise AssertionError("no collision found")


def test_duett_vendor_slots_from_the_connection_keep_colliding_vendors_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two vendors whose hashed slots collide: without `vendor_slots` the second post is refused
    (as bench-night met it); with the connection's `vendor_slots` both post, each in its slot."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
    from kassebro.ledgers.base import LedgerValidationError
    from kassebro.sandbox import duett

    day = dt.date(2026, 3, 1)
    first, second = _colliding_vendors(100)

    def voucher(vendor: str) -> Voucher:
        lines = (VoucherLine("1920", 100_00, None, "Bankkort"), VoucherLine("3000", -100_00, "3", "Salg 25 %"))
        return Voucher(vendor, day, external_ref(vendor, day), f"POS {vendor} {day}", lines)

    def connection(url: str, **extra: object) -> dict:
        return {
            "conn_type": "duett",
            "host": url,
            "password": duett.DEMO_CLIENT_KEY,
            "extra": {
                "integration_key": duett.DEMO_INTEGRATION_KEY,
                "series_start": 500_000,
                "series_size": 100_000,
                **extra,
            },
        }

    with running(duett.create_app()) as server:
        conn_env(monkeypatch, "du_hashed", connection(server.url))
        hashed = ledger_for("duett", "du_hashed")
        assert (hashed.series_start, hashed.slots, hashed.vendor_slots) == (500_000, 100, {})
        hashed.post(voucher(first))
        with pytest.raises(LedgerValidationError, match="vendor_slots"):
            hashed.post(voucher(second))
    with running(duett.create_app()) as server:
        conn_env(monkeypatch, "du_slots", connection(server.url, vendor_slots=json.dumps({first: 0, second: 1})))
        pinned = ledger_for("duett", "du_slots")
        numbers = {pinned.post(voucher(v)).number for v in (first, second)}
        assert numbers == {"500060", "501060"}  # slot * 1000 + day of year (1 March: 60)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"vendor_slots": '{"a": 3, "b": 3}'}, "'a', 'b' share slot 3"),
        ({"vendor_slots": '{"a": 10000}'}, "outside 0..9999"),
        ({"vendor_slots": '{"a": "x"}'}, "slot of 'a' must be a whole number"),
        ({"vendor_slots": "{a: 1}"}, "vendor_slots is not JSON"),
        ({"vendor_slots": "[1, 2]"}, "must be an object"),
        ({"series_size": 1500}, "positive multiple of 1000"),
        ({"series_start": "ninety"}, "series_start must be a whole number"),
    ],
)
def test_a_duett_numbering_that_cannot_work_fails_naming_the_connection_and_field(
    monkeypatch: pytest.MonkeyPatch, extra: dict, expected: str
) -> None:
    from kassebro.airflow.hooks import ledger_for
    from kassebro.core.errors import ConfigError

    conn_env(
        monkeypatch,
        "du_bad",
        {
            "conn_type": "duett",
            "host": "http://127.0.0.1:9",
            "password": "k",
            "extra": {"integration_key": "i", **extra},
        },
    )
    with pytest.raises(ConfigError, match="du_bad") as caught:
        ledger_for("duett", "du_bad")
    assert expected in str(caught.value)
    assert "\nk" not in str(caught.value)  # the client key is not in the message


def test_duett_vendor_slots_set_as_a_json_object_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.hooks import ledger_for

    conn_env(
        monkeypatch,
        "du_obj",
        {
            "conn_type": "duett",
            "host": "http://127.0.0.1:9",
            "password": "k",
            "extra": {"integration_key": "i", "vendor_slots": {"a": 2}},
        },
    )
    assert ledger_for("duett", "du_obj").vendor_slots == {"a": 2}
