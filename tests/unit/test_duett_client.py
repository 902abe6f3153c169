"""The Duett client against the sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import LedgerAuthError, LedgerRateLimited, LedgerTransient, LedgerValidationError
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.duett import DuettClient
from kassebro.sandbox.duett import DEMO_CLIENT_KEY, DEMO_INTEGRATION_KEY, create_app
from kassebro.sandbox.server import running

DAY = dt.date(2026, 3, 1)


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    requests.put(sandbox[1].url + "/_sandbox/lock", json={"locked_until": None}, timeout=5).raise_for_status()


def make_client(server, **options: Any) -> DuettClient:
    defaults = {"integration_key": DEMO_INTEGRATION_KEY, "client_key": DEMO_CLIENT_KEY, "timeout": 2}
    return DuettClient(server.url, retry_backoff=0.01, **{**defaults, **options})


@pytest.fixture
def client(sandbox):
    with make_client(sandbox[1]) as c:
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


def test_test_connection_names_the_client(client):
    assert client.test_connection() == "Connected to Duett client 'Demo Kiosk AS'"


def test_test_connection_mentions_voucher_control():
    with running(create_app(active_modules=["Regnskap", "Bilagsbehandling"])) as server, make_client(server) as c:
        assert "Bilagsbehandling is on" in c.test_connection()


@pytest.mark.parametrize(
    ("keys", "named", "other"),
    [
        ({"integration_key": "wrong-integration-secret"}, "X-Api-Integration-Key", "X-Api-Client-Key"),
        ({"client_key": "wrong-client-secret"}, "X-Api-Client-Key", "X-Api-Integration-Key"),
    ],
)
def test_wrong_key_names_the_header_not_the_value(sandbox, caplog, keys, named, other):
    caplog.set_level(logging.DEBUG)
    with make_client(sandbox[1], **keys) as bad, pytest.raises(LedgerAuthError) as caught:
        bad.test_connection()
    message = str(caught.value)
    assert named in message and other not in message
    secret = next(iter(keys.values()))
    assert secret not in message and secret not in caplog.text and secret not in repr(bad)


def test_post_and_read_back_equal(sandbox, client):
    voucher = day_voucher()
    posted = client.post(voucher)
    assert posted.postings == expected(voucher)
    assert posted.external_ref == voucher.external_ref and posted.date == DAY
    assert posted.number == str(client.voucher_number(voucher.external_ref, DAY))
    assert client.get(posted.ledger_id) == posted
    assert client.find(voucher.external_ref, DAY) == posted
    assert client.find(external_ref("shop12", dt.date(2026, 3, 2)), dt.date(2026, 3, 2)) is None
    sent = vouchers(sandbox)[0]
    assert sent["text"] == f"{voucher.description} [{voucher.external_ref}]"
    assert [line["vatCode"] for line in sent["lines"]] == [None, None, "3", "31", "33", "5", "6", None]


def test_lookups_are_cached(client):
    client.post(day_voucher())
    client.post(day_voucher(dt.date(2026, 3, 2)))
    assert client.calls["GET /Register/v2/Account"] == 1
    assert client.calls["GET /Register/v2/VatCode"] == 1


def test_warm_cache_post_is_duplicate_check_and_post(sandbox, tmp_path):
    path = tmp_path / "lookups" / "duett.json"
    with make_client(sandbox[1], cache=LookupCache(path)) as first:
        first.post(day_voucher())
    sandbox[0].state.calls.clear()
    voucher = day_voucher(dt.date(2026, 3, 2))
    with make_client(sandbox[1], cache=LookupCache(path), read_back_after_post=False) as second:
        assert second.find(voucher.external_ref, voucher.business_day) is None
        posted = second.post(voucher)
        made = [(c["method"], c["path"]) for c in sandbox[0].state.calls.list()]
        assert second.get(posted.ledger_id) == posted  # what was sent is what Duett holds
    assert made == [("GET", "/Voucher/v2"), ("GET", "/Voucher/v2"), ("POST", "/Voucher/v2")]
    text = path.read_text(encoding="utf-8")
    assert '"3000"' in text and DEMO_INTEGRATION_KEY not in text and DEMO_CLIENT_KEY not in text


def test_an_answer_without_lines_is_read_back_by_id(sandbox):
    session = requests.Session()

    def strip_lines(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "POST":
            answer = response.json()
            response._content = json.dumps({"id": answer["id"], "voucherNumber": answer["voucherNumber"]}).encode()

    session.hooks["response"].append(strip_lines)
    voucher = day_voucher()
    with make_client(sandbox[1], session=session) as c:
        posted = c.post(voucher)
        assert c.calls["GET /Voucher/v2/{id}"] == 1
    assert posted.postings == expected(voucher) and posted.external_ref == voucher.external_ref


def test_a_vat_code_missing_from_the_cache_is_looked_up_again(sandbox):
    cache = LookupCache()
    cache.put("vat_codes", {"3": "3"})  # cached before the register had the others
    with make_client(sandbox[1], cache=cache) as c:
        assert c.vat_code("3") == "3" and c.calls["GET /Register/v2/VatCode"] == 0
        assert c.vat_code("31") == "31" and c.calls["GET /Register/v2/VatCode"] == 1
        with pytest.raises(LedgerValidationError, match="VAT code 77"):
            c.vat_code("77")
        assert c.calls["GET /Register/v2/VatCode"] == 1  # read by this client: not again


def test_a_refused_post_clears_the_cache(sandbox, client):
    client.post(day_voucher())
    assert client.cache.table("accounts") and client.cache.table("vat_codes")
    requests.put(sandbox[1].url + "/_sandbox/lock", json={"locked_until": "2026-03-31"}, timeout=5)
    with pytest.raises(LedgerValidationError, match="locked"):
        client.post(day_voucher(dt.date(2026, 3, 5)))
    assert client.cache.table("accounts") == {} and client.cache.table("vat_codes") == {}


def test_voucher_numbers_are_deterministic_per_vendor_and_day(client):
    ref = external_ref("shop12", DAY)
    number = client.voucher_number(ref, DAY)
    assert number == client.voucher_number(ref, DAY)
    assert DuettClient(integration_key="i", client_key="c").voucher_number(ref, DAY) == number  # no state
    assert client.voucher_number(external_ref("shop12", DAY + dt.timedelta(days=1)), DAY + dt.timedelta(days=1)) == (
        number + 1
    )
    assert client.voucher_number(external_ref("shop12", DAY, 2), DAY) != number
    assert 90_000_000 <= number < 100_000_000 and number % 1000 == DAY.timetuple().tm_yday
    pinned = DuettClient(
        integration_key="i", client_key="c", series_start=500_000, series_size=10_000, vendor_slots={"shop12": 3}
    )
    assert pinned.voucher_number(ref, DAY) == 503_000 + 60


def test_duplicate_number_is_treated_as_already_posted(sandbox, client):
    first = client.post(day_voucher())
    with make_client(sandbox[1]) as other:  # a fresh client, no memory of the first post
        again = other.post(day_voucher())
    assert again == first
    assert other.calls["POST /Voucher/v2"] == 1
    assert other.cache.table("accounts")  # already posted is no refusal: the lookups stay
    assert len(vouchers(sandbox)) == 1


def test_duplicate_answered_409_is_treated_as_already_posted():
    with running(create_app(duplicate_status=409)) as server, make_client(server) as c:
        first = c.post(day_voucher())
        assert c.post(day_voucher()) == first


def test_number_held_by_another_reference_is_a_clear_error(sandbox):
    # Two vendors pinned to the same slot: the second is refused and not mistaken for posted.
    with make_client(sandbox[1], vendor_slots={"shop12": 7, "shop13": 7}) as c:
        c.post(day_voucher(vendor="shop12"))
        with pytest.raises(LedgerValidationError, match="vendor_slots"):
            c.post(day_voucher(vendor="shop13"))
    assert len(vouchers(sandbox)) == 1


def test_save_then_drop_then_post_again_gives_the_same_voucher(sandbox, client):
    voucher = day_voucher()
    client.resolve_accounts(line.account for line in voucher.lines)
    client.vat_code("3")
    add_fault(sandbox, kind="save_then_drop", path="/Voucher/v2", method="POST")
    with pytest.raises(LedgerTransient, match="look it up"):
        client.post(voucher)
    assert client.calls["POST /Voucher/v2"] == 1  # never retried
    again = client.post(voucher)  # refused as a duplicate number, then found
    assert again.postings == expected(voucher)
    assert client.find(voucher.external_ref, DAY) == again
    assert len(vouchers(sandbox)) == 1


def test_period_lock_is_a_validation_error(sandbox, client):
    requests.put(sandbox[1].url + "/_sandbox/lock", json={"locked_until": "2026-03-31"}, timeout=5)
    with pytest.raises(LedgerValidationError, match="locked until 2026-03-31") as caught:
        client.post(day_voucher())
    assert caught.value.status == 400
    assert set(caught.value.problem) >= {"type", "title", "status", "detail", "instance", "errors"}
    assert client.post(day_voucher(dt.date(2026, 4, 1))).date == dt.date(2026, 4, 1)


def test_validation_errors_carry_problem_details(client):
    with pytest.raises(LedgerValidationError, match="9999"):
        client.post(Voucher("shop12", DAY, "ref-y", "x", (VoucherLine("1920", 100), VoucherLine("9999", -100))))
    with pytest.raises(LedgerValidationError, match="VAT code 77"):
        client.post(Voucher("shop12", DAY, "ref-v", "x", (VoucherLine("1920", 100), VoucherLine("3000", -100, "77"))))
    zero = Voucher(
        "shop12", DAY, "ref-z", "x", (VoucherLine("1920", 100), VoucherLine("3900", 0), VoucherLine("7798", -100))
    )
    with pytest.raises(LedgerValidationError, match=r"lines\[1\].amountGross: The amount cannot be 0") as caught:
        client.post(zero)
    assert caught.value.problem["title"] == "One or more validation errors occurred."
    with pytest.raises(LedgerValidationError, match="no lines"):
        client.post(Voucher("shop12", DAY, "ref-e", "x", ()))


def test_rate_limit_and_server_errors(sandbox, client):
    add_fault(sandbox, kind="429", path="/system/v2/integration", seconds=7)
    with pytest.raises(LedgerRateLimited) as caught:
        client.test_connection()
    assert caught.value.retry_after == 7
    add_fault(sandbox, kind="500", path="/system/v2/integration")
    assert "Demo Kiosk AS" in client.test_connection()  # a GET is retried
    assert client.calls["GET /system/v2/integration"] == 3
    client.resolve_accounts(["1920", "1940", "3000", "3030", "3040", "3100", "3200", "7798"])
    client.vat_code("3")
    add_fault(sandbox, kind="500", path="/Voucher/v2", method="POST")
    with pytest.raises(LedgerTransient, match="outcome is unknown"):
        client.post(day_voucher())
    assert client.calls["POST /Voucher/v2"] == 1
    assert vouchers(sandbox) == []


def test_timeout_is_transient(sandbox):
    add_fault(sandbox, kind="delay", path="/Voucher/v2", method="POST", seconds=1.2)
    with make_client(sandbox[1], timeout=0.5) as slow:
        slow.resolve_accounts(line.account for line in day_voucher().lines)
        slow.vat_code("3")
        with pytest.raises(LedgerTransient, match="timed out"):
            slow.post(day_voucher())
        assert slow.calls["POST /Voucher/v2"] == 1
    # the server finishes the abandoned POST 1.2 s on: wait for it, or it lands in a later test
    deadline = time.monotonic() + 10
    while not any(
        (c["method"], c["path"]) == ("POST", "/Voucher/v2") and c.get("status") for c in sandbox[0].state.calls.list()
    ):
        assert time.monotonic() < deadline, "the delayed POST never finished"
        time.sleep(0.05)


def test_dropped_connection_on_a_get_is_retried(sandbox, client):
    add_fault(sandbox, kind="save_then_drop", path="/system/v2/integration")
    assert "Demo Kiosk AS" in client.test_connection()
    assert client.calls["GET /system/v2/integration"] == 2


def others_voucher(sandbox, day: dt.date, number: int = 1001) -> dict[str, Any]:
    """A voucher booked in Duett by someone else: Duett's own number, no kassebro reference."""
    body = {
        "voucherNumber": number,
        "voucherDate": day.isoformat(),
        "text": "Manuelt bilag",
        "lines": [
            {"accountNumber": "1920", "amountGross": "99.00"},
            {"accountNumber": "3000", "amountGross": "-99.00"},
        ],
    }
    headers = {"X-Api-Integration-Key": DEMO_INTEGRATION_KEY, "X-Api-Client-Key": DEMO_CLIENT_KEY}
    response = requests.post(sandbox[1].url + "/Voucher/v2", json=body, headers=headers, timeout=5)
    response.raise_for_status()
    return response.json()


def net_per_account(listed) -> dict[str, int]:
    totals: dict[str, int] = {}
    for voucher in listed:
        for account, amount, _ in voucher.postings:
            totals[account] = totals.get(account, 0) + amount
    return totals


def test_list_vouchers_is_the_range_end_exclusive_with_postings_as_posted(sandbox, client):
    before, first, second, end = (DAY + dt.timedelta(days=n) for n in (-1, 0, 1, 2))
    posted = {day: client.post(day_voucher(day)) for day in (before, first, second, end)}
    others_voucher(sandbox, second)
    client.calls.clear()
    listed = client.list_vouchers(first, end)
    assert client.calls["GET /Voucher/v2"] == 1
    assert [v.external_ref for v in listed] == [external_ref("shop12", first), external_ref("shop12", second), ""]
    assert listed[:2] == [posted[first], posted[second]]
    assert [v.postings for v in listed[:2]] == [expected(day_voucher(first)), expected(day_voucher(second))]
    assert listed[2].postings == (("1920", 9_900, None), ("3000", -9_900, None)) and listed[2].number == "1001"
    assert client.list_vouchers(first, first) == [] and client.list_vouchers(end, first) == []
    assert client.list_vouchers(first, end, include_non_posted=True) == listed  # Duett has no drafts to add
    deleted = next(v for v in sandbox[0].state.store.vouchers.values() if v["voucherNumber"] == 1001)
    deleted["show"] = False  # Duett's soft delete
    assert [v.external_ref for v in client.list_vouchers(first, end)] == [v.external_ref for v in listed[:2]]


def test_list_vouchers_over_new_year_asks_each_year(client):
    days = [dt.date(2025, 12, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
    for day in days:
        client.post(day_voucher(day))
    client.calls.clear()
    listed = client.list_vouchers(days[1], days[3])
    assert [v.date for v in listed] == days[1:3]
    assert client.calls["GET /Voucher/v2"] == 2  # filter[voucherYear][EQ] is required: one call per year


def test_a_list_answer_that_is_not_an_array_raises_rather_than_lose_vouchers(sandbox):
    session = requests.Session()

    def envelope(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "GET" and response.request.path_url.startswith("/Voucher/v2?"):
            response._content = json.dumps({"items": response.json(), "nextPage": None}).encode()

    session.hooks["response"].append(envelope)
    with make_client(sandbox[1], session=session) as c:
        c.post(day_voucher())
        with pytest.raises(LedgerValidationError, match="expected a JSON array"):
            c.list_vouchers(DAY, DAY + dt.timedelta(days=1))
        with pytest.raises(LedgerValidationError, match="expected a JSON array"):
            c.find(day_voucher().external_ref, DAY)  # not None: that would post the day twice


def test_reverse_posts_a_negated_counter_voucher_the_original_still_found(sandbox, client):
    voucher = day_voucher()
    original = client.post(voucher)
    on = DAY + dt.timedelta(days=3)
    reversal = client.reverse(original.ledger_id, on)
    assert reversal.external_ref == f"{voucher.external_ref}:reversal" and reversal.date == on
    assert reversal.postings == tuple((a, -amount, vat) for a, amount, vat in expected(voucher))
    assert int(reversal.number) == int(original.number) + 500
    assert client.find(voucher.external_ref, DAY) == original
    assert client.find(reversal.external_ref, on) == reversal == client.get(reversal.ledger_id)
    listed = client.list_vouchers(DAY, on + dt.timedelta(days=1))
    assert [v.external_ref for v in listed] == [voucher.external_ref, reversal.external_ref]
    assert set(net_per_account(listed).values()) == {0}
    stored = next(v for v in vouchers(sandbox) if v["id"] == reversal.ledger_id)
    assert stored["text"] == f"Reversering: {voucher.description} [{voucher.external_ref}:reversal]"
    assert [line["text"] for line in stored["lines"]][:2] == ["Reversering: Bankkort", "Reversering: Vipps"]
    assert [line["vatCode"] for line in stored["lines"]] == [None, None, "3", "31", "33", "5", "6", None]


def test_reverse_after_a_lost_answer_reverses_once(sandbox, client):
    original = client.post(day_voucher())
    add_fault(sandbox, kind="save_then_drop", path="/Voucher/v2", method="POST")
    with pytest.raises(LedgerTransient, match="outcome is unknown"):
        client.reverse(original.ledger_id, DAY)
    reversal = client.reverse(original.ledger_id, DAY)  # refused as a duplicate number, then found
    assert reversal.external_ref == f"{day_voucher().external_ref}:reversal"
    assert client.reverse(original.ledger_id, DAY + dt.timedelta(days=1)) == reversal  # same number that year
    assert client.calls["POST /Voucher/v2"] == 4  # the post, the dropped reversal, two refused
    assert len(vouchers(sandbox)) == 2
    assert set(net_per_account(client.list_vouchers(DAY, DAY + dt.timedelta(days=1))).values()) == {0}


def test_reverse_refuses_a_voucher_without_a_kassebro_reference(sandbox, client):
    theirs = others_voucher(sandbox, DAY)
    with pytest.raises(LedgerValidationError, match="no kassebro reference"):
        client.reverse(theirs["id"], DAY)
    with pytest.raises(LedgerValidationError, match="404"):
        client.reverse("00000000-0000-0000-0000-000000000000", DAY)
    assert len(vouchers(sandbox)) == 1


def test_reversal_numbers_are_the_days_own_plus_500(client):
    ref = external_ref("shop12", DAY)
    later = DAY + dt.timedelta(days=40)
    assert client.voucher_number(ref + ":reversal", later) == client.voucher_number(ref, DAY) + 500
    v2 = external_ref("shop12", DAY, 2)
    assert client.voucher_number(v2 + ":reversal", DAY) == client.voucher_number(v2, DAY) + 500
    assert client.voucher_number("kassebro:shop12:2026-02-30:reversal", DAY) % 1000 == DAY.timetuple().tm_yday


def test_reverse_without_read_back_returns_what_duett_holds(sandbox, client):
    original = client.post(day_voucher())
    with make_client(sandbox[1], read_back_after_post=False) as quick:
        reversal = quick.reverse(original.ledger_id, DAY)
        assert quick.calls["GET /Voucher/v2/{id}"] == 1 and quick.calls["POST /Voucher/v2"] == 1
    assert reversal == client.get(reversal.ledger_id)
