"""The PowerOffice Go client against the sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
import requests

from kassebro.ledgers.base import LedgerAuthError, LedgerRateLimited, LedgerTransient, LedgerValidationError
from kassebro.ledgers.poweroffice import PowerOfficeClient
from kassebro.sandbox.poweroffice import (
    DEFAULT_PRIVILEGES,
    DEMO_APPLICATION_KEY,
    DEMO_CLIENT_KEY,
    DEMO_SUBSCRIPTION_KEY,
    TOKEN_PATH,
    create_app,
)
from kassebro.sandbox.server import running
from kassebro.voucher import Voucher, VoucherLine, external_ref

DAY = dt.date(2026, 3, 1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def sandbox(clock):
    app = create_app(clock=clock)
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    yield


def make_client(server, *, clock=None, **keys: Any) -> PowerOfficeClient:
    options = {
        "application_key": DEMO_APPLICATION_KEY,
        "client_key": DEMO_CLIENT_KEY,
        "subscription_key": DEMO_SUBSCRIPTION_KEY,
        **keys,
    }
    extra = {"clock": clock} if clock is not None else {}
    return PowerOfficeClient(server.url, server.url + TOKEN_PATH, timeout=2, retry_backoff=0.01, **options, **extra)


@pytest.fixture
def client(sandbox, clock):
    with make_client(sandbox[1], clock=clock) as c:
        yield c


def add_fault(sandbox, **fault: Any) -> None:
    requests.post(sandbox[1].url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def vouchers(sandbox) -> list[dict[str, Any]]:
    return requests.get(sandbox[1].url + "/_sandbox/vouchers", timeout=5).json()["vouchers"]


def day_voucher(day: dt.date = DAY, vendor: str = "shop12") -> Voucher:
    return Voucher(
        vendor_id=vendor,
        business_day=day,
        external_ref=external_ref(vendor, day),
        description=f"POS dagsoppgjør {vendor} {day}",
        lines=(
            VoucherLine("1920", 1_250_00, None, "Bankkort"),
            VoucherLine("1940", 250_50, None, "Vipps"),
            VoucherLine("3000", -1_250_00, "3", "Salg 25 %"),
            VoucherLine("3030", -250_00, "31", "Salg 15 %"),
            VoucherLine("3040", -40_00, "33", "Salg 12 %"),
            VoucherLine("3100", -10_00, "5", "Fritatt"),
            VoucherLine("3200", 50_00, "6", "Utenfor (retur)"),
            VoucherLine("7798", -50, None, "Øreavrunding"),
        ),
    )


def expected(voucher: Voucher) -> tuple[tuple[str, int, str | None], ...]:
    return tuple((line.account, line.amount, line.vat_code) for line in voucher.lines)


# ---- connection -----------------------------------------------------------------------------


def test_test_connection_names_the_client(client):
    assert "Demo Kiosk AS" in client.test_connection()


def test_missing_privilege_is_named(sandbox):
    app = create_app(privileges=[p for p in DEFAULT_PRIVILEGES if p != "ManualVoucher_Full"])
    with running(app) as server, make_client(server) as client:
        with pytest.raises(LedgerAuthError, match="ManualVoucher_Full") as caught:
            client.test_connection()
        assert "GeneralLedgerAccount" not in str(caught.value)


def test_wrong_subscription_key_is_named_without_the_key(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-subscription-key-123456"
    with make_client(sandbox[1], subscription_key=secret) as client, pytest.raises(LedgerAuthError) as caught:
        client.test_connection()
    assert "subscription key" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(client) and secret not in caplog.text


def test_wrong_client_key_names_application_and_client_key(sandbox):
    secret = "wrong-client-key-987654"
    with (
        make_client(sandbox[1], client_key=secret) as client,
        pytest.raises(LedgerAuthError, match="application key or the client key") as caught,
    ):
        client.test_connection()
    assert secret not in str(caught.value)


def test_token_is_refreshed_before_expiry(sandbox, client, clock):
    store = sandbox[0].state.store
    before = store.token_count
    client.test_connection()
    assert store.token_count == before + 1
    clock.now += 500  # 100 s left of 600: still outside the 60 s margin
    client.test_connection()
    assert store.token_count == before + 1
    clock.now += 50  # 50 s left: inside the margin, a new token before the call
    client.test_connection()
    assert store.token_count == before + 2
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert all(c["status"] != 401 for c in calls)


def test_expired_token_is_replaced_once_on_401(sandbox, clock):
    store = sandbox[0].state.store
    with make_client(sandbox[1], clock=lambda: 0.0) as client:  # the client never thinks it expired
        client.test_connection()
        clock.now += 700  # the server does
        before = store.token_count
        assert "Demo Kiosk AS" in client.test_connection()
        assert store.token_count == before + 1
        assert client.calls["GET /ClientIntegrationInformation"] == 3


# ---- posting --------------------------------------------------------------------------------


def test_post_and_read_back_equal(sandbox, client):
    voucher = day_voucher()
    posted = client.post(voucher)
    assert posted.postings == expected(voucher)
    assert posted.external_ref == voucher.external_ref and posted.date == DAY and posted.in_ledger
    assert posted.number
    assert client.get(posted.ledger_id) == posted
    assert client.find(voucher.external_ref, DAY) == posted
    assert client.find("kassebro:other:2026-03-01", DAY) is None
    sent = vouchers(sandbox)[0]
    assert {line["CurrencyAmount"] for line in sent["VoucherLines"]} >= {1250.0, -1250.0, 250.5, -0.5}


def test_lookups_are_cached(client):
    client.post(day_voucher())
    client.post(day_voucher(DAY + dt.timedelta(days=1)))
    assert client.calls["GET /GeneralLedgerAccounts"] == 1
    assert client.calls["GET /VatCodes"] == 1
    assert client.calls["POST /Vouchers/ManualJournals"] == 2


def test_duplicate_reference_is_treated_as_already_posted(sandbox, client, clock):
    first = client.post(day_voucher())
    with make_client(sandbox[1], clock=clock) as other:  # a fresh client, no memory of the first post
        again = other.post(day_voucher())
    assert again == first
    assert len(vouchers(sandbox)) == 1


def test_save_then_drop_then_find_returns_the_voucher(sandbox, client):
    voucher = day_voucher()
    client.vat_id(None)
    client.resolve_accounts(line.account for line in voucher.lines)
    add_fault(sandbox, kind="save_then_drop", path="/Vouchers/ManualJournals", method="POST")
    with pytest.raises(LedgerTransient, match="look it up"):
        client.post(voucher)
    assert client.calls["POST /Vouchers/ManualJournals"] == 1  # never retried
    found = client.find(voucher.external_ref, DAY)
    assert found is not None and found.postings == expected(voucher)
    assert client.post(voucher) == found  # a re-post is refused as a duplicate and returns it
    assert len(vouchers(sandbox)) == 1


def test_validation_error_carries_problem_details(client):
    bad = Voucher("shop12", DAY, "ref-x", "x", (VoucherLine("1920", 100, None), VoucherLine("3000", -100, "31")))
    with pytest.raises(LedgerValidationError, match="locked to vat code 3"):
        client.post(bad)
    with pytest.raises(LedgerValidationError, match="9999"):
        client.post(Voucher("shop12", DAY, "ref-y", "x", (VoucherLine("1920", 100), VoucherLine("9999", -100))))


def test_zero_line_is_refused_by_the_server(client):
    bad = Voucher(
        "shop12", DAY, "ref-z", "x", (VoucherLine("1920", 100), VoucherLine("3900", 0), VoucherLine("7798", -100))
    )
    with pytest.raises(LedgerValidationError, match="not 0"):
        client.post(bad)


def test_rate_limit_and_server_errors(sandbox, client):
    add_fault(sandbox, kind="429", path="/ClientIntegrationInformation", seconds=7)
    with pytest.raises(LedgerRateLimited) as caught:
        client.test_connection()
    assert caught.value.retry_after == 7
    add_fault(sandbox, kind="500", path="/ClientIntegrationInformation", times=1)
    assert "Demo Kiosk AS" in client.test_connection()  # a GET is retried
    client.vat_id(None)
    client.resolve_accounts(["1920", "1940", "3000", "3030", "3040", "3100", "3200", "7798"])
    add_fault(sandbox, kind="500", path="/Vouchers/ManualJournals", method="POST")
    with pytest.raises(LedgerTransient):
        client.post(day_voucher())
    assert client.calls["POST /Vouchers/ManualJournals"] == 1


def test_timeout_is_transient(sandbox, client):
    client.test_connection()
    add_fault(sandbox, kind="delay", path="/Vouchers/ManualJournals", seconds=1.2)
    with make_client(sandbox[1]) as slow:
        slow.timeout = 0.5
        slow.vat_id(None)
        with pytest.raises(LedgerTransient, match="timed out"):
            slow.post(day_voucher())


def test_post_for_approval_and_find_the_draft(sandbox, client):
    voucher = day_voucher()
    draft = client.post(voucher, send_to_ledger=False)
    assert not draft.in_ledger and draft.postings == expected(voucher) and draft.external_ref == voucher.external_ref
    state = requests.get(sandbox[1].url + "/_sandbox/vouchers", timeout=5).json()
    assert state["vouchers"] == [] and state["drafts"][0]["InApprovalWorkflow"] is True
    assert client.find(voucher.external_ref, DAY) == draft
    assert client.get(draft.ledger_id) == draft
    assert client.post(voucher, send_to_ledger=False) == draft  # no second draft
    assert len(requests.get(sandbox[1].url + "/_sandbox/vouchers", timeout=5).json()["drafts"]) == 1
