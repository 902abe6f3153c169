"""The PowerOffice Go client against the sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import (
    LedgerAuthError,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
    PostedVoucher,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.poweroffice import ACCOUNTS as ACCOUNT_TABLE
from kassebro.ledgers.poweroffice import DEFAULT_PAGE_SIZE, PowerOfficeClient
from kassebro.ledgers.poweroffice import DEPARTMENTS as DEPARTMENT_TABLE
from kassebro.sandbox.poweroffice import ACCOUNTS as CHART
from kassebro.sandbox.poweroffice import (
    DEFAULT_PRIVILEGES,
    DEMO_APPLICATION_KEY,
    DEMO_CLIENT_KEY,
    DEMO_SUBSCRIPTION_KEY,
    DEPARTMENTS,
    TOKEN_PATH,
    Department,
    create_app,
)
from kassebro.sandbox.server import running

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


def drafts(sandbox) -> list[dict[str, Any]]:
    return requests.get(sandbox[1].url + "/_sandbox/vouchers", timeout=5).json()["drafts"]


def call_log(sandbox) -> list[tuple[str, str]]:
    """The (method, path) of every call the sandbox got since the last look, then forget them."""
    calls = [(c["method"], c["path"]) for c in sandbox[0].state.calls.list()]
    sandbox[0].state.calls.clear()
    return calls


LOOKUPS = {"GET /GeneralLedgerAccounts", "GET /VatCodes", "GET /Departments", "GET /Projects"}


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


def dim_voucher(day: dt.date = DAY, department: str = "1", project: str | None = "10.2") -> Voucher:
    """A day with a department and a (sub)project on its lines, and a line on another department."""
    return Voucher(
        vendor_id="shop12",
        business_day=day,
        external_ref=external_ref("shop12", day),
        description=f"POS dagsoppgjør shop12 {day}",
        lines=(
            VoucherLine("1920", 1_250_00, None, "Bankkort", department, project),
            VoucherLine("3000", -1_000_00, "3", "Salg 25 %", department, project),
            VoucherLine("3030", -250_00, "31", "Salg 15 %", "2", None),
        ),
    )


def dimension_ids(sandbox) -> tuple[dict[str, int], dict[str, int]]:
    store = sandbox[0].state.store
    return {d.code: d.id for d in store.departments.values()}, {p.code: p.id for p in store.projects.values()}


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


def test_missing_dimension_privilege_is_a_note_not_an_error(sandbox):
    app = create_app(privileges=[p for p in DEFAULT_PRIVILEGES if p != "Project"])
    with running(app) as server, make_client(server) as client:
        answer = client.test_connection()
    assert "Demo Kiosk AS" in answer and "no Project or Project_Full: lines with a project" in answer
    assert "Department" not in answer


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
    # the server finishes the abandoned POST 1.2 s on: wait for it, or it lands in a later test's call
    # log (the token's POST does not count: waiting for any POST let it land in the warm-post test's)
    deadline = time.monotonic() + 10
    while not any(
        (c["method"], c["path"]) == ("POST", "/Vouchers/ManualJournals") and c.get("status")
        for c in sandbox[0].state.calls.list()
    ):
        assert time.monotonic() < deadline, "the delayed POST never finished"
        time.sleep(0.05)


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


def test_a_draft_posted_by_the_approver_is_found_and_not_drafted_again(sandbox, client):
    voucher = day_voucher()
    draft = client.post(voucher, send_to_ledger=False)
    requests.post(sandbox[1].url + f"/_sandbox/approve/{draft.ledger_id}", timeout=5).raise_for_status()
    found = client.find(voucher.external_ref, DAY)  # via " [ref]" in the VoucherDescription
    assert found is not None and found.in_ledger and found.ledger_id == draft.ledger_id
    assert found.external_ref == voucher.external_ref and found.postings == expected(voucher)
    assert client.get(draft.ledger_id) == found
    assert client.post(voucher, send_to_ledger=False) == found  # no second draft of a posted day
    assert len(drafts(sandbox)) == 1 and len(vouchers(sandbox)) == 1


def test_a_draft_whose_submit_failed_is_submitted_on_the_next_try(sandbox, client):
    voucher = day_voucher()
    add_fault(sandbox, kind="500", path="/JournalEntryVouchers/*/submitForApproval", method="POST")
    with pytest.raises(LedgerTransient):
        client.post(voucher, send_to_ledger=False)
    assert drafts(sandbox)[0]["InApprovalWorkflow"] is False
    draft = client.post(voucher, send_to_ledger=False)
    assert [d["InApprovalWorkflow"] for d in drafts(sandbox)] == [True]
    assert draft.ledger_id == drafts(sandbox)[0]["Id"]


# ---- departments and projects ---------------------------------------------------------------


def test_departments_and_projects_are_sent_and_read_back(sandbox, client):
    voucher = dim_voucher()
    posted = client.post(voucher)
    assert posted.postings == expected(voucher)
    departments, projects = dimension_ids(sandbox)
    stored = vouchers(sandbox)[0]["VoucherLines"]
    assert [(line["DepartmentId"], line["ProjectId"]) for line in stored] == [
        (departments["1"], projects["10.2"]),
        (departments["1"], projects["10.2"]),
        (departments["2"], None),
    ]
    assert client.read_lines(posted.ledger_id) == voucher.lines


def test_draft_lines_carry_departments_and_projects(sandbox, client):
    voucher = dim_voucher()
    draft = client.post(voucher, send_to_ledger=False)
    departments, projects = dimension_ids(sandbox)
    lines = drafts(sandbox)[0]["ManualVoucherLines"]
    assert [(line["DepartmentId"], line["ProjectId"]) for line in lines] == [
        (departments["1"], projects["10.2"]),
        (departments["1"], projects["10.2"]),
        (departments["2"], None),
    ]
    assert client.read_lines(draft.ledger_id) == voucher.lines


def test_unknown_department_or_project_is_named_and_nothing_is_posted(sandbox, client):
    with pytest.raises(LedgerValidationError, match="department 9 not found"):
        client.post(dim_voucher(department="9"))
    with pytest.raises(LedgerValidationError, match="project 77 not found"):
        client.post(dim_voucher(project="77"))
    with pytest.raises(LedgerValidationError, match="department 9 not found"):
        client.post(dim_voucher(department="9"), send_to_ledger=False)
    assert client.calls["POST /Vouchers/ManualJournals"] == 0
    assert client.calls["POST /JournalEntryVouchers/ManualJournals"] == 0
    assert vouchers(sandbox) == [] and drafts(sandbox) == []


def test_inactive_department_is_named():
    closed = Department(7_100_004, "4", "Stengt", is_active=False)
    with running(create_app(departments=(*DEPARTMENTS, closed))) as server, make_client(server) as client:
        with pytest.raises(LedgerValidationError, match="department 4 inactive"):
            client.post(dim_voucher(department="4"))
        assert client.calls["POST /Vouchers/ManualJournals"] == 0


# ---- the lookup cache -----------------------------------------------------------------------


def test_two_clients_share_a_file_cache(sandbox, clock, tmp_path):
    path = tmp_path / "lookups" / "poweroffice.json"
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as first:
        first.post(dim_voucher())
    assert set(first.calls) >= LOOKUPS
    later = dim_voucher(DAY + dt.timedelta(days=1))
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as second:
        posted = second.post(later)
        assert second.get(posted.ledger_id) == posted
        assert second.read_lines(posted.ledger_id) == later.lines
        assert second.find(later.external_ref, later.business_day) == posted
    assert not set(second.calls) & LOOKUPS, second.calls
    saved = path.read_text()
    assert all(secret not in saved for secret in (DEMO_APPLICATION_KEY, DEMO_CLIENT_KEY, DEMO_SUBSCRIPTION_KEY))


def test_a_refusal_clears_the_cache_and_the_next_try_looks_up_afresh(sandbox, clock, tmp_path):
    path = tmp_path / "lookups.json"
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as client:
        client.resolve_departments(["1"])
        client.cache.put(DEPARTMENT_TABLE, {"1": 7_100_999})  # department 1 was deleted and made again in Go
        with pytest.raises(LedgerValidationError, match="7100999"):
            client.post(dim_voucher())
        assert client.cache.table(DEPARTMENT_TABLE) == {} and not path.exists()
        looked_up = client.calls["GET /Departments"]
        posted = client.post(dim_voucher())
        assert client.calls["GET /Departments"] == looked_up + 1
    assert posted.in_ledger and len(vouchers(sandbox)) == 1


def test_a_duplicate_refusal_keeps_the_cache(sandbox, client):
    client.post(day_voucher())
    moved = replace(day_voucher(), business_day=DAY + dt.timedelta(days=1))  # same reference, another day
    with pytest.raises(LedgerValidationError, match="already exists"):
        client.post(moved)  # refused as a duplicate, and find on the other day has nothing: re-raised
    assert client.cache.table(ACCOUNT_TABLE)


# ---- calls per voucher ----------------------------------------------------------------------


def test_warm_post_is_token_duplicate_check_and_post(sandbox, clock, tmp_path):
    path = tmp_path / "lookups.json"
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as warm_up:
        warm_up.post(dim_voucher())
    voucher = dim_voucher(DAY + dt.timedelta(days=1))
    call_log(sandbox)
    with make_client(
        sandbox[1], clock=clock, cache=LookupCache(path), search_drafts=False, read_back_after_post=False
    ) as client:
        assert client.find(voucher.external_ref, voucher.business_day) is None  # what the pipeline does first
        posted = client.post(voucher)
    assert call_log(sandbox) == [
        ("POST", TOKEN_PATH),
        ("GET", "/AccountTransactions"),
        ("POST", "/Vouchers/ManualJournals"),
    ]
    assert posted.number == str(vouchers(sandbox)[-1]["VoucherNo"])
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as reader:
        assert reader.get(posted.ledger_id) == posted  # built from what was sent = what Go holds
    assert call_log(sandbox) == [("POST", TOKEN_PATH), ("GET", f"/Vouchers/ManualJournals/{posted.ledger_id}")]


def test_duplicate_without_read_back_still_returns_the_existing_voucher(sandbox, client, clock):
    first = client.post(day_voucher())
    with make_client(sandbox[1], clock=clock, read_back_after_post=False, search_drafts=False) as other:
        again = other.post(day_voucher())
    assert again == first
    assert len(vouchers(sandbox)) == 1


# ---- listing and reversing ------------------------------------------------------------------


def nets(vouchers: list[PostedVoucher]) -> dict[tuple[str, str | None], int]:
    """What the vouchers book per (account, VAT code), zeros left out."""
    totals: dict[tuple[str, str | None], int] = {}
    for voucher in vouchers:
        for account, amount, vat in voucher.postings:
            totals[(account, vat)] = totals.get((account, vat), 0) + amount
    return {key: amount for key, amount in totals.items() if amount}


def negated(voucher: PostedVoucher) -> tuple[tuple[str, int, str | None], ...]:
    return tuple((account, -amount, vat) for account, amount, vat in voucher.postings)


def reversal_vouchers(sandbox) -> list[dict[str, Any]]:
    return [v for v in vouchers(sandbox) if v["VoucherType"] == "ReversalVoucher"]


def test_list_vouchers_is_the_date_range_end_exclusive(sandbox, client):
    first = client.post(day_voucher(DAY))
    second = client.post(dim_voucher(DAY + dt.timedelta(days=1)))
    body = client.render(day_voucher(DAY + dt.timedelta(days=1), vendor="other"))
    del body["ExternalImportReference"]  # a voucher someone else posted
    theirs = client._request("POST", "/Vouchers/ManualJournals", body=body)
    draft = client.post(day_voucher(DAY, vendor="shop13"), send_to_ledger=False)
    client.post(day_voucher(DAY + dt.timedelta(days=2)))  # the end date: not included
    client.post(day_voucher(DAY - dt.timedelta(days=1)))
    before = client.calls["GET /AccountTransactions"]
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=2))
    assert client.calls["GET /AccountTransactions"] == before + 1  # one call for the range, no reads per voucher
    assert client.calls["GET /Vouchers/ManualJournals/{id}"] == 0
    assert listed[:2] == [first, second]  # as posted: reference, number, date, every line gross
    assert listed[0].postings == expected(day_voucher(DAY))
    assert [(v.ledger_id, v.external_ref) for v in listed[2:]] == [(theirs["Id"], "")]
    assert listed[2].postings == expected(day_voucher(DAY + dt.timedelta(days=1), vendor="other"))
    with_drafts = client.list_vouchers(DAY, DAY + dt.timedelta(days=2), include_non_posted=True)
    assert with_drafts == [*listed, draft] and not draft.in_ledger
    assert client.list_vouchers(DAY, DAY) == []
    assert client.list_vouchers(DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)) == listed[1:]


def test_list_vouchers_reads_a_voucher_back_when_its_vat_rows_are_ambiguous(client):
    # 0.01 kr at 25 % carries no VAT: the line looks like a generated VAT row, the reading does
    # not add up, and the voucher is read with GET instead
    tiny = Voucher(
        "shop12",
        DAY,
        external_ref("shop12", DAY),
        "x",
        (VoucherLine("1920", 1_01), VoucherLine("3000", -1_00, "3"), VoucherLine("3000", -1, "3")),
    )
    posted = client.post(tiny)
    before = client.calls["GET /Vouchers/ManualJournals/{id}"]
    assert client.list_vouchers(DAY, DAY + dt.timedelta(days=1)) == [posted]
    assert client.calls["GET /Vouchers/ManualJournals/{id}"] == before + 1


def test_reverse_on_the_vouchers_day_is_gos_own_reversal(sandbox, client):
    voucher = day_voucher()
    posted = client.post(voucher)
    reversal = client.reverse(posted.ledger_id, DAY)
    assert reversal.postings == negated(posted) and reversal.date == DAY and reversal.in_ledger
    assert reversal.ledger_id != posted.ledger_id and reversal.number and reversal.external_ref == ""
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=1))
    assert listed == [posted, reversal] and nets(listed) == {}
    assert client.find(voucher.external_ref, DAY) == posted  # the original still counts as posted
    [stored] = reversal_vouchers(sandbox)
    assert stored["Id"] == reversal.ledger_id
    assert client.reverse(posted.ledger_id, DAY) == reversal  # asked again: the same reversal
    assert client.calls["POST /Vouchers/Reverse/{id}"] == 1
    assert client.calls["POST /Vouchers/ManualJournals"] == 1


def test_reverse_after_a_lost_answer_reverses_once(sandbox, client):
    posted = client.post(day_voucher())
    sandbox[0].state.faults.add("save_then_drop", path="/Vouchers/Reverse/*", method="POST")
    with pytest.raises(LedgerTransient, match="call reverse again"):
        client.reverse(posted.ledger_id, DAY)
    reversal = client.reverse(posted.ledger_id, DAY)  # Go shows the original IsReversed: read, not reversed again
    assert reversal.postings == negated(posted)
    assert [v.ledger_id for v in client.list_vouchers(DAY, DAY + dt.timedelta(days=1))] == [
        posted.ledger_id,
        reversal.ledger_id,
    ]
    assert len(reversal_vouchers(sandbox)) == 1
    reverses = [c for c in sandbox[0].state.calls.list() if c["path"].startswith("/Vouchers/Reverse/")]
    assert len(reverses) == 1 and reverses[0]["fault"] == "save_then_drop"


def test_reverse_on_another_day_is_a_counter_voucher_posted_once(sandbox, client):
    voucher = dim_voucher()
    posted = client.post(voucher)
    later = DAY + dt.timedelta(days=3)
    sandbox[0].state.faults.add("save_then_drop", path="/Vouchers/ManualJournals", method="POST")
    with pytest.raises(LedgerTransient, match="call reverse again"):
        client.reverse(posted.ledger_id, later)
    reversal = client.reverse(posted.ledger_id, later)  # Go refuses the reference twice: the one there
    assert reversal.external_ref == voucher.external_ref + ":reversal" and reversal.date == later
    assert reversal.postings == negated(posted)
    assert client.read_lines(reversal.ledger_id) == tuple(replace(line, amount=-line.amount) for line in voucher.lines)
    assert client.list_vouchers(DAY, later) == [posted]
    listed = client.list_vouchers(DAY, later + dt.timedelta(days=1))
    assert listed == [posted, reversal] and nets(listed) == {}
    assert client.find(voucher.external_ref, DAY) == posted
    assert len(vouchers(sandbox)) == 2 and reversal_vouchers(sandbox) == []
    assert client.calls["POST /Vouchers/Reverse/{id}"] == 0


def test_without_the_year_end_role_reverse_posts_a_counter_voucher():
    app = create_app(privileges=[p for p in DEFAULT_PRIVILEGES if p != "YearEndVoucher_Full"])
    with running(app) as server, make_client(server) as client:
        assert "no YearEndVoucher_Full: reverse books a counter-voucher" in client.test_connection()
        posted = client.post(day_voucher())
        reversal = client.reverse(posted.ledger_id, DAY)
        assert client.reverse(posted.ledger_id, DAY) == reversal
        assert client.calls["POST /Vouchers/Reverse/{id}"] == 2  # refused with 403 both times
        assert reversal.external_ref == posted.external_ref + ":reversal" and reversal.date == DAY
        assert nets(client.list_vouchers(DAY, DAY + dt.timedelta(days=1))) == {}
        assert len(app.state.store.vouchers) == 2


def test_vouchers_go_cannot_reverse_get_a_counter_voucher_and_a_draft_is_refused(sandbox, client):
    body = client.render(day_voucher())
    del body["ExternalImportReference"]
    theirs = client._request("POST", "/Vouchers/ManualJournals", body=body)
    reversal = client.reverse(theirs["Id"], DAY)
    assert reversal.external_ref == f"poweroffice-{theirs['Id']}:reversal" and reversal.date == DAY
    approved = client.post(day_voucher(vendor="shop13"), send_to_ledger=False)  # Go reverses only POST /Vouchers'
    requests.post(sandbox[1].url + f"/_sandbox/approve/{approved.ledger_id}", timeout=5).raise_for_status()
    reversal = client.reverse(approved.ledger_id, DAY)
    assert reversal.external_ref == approved.external_ref + ":reversal"
    assert client.reverse(approved.ledger_id, DAY) == reversal
    assert client.calls["POST /Vouchers/Reverse/{id}"] == 0 and reversal_vouchers(sandbox) == []
    assert nets(client.list_vouchers(DAY, DAY + dt.timedelta(days=1))) == {}
    draft = client.post(day_voucher(vendor="shop14"), send_to_ledger=False)
    with pytest.raises(LedgerValidationError, match="draft awaiting approval"):
        client.reverse(draft.ledger_id, DAY)
    with pytest.raises(LedgerValidationError, match="404"):
        client.reverse("00000000-0000-0000-0000-000000000000", DAY)


# ---- paged lists ----------------------------------------------------------------------------

PAGE = 2  # rows a page in the tiny-page sandbox (its MaxPageSize too)


@pytest.fixture(scope="module")
def tiny_app(clock):
    app = create_app(clock=clock, page_size=PAGE, max_page_size=PAGE)
    with running(app) as server:
        yield app, server


@pytest.fixture
def tiny(tiny_app):
    """A sandbox whose lists come two rows a page, emptied for each test."""
    requests.post(tiny_app[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    return tiny_app


def tiny_client(server, clock, **options: Any) -> PowerOfficeClient:
    return make_client(server, clock=clock, page_size=PAGE, **options)


def day_rows(sandbox, day: dt.date = DAY) -> list[dict[str, Any]]:
    """The day's account transactions as the sandbox lists them (every page)."""
    return sandbox[0].state.store.account_transactions(day.isoformat(), day.isoformat())


def paging_queries(sandbox, path: str) -> list[dict[str, str]]:
    """PageSize/PageNumber of every call to `path` since the last look at the log (which is cleared)."""
    calls = [dict(parse_qsl(c["query"])) for c in sandbox[0].state.calls.list() if c["path"] == path]
    sandbox[0].state.calls.clear()
    return [{k: v for k, v in q.items() if k in ("PageSize", "PageNumber")} for q in calls]


def test_a_voucher_on_the_last_page_is_found_and_the_day_is_not_posted_twice(tiny, clock):
    voucher = day_voucher()
    with tiny_client(tiny[1], clock) as client:
        for vendor in ("shop13", "shop14", "shop15"):  # other shops' days first: ours comes last
            client.post(day_voucher(vendor=vendor))
        posted = client.post(voucher)
        first_page = client._request(
            "GET", "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY, "PageSize": PAGE}
        )
        assert voucher.external_ref not in {row["ExternalImportReference"] for row in first_page}  # one page misses it
    rows = len(day_rows(tiny))
    assert rows > 40 and day_rows(tiny)[-1]["ExternalImportReference"] == voucher.external_ref
    paging_queries(tiny, "/AccountTransactions")
    with tiny_client(tiny[1], clock, search_drafts=False) as fresh:  # a later run, no memory of the post
        assert fresh.find(voucher.external_ref, DAY) == posted
        # the first page without a PageNumber, then 1, 2, ... up to the first short page
        assert paging_queries(tiny, "/AccountTransactions") == [{"PageSize": "2"}] + [
            {"PageSize": "2", "PageNumber": str(n)} for n in range(1, rows // PAGE + 2)
        ]
        assert fresh.post(voucher) == posted  # Go refuses the reference, and find returns the one there
    assert len(vouchers(tiny)) == 4


def test_an_approved_draft_on_the_last_page_is_not_drafted_again(tiny, clock):
    # drafts have no server-side duplicate check: only reading every page stops a second one
    voucher = day_voucher()
    with tiny_client(tiny[1], clock) as client:
        for vendor in ("shop13", "shop14"):
            client.post(day_voucher(vendor=vendor))
        draft = client.post(voucher, send_to_ledger=False)
        requests.post(tiny[1].url + f"/_sandbox/approve/{draft.ledger_id}", timeout=5).raise_for_status()
        assert day_rows(tiny)[-1]["VoucherId"] == draft.ledger_id
        again = client.post(voucher, send_to_ledger=False)
    assert again.in_ledger and again.ledger_id == draft.ledger_id and again.postings == expected(voucher)
    assert len(drafts(tiny)) == 1 and len(vouchers(tiny)) == 3


def test_a_draft_on_a_later_page_of_the_drafts_is_found(tiny, clock):
    voucher = day_voucher()
    with tiny_client(tiny[1], clock) as client:
        others = [client.post(day_voucher(vendor=v), send_to_ledger=False) for v in ("shop13", "shop14")]
        draft = client.post(voucher, send_to_ledger=False)  # the third draft: on the second page
        paging_queries(tiny, "/JournalEntryVouchers")
        assert client.find(voucher.external_ref, DAY) == draft
        assert len(paging_queries(tiny, "/JournalEntryVouchers")) == 3  # page, page 1 again, page 2 (short)
        assert client.post(voucher, send_to_ledger=False) == draft
        assert client.list_vouchers(DAY, DAY + dt.timedelta(days=1), include_non_posted=True) == [*others, draft]
    assert len(drafts(tiny)) == 3


def test_list_vouchers_reads_a_range_spread_over_many_pages(tiny, clock):
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    with tiny_client(tiny[1], clock) as client:
        posted = [client.post(day_voucher(day, vendor)) for day in days for vendor in ("shop12", "shop13")]
        client.post(day_voucher(DAY + dt.timedelta(days=3)))  # the end date: not included
        before = client.calls["GET /AccountTransactions"]
        listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=3))
        pages = client.calls["GET /AccountTransactions"] - before
        # every voucher whole, none twice (page 1 repeats the first page), none read again with GET
        assert listed == posted
        assert client.calls["GET /Vouchers/ManualJournals/{id}"] == 0
    rows = sum(len(day_rows(tiny, day)) for day in days)
    assert pages == rows // PAGE + 2 and pages > 30


def test_lookup_tables_are_read_past_the_first_page(tiny, clock):
    voucher = dim_voucher(department="3", project="20")  # the last department and project of the tables
    with tiny_client(tiny[1], clock) as client:
        posted = client.post(voucher)  # accounts, departments and projects looked up by code, paged
    assert len(CHART) > 10 * PAGE
    with tiny_client(tiny[1], clock) as fresh:  # an empty cache: whole tables to map ids back
        assert fresh.read_lines(posted.ledger_id) == voucher.lines
        assert fresh.get(posted.ledger_id) == posted
        assert fresh.calls["GET /GeneralLedgerAccounts"] > len(CHART) // PAGE
        assert fresh.calls["GET /Departments"] > 1 and fresh.calls["GET /Projects"] > 1
        assert fresh.calls["GET /VatCodes"] > 1
        assert fresh.vat_id("33") == 3_200_033  # the ninth code of ten


def test_a_day_on_one_page_is_one_call(sandbox, clock, tmp_path):
    path = tmp_path / "lookups.json"
    day = DAY + dt.timedelta(days=1)
    with make_client(sandbox[1], clock=clock, cache=LookupCache(path)) as warm_up:
        for vendor in ("shop13", "shop14"):  # a day with other shops' vouchers on it, fewer rows than a page
            warm_up.post(replace(dim_voucher(day), vendor_id=vendor, external_ref=external_ref(vendor, day)))
    voucher = dim_voucher(day)
    call_log(sandbox)
    with make_client(
        sandbox[1], clock=clock, cache=LookupCache(path), search_drafts=False, read_back_after_post=False
    ) as client:
        assert client.find(voucher.external_ref, day) is None
        client.post(voucher)
    log = sandbox[0].state.calls.list()
    assert [(c["method"], c["path"]) for c in log] == [
        ("POST", TOKEN_PATH),
        ("GET", "/AccountTransactions"),
        ("POST", "/Vouchers/ManualJournals"),
    ]
    assert paging_queries(sandbox, "/AccountTransactions") == [{"PageSize": str(DEFAULT_PAGE_SIZE)}]
    assert 0 < len(day_rows(sandbox, day)) < DEFAULT_PAGE_SIZE


def test_a_tiny_day_with_tiny_pages_is_still_token_check_and_post(tiny, clock, tmp_path):
    path = tmp_path / "lookups.json"
    with tiny_client(tiny[1], clock, cache=LookupCache(path)) as warm_up:
        warm_up.post(day_voucher())
    voucher = day_voucher(DAY + dt.timedelta(days=1))
    call_log(tiny)
    with tiny_client(
        tiny[1], clock, cache=LookupCache(path), search_drafts=False, read_back_after_post=False
    ) as client:
        assert client.find(voucher.external_ref, voucher.business_day) is None
        client.post(voucher)
    assert call_log(tiny) == [
        ("POST", TOKEN_PATH),
        ("GET", "/AccountTransactions"),
        ("POST", "/Vouchers/ManualJournals"),
    ]


class _RewritingSession(requests.Session):
    """Real HTTP to the sandbox, with the PageNumber of each request rewritten on the way out."""

    def __init__(self, rewrite: Any) -> None:
        super().__init__()
        self.rewrite = rewrite

    def request(self, method: str, url: str, params: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if params and "PageNumber" in params:
            params = self.rewrite(dict(params))
        return super().request(method, url, params=params, **kwargs)


def test_pages_counted_from_zero_are_read_whole_too(tiny, clock):
    """The spec gives no base for PageNumber: a Go counting from 0 gives each page once."""

    def from_zero(params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "PageNumber": params["PageNumber"] + 1}  # the client's n is the sandbox's n + 1

    with tiny_client(tiny[1], clock) as client:
        posted = [client.post(day_voucher(vendor=v)) for v in ("shop12", "shop13")]
    with _RewritingSession(from_zero) as http, tiny_client(tiny[1], clock, session=http) as client:
        assert client.list_vouchers(DAY, DAY + dt.timedelta(days=1)) == posted
        assert client.calls["GET /AccountTransactions"] == len(day_rows(tiny)) // PAGE + 1  # no page read twice
        assert client.calls["GET /Vouchers/ManualJournals/{id}"] == 0


def test_a_go_that_does_not_page_is_an_error_not_a_miss(tiny, clock):
    def ignored(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k != "PageNumber"}  # every page is the first

    with tiny_client(tiny[1], clock) as client:
        client.post(day_voucher(vendor="shop13"))
    voucher = day_voucher()
    with _RewritingSession(ignored) as http, tiny_client(tiny[1], clock, session=http) as client:
        with pytest.raises(LedgerTransient, match="page 2 repeats rows"):
            client.find(voucher.external_ref, DAY)
        assert client.calls["GET /AccountTransactions"] == 3
        with pytest.raises(LedgerTransient, match="repeats rows"):
            client.post(voucher, send_to_ledger=False)
    assert len(vouchers(tiny)) == 1 and drafts(tiny) == []


def test_a_page_size_above_gos_maximum_is_refused_not_cut(tiny, clock):
    voucher = day_voucher()
    with make_client(tiny[1], clock=clock) as client:  # asks PageSize 5000 of a Go whose MaxPageSize is 2
        with pytest.raises(LedgerValidationError, match="MaxPageSize"):
            client.find(voucher.external_ref, DAY)
        with pytest.raises(LedgerValidationError, match="MaxPageSize"):
            client.post(voucher, send_to_ledger=False)
    assert drafts(tiny) == []
    with pytest.raises(ValueError, match="page_size"):
        make_client(tiny[1], page_size=20_001)
    with pytest.raises(ValueError, match="page_size"):
        make_client(tiny[1], page_size=0)
