"""The Tripletex client with an accounting firm's tokens, against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import LedgerAuthError
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.tripletex import TripletexClient
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import (
    DEMO_CLIENT_COMPANIES,
    DEMO_COMPANY,
    DEMO_CONSUMER_TOKEN,
    DEMO_EMPLOYEE_TOKEN,
    DEMO_FIRM,
    DEMO_FIRM_EMPLOYEE_TOKEN,
    create_app,
)

DAY = dt.date(2026, 3, 1)
BAKERY = DEMO_CLIENT_COMPANIES[0]


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    yield


@pytest.fixture
def store(sandbox):
    return sandbox[0].state.store


def firm_client(sandbox, employee_token: str = DEMO_FIRM_EMPLOYEE_TOKEN, **kwargs: Any) -> TripletexClient:
    return TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, employee_token, timeout=5, retry_backoff=0.01, **kwargs)


def day_voucher(day: dt.date = DAY) -> Voucher:
    lines = (
        VoucherLine("1920", 1_250_00, None, "Bankkort", department="1"),
        VoucherLine("3000", -1_000_00, "3", "Salg 25 %", department="1"),
        VoucherLine("3030", -250_00, "31", "Salg 15 %", project="100"),
    )
    return Voucher("shop12", day, external_ref("shop12", day), f"POS dagsoppgjør {day}", lines)


def calls(sandbox) -> list[tuple[str, str, str | None]]:
    """The sandbox's call log in order: method, path (voucher ids as {id}), Basic user."""
    return [(c["method"], re.sub(r"/\d+$", "/{id}", c["path"]), c["user"]) for c in sandbox[0].state.calls.list()]


def test_posting_for_a_client_lands_in_its_books_only(sandbox, store):
    client = firm_client(sandbox, client_org_number="998 877 665")
    voucher = day_voucher()
    posted = client.post(voucher)

    assert client.company_id == BAKERY.id
    assert posted.postings == tuple((line.account, line.amount, line.vat_code) for line in voucher.lines)
    assert [v.id for v in store.list_vouchers(BAKERY.id)] == [int(posted.ledger_id)]
    assert store.list_vouchers(DEMO_FIRM.id) == [] and store.list_vouchers(DEMO_COMPANY.id) == []

    bakery = str(BAKERY.id)
    assert calls(sandbox) == [
        ("POST", "/token/session/:create", None),
        ("GET", "/company/>withLoginAccess", "0"),
        ("GET", "/ledger/account", bakery),
        ("GET", "/ledger/vatType", bakery),
        ("GET", "/department", bakery),
        ("GET", "/project", bakery),
        ("POST", "/ledger/voucher", bakery),
        ("GET", "/ledger/voucher/{id}", bakery),
    ]
    [lookup] = [c for c in sandbox[0].state.calls.list() if c["path"] == "/company/>withLoginAccess"]
    assert "fields=id%2Cname%2CorganizationNumber" in lookup["query"]
    # The firm's own books see nothing; the bakery's do.
    assert firm_client(sandbox).find(voucher.external_ref, DAY) is None
    assert client.find(voucher.external_ref, DAY) == posted


def test_a_client_that_also_has_its_own_token_shares_the_books(sandbox, store):
    posted = firm_client(sandbox, client_org_number="999999999").post(day_voucher())
    assert [v.id for v in store.list_vouchers()] == [int(posted.ledger_id)]  # the kiosk's books
    own = firm_client(sandbox, DEMO_EMPLOYEE_TOKEN)
    assert own.find(day_voucher().external_ref, DAY) == posted


def test_an_org_number_out_of_reach_is_an_auth_error_naming_it(sandbox, store):
    client = firm_client(sandbox, client_org_number="123 456 789")
    with pytest.raises(LedgerAuthError) as info:
        client.post(day_voucher())
    message = str(info.value)
    assert "123456789" in message and "no login access" in message
    assert BAKERY.organization_number in message and DEMO_COMPANY.organization_number in message
    assert DEMO_FIRM_EMPLOYEE_TOKEN not in message and DEMO_CONSUMER_TOKEN not in message
    assert [c[1] for c in calls(sandbox)] == ["/token/session/:create", "/company/>withLoginAccess"]
    assert all(store.list_vouchers(company) == [] for company in store.companies)

    # A company's own token reaches no clients at all.
    with pytest.raises(LedgerAuthError, match="no client companies"):
        firm_client(sandbox, DEMO_EMPLOYEE_TOKEN, client_org_number="998877665").test_connection()


def test_a_warm_cache_spares_the_company_lookup(sandbox, store, tmp_path):
    path = tmp_path / "lookups.json"
    first = firm_client(sandbox, client_org_number="998877665", cache=LookupCache(path))
    first.post(day_voucher())
    sandbox[0].state.calls.clear()

    second = firm_client(sandbox, client_org_number="998877665", cache=LookupCache(path), read_back_after_post=False)
    voucher = day_voucher(DAY + dt.timedelta(days=1))
    assert second.find(voucher.external_ref, voucher.business_day) is None
    posted = second.post(voucher)
    bakery = str(BAKERY.id)
    assert calls(sandbox) == [
        ("POST", "/token/session/:create", None),
        ("GET", "/ledger/voucher/>externalVoucherNumber", bakery),
        ("POST", "/ledger/voucher", bakery),
    ]
    assert second.call_count == 3
    assert store.voucher(int(posted.ledger_id), BAKERY.id).external_voucher_number == voucher.external_ref


def test_a_new_session_keeps_the_client_company(sandbox, store):
    client = firm_client(sandbox, client_org_number="998877665")
    client.post(day_voucher())
    requests.post(sandbox[1].url + "/_sandbox/expire_sessions", timeout=5).raise_for_status()
    client.post(day_voucher(DAY + dt.timedelta(days=1)))
    assert client.calls["POST /token/session/:create"] == 2
    assert client.calls["GET /company/>withLoginAccess"] == 1
    assert len(store.list_vouchers(BAKERY.id)) == 2


def test_an_explicit_company_id_still_works(sandbox, store):
    client = firm_client(sandbox, company_id=BAKERY.id)
    posted = client.post(day_voucher())
    assert [v.id for v in store.list_vouchers(BAKERY.id)] == [int(posted.ledger_id)]
    assert client.calls["GET /company/>withLoginAccess"] == 0

    with pytest.raises(LedgerAuthError, match="403"):
        firm_client(sandbox, company_id=12345).test_connection()
    with pytest.raises(ValueError, match="not both"):
        firm_client(sandbox, company_id=BAKERY.id, client_org_number="998877665")
    with pytest.raises(ValueError, match="organisation number"):
        firm_client(sandbox, client_org_number="n/a")
