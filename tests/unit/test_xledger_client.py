"""The Xledger client against the Xledger sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import LedgerAuthError, LedgerRateLimited, LedgerTransient, LedgerValidationError
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.xledger import CREDITS_RETRY_AFTER, M_ADD_ITEMS, XledgerClient, kroner, ore
from kassebro.sandbox.server import running
from kassebro.sandbox.xledger import DEMO_TOKEN, create_app

DAY = dt.date(2026, 3, 1)
APIS_MD_NODE_KEYS = {"trRegNumber", "postedDate", "transactionSource", "account", "amount", "text", "extIdentifier"}


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()


def make_client(sandbox, token: str = DEMO_TOKEN, **kwargs: Any) -> XledgerClient:
    return XledgerClient(sandbox[1].url, token, **{"timeout": 5, "retry_backoff": 0.01, **kwargs})


@pytest.fixture
def client(sandbox):
    with make_client(sandbox) as c:
        yield c


def fault(sandbox, **body: Any) -> None:
    requests.post(sandbox[1].url + "/_sandbox/faults", json=body, timeout=5).raise_for_status()


def day_voucher(vendor: str = "12", day: dt.date = DAY) -> Voucher:
    return Voucher(
        vendor_id=vendor,
        business_day=day,
        external_ref=external_ref(vendor, day),
        description="Dagsoppgjør kasse 12",
        lines=(
            VoucherLine("1920", 125_000, None, "Kort", department="1"),
            VoucherLine("1900", 23_050),
            VoucherLine("3000", -100_000, "3", "Salg 25%"),
            VoucherLine("3030", -34_500, "31", "Salg 15%"),
            VoucherLine("3040", -11_200, "33"),
            VoucherLine("3100", -2_000, "5"),
            VoucherLine("7798", -350, "0", "Øreavrunding"),
        ),
    )


def expected(voucher: Voucher) -> list[tuple[str, int, str | None]]:
    return sorted(
        (line.account, line.amount, None if line.vat_code == "0" else line.vat_code) for line in voucher.lines
    )


def calls(sandbox) -> list[dict[str, Any]]:
    return requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]


def test_amounts_in_kroner_with_two_decimals():
    assert [kroner(a) for a in (125_000, -125_000, 5, -5, 0)] == ["1250.00", "-1250.00", "0.05", "-0.05", "0.00"]
    assert [ore(s) for s in ("1250.00", "-0.05", "12.5", 3)] == [125_000, -5, 1250, 300]


def test_rendered_nodes_have_the_documented_shape(client):
    nodes = client.render(day_voucher())
    for node in nodes:
        assert set(node) >= APIS_MD_NODE_KEYS
        assert node["transactionSource"] == {"code": "GL"} and node["trRegNumber"] == 20260301
        assert node["extIdentifier"] == "kassebro:12:2026-03-01"
    assert nodes[0]["amount"] == "1250.00" and nodes[0]["glObject1"] == {"code": "1"} and "taxRule" not in nodes[0]
    assert nodes[2]["amount"] == "-1000.00" and nodes[2]["taxRule"] == {"code": "2"}
    assert [n.get("taxRule") for n in nodes[3:]] == [{"code": "21"}, {"code": "22"}, {"code": "5"}, None]


def test_test_connection(client):
    assert client.test_connection() == "Connected to Xledger (Query)"


def test_post_reads_back_equal_per_account_and_vat_code(client, sandbox):
    voucher = day_voucher()
    posted = client.post(voucher)
    assert sorted(posted.postings) == expected(voucher)
    assert posted.external_ref == voucher.external_ref and posted.date == DAY and posted.number == "20260301"
    assert client.find(voucher.external_ref, DAY) == posted
    assert client.get(posted.ledger_id) == posted
    assert client.find(external_ref("12", DAY, 2), DAY) is None
    assert client.find(external_ref("13", DAY), DAY) is None


def test_lookups_are_cached(client, sandbox):
    client.post(day_voucher("1"))
    client.post(day_voucher("2"))
    assert client.calls["query accounts"] == 1 and client.calls["query objectValues"] == 1


def test_warm_cache_post_is_duplicate_check_and_import(sandbox, tmp_path):
    path = tmp_path / "lookups" / "xledger.json"
    with make_client(sandbox, cache=LookupCache(path)) as first:
        first.post(day_voucher("1"))
    sandbox[0].state.calls.clear()
    voucher = day_voucher("2")
    with make_client(sandbox, cache=LookupCache(path), read_back_after_post=False) as second:
        assert second.find(voucher.external_ref, DAY) is None
        posted = second.post(voucher)
        made = [(c["method"], c["path"]) for c in sandbox[0].state.calls.list()]
        assert posted == second.find(voucher.external_ref, DAY)  # what was sent is what Xledger holds
    assert made == [("POST", "/glImportItems"), ("POST", "/addGLImportItems")]
    text = path.read_text(encoding="utf-8")
    assert '"3000"' in text and DEMO_TOKEN not in text


def test_post_trusts_only_a_fresh_find_of_its_own(client, sandbox, monkeypatch):
    voucher = day_voucher()
    assert client.find(voucher.external_ref, DAY) is None
    with make_client(sandbox) as other:
        imported = other.post(voucher)  # another process imports it meanwhile
    monkeypatch.setattr("kassebro.ledgers.xledger.ABSENT_TRUST_SECONDS", 0.0)
    assert client.post(voucher) == imported  # find() is too old to trust: looked up, not imported again
    assert len(sandbox[0].state.store.items) == len(voucher.lines)
    assert client.calls["query glImportItems"] == 2 and client.calls["mutation addGLImportItems"] == 0


def test_a_new_account_missing_from_the_cache_is_looked_up_again(sandbox):
    cache = LookupCache()
    cache.put("accounts", {"1920": 1})  # a chart cached before the others were made
    cache.put("tax_rules", {"2": 1})
    with make_client(sandbox, cache=cache) as c:
        c.render(day_voucher())
        assert c.calls["query accounts"] == 1 and c.calls["query objectValues"] == 1
        assert c.calls["query objectKinds"] == 1
        with pytest.raises(LedgerValidationError, match="not in the Xledger chart: 1234"):
            c.render(Voucher("12", DAY, "r", "x", (VoucherLine("1234", 100), VoucherLine("3000", -100, "3"))))
        assert c.calls["query accounts"] == 1  # fetched by this client: not again


def test_a_refused_post_clears_the_cache(client):
    client.post(day_voucher())
    assert client.cache.table("accounts") and client.cache.table("tax_rules")
    with pytest.raises(LedgerValidationError):
        client.post(Voucher("12", DAY, "r", "x", (VoucherLine("1234", 100), VoucherLine("3000", -100, "3"))))
    assert client.cache.table("accounts") == {} and client.cache.table("tax_rules") == {}


def test_post_looks_up_first_and_does_not_import_twice(client, sandbox):
    voucher = day_voucher()
    first = client.post(voucher)
    again = client.post(voucher)
    assert again == first
    assert client.calls["mutation addGLImportItems"] == 1
    other = Voucher("12", DAY, voucher.external_ref, "x", (VoucherLine("1920", 100), VoucherLine("3000", -100, "3")))
    with pytest.raises(LedgerValidationError, match="already imported"):
        client.post(other)


def test_more_than_500_lines_are_split_over_calls(client, sandbox):
    lines = [VoucherLine("3000", -100, "3") for _ in range(1100)] + [VoucherLine("1920", 110_000)]
    voucher = Voucher("12", DAY, external_ref("12", DAY), "big", tuple(lines))
    posted = client.post(voucher)
    assert client.calls["mutation addGLImportItems"] == 3
    sizes = [len(c["body"]["variables"]["inputs"]) for c in calls(sandbox) if c["path"] == "/addGLImportItems"]
    assert sizes == [500, 500, 101]
    exts = [i["extIdentifier"] for i in sandbox[0].state.store.items]
    assert exts[0] == f"{voucher.external_ref}#1/1101" and exts[-1] == f"{voucher.external_ref}#1101/1101"
    assert sorted(posted.postings) == [("1920", 110_000, None), ("3000", -110_000, "3")]


def test_split_import_cut_short_is_found_incomplete_and_completed(client, sandbox):
    lines = [VoucherLine("3000", -100, "3") for _ in range(600)] + [VoucherLine("1920", 60_000)]
    voucher = Voucher("12", DAY, external_ref("12", DAY), "big", tuple(lines))
    client.render(voucher)  # warm the caches so the fault hits the second import call
    fault(sandbox, kind="500", path="/addGLImportItems")
    with pytest.raises(LedgerTransient, match="0 of 2 calls done"):
        client.post(voucher)
    # the first call failed: nothing there; now let the second fail
    assert client.find(voucher.external_ref, DAY) is None
    original = client._graphql_locked
    count = {"n": 0}

    def second_fails(query, variables):
        if query.lstrip().startswith("mutation"):
            count["n"] += 1
            if count["n"] == 2:
                sandbox[0].state.faults.add("500", "/addGLImportItems")
        return original(query, variables)

    client._graphql_locked = second_fails  # type: ignore[method-assign]
    with pytest.raises(LedgerTransient, match="1 of 2 calls done"):
        client.post(voucher)
    with pytest.raises(LedgerTransient, match="only in part"):
        client.find(voucher.external_ref, DAY)
    client._graphql_locked = original  # type: ignore[method-assign]
    posted = client.post(voucher)
    assert sorted(posted.postings) == [("1920", 60_000, None), ("3000", -60_000, "3")]
    assert len(sandbox[0].state.store.items) == 601


def test_save_then_drop_then_find_finds_it(client, sandbox):
    voucher = day_voucher()
    client.render(voucher)
    fault(sandbox, kind="save_then_drop", path="/addGLImportItems")
    with pytest.raises(LedgerTransient, match="outcome is unknown"):
        client.post(voucher)
    found = client.find(voucher.external_ref, DAY)
    assert found is not None and sorted(found.postings) == expected(voucher)
    assert client.calls["mutation addGLImportItems"] == 1  # never retried
    assert client.post(voucher) == found  # looking up first: still exactly once
    assert len(sandbox[0].state.store.items) == len(voucher.lines)


def test_500_on_query_is_retried_on_mutation_transient(client, sandbox):
    fault(sandbox, kind="500", path="/glImportItems")
    assert client.find("kassebro:x:2026-03-01", DAY) is None
    assert client.calls["query glImportItems"] == 2
    voucher = day_voucher()
    client.render(voucher)
    fault(sandbox, kind="500", path="/addGLImportItems")
    with pytest.raises(LedgerTransient):
        client.post(voucher)


def test_timeout_is_transient(sandbox):
    with make_client(sandbox, timeout=0.3, get_retries=0) as slow:
        fault(sandbox, kind="delay", path="/__typename", seconds=1)
        with pytest.raises(LedgerTransient, match="timed out"):
            slow.test_connection()


def test_errors_in_200_are_validation_errors_with_xledgers_message(client, sandbox):
    voucher = day_voucher()
    nodes = client.render(voucher)
    nodes[0]["account"] = {"code": "1234"}
    with pytest.raises(LedgerValidationError, match="Account with code '1234' does not exist"):
        client.graphql(M_ADD_ITEMS, {"inputs": [{"node": n} for n in nodes]})
    bad = Voucher("12", DAY, "r", "x", (VoucherLine("1234", 100), VoucherLine("3000", -100, "3")))
    with pytest.raises(LedgerValidationError, match="accounts not in the Xledger chart: 1234"):
        client.post(bad)
    unmapped = Voucher("12", DAY, "r", "x", (VoucherLine("1920", 100), VoucherLine("3000", -100, "52")))
    with pytest.raises(LedgerValidationError, match="no Xledger tax rule mapped"):
        client.post(unmapped)


def test_tax_rule_missing_in_the_company_is_refused(sandbox):
    with make_client(sandbox, tax_rules={"3": "9"}) as c, pytest.raises(LedgerValidationError, match="configured.*9"):
        c.post(Voucher("12", DAY, "r", "x", (VoucherLine("1920", 100), VoucherLine("3000", -100, "3"))))


def test_http_429_is_rate_limited_with_retry_after(client, sandbox):
    voucher = day_voucher()
    client.render(voucher)
    fault(sandbox, kind="429", path="/addGLImportItems", seconds=7)
    with pytest.raises(LedgerRateLimited) as info:
        client.post(voucher)
    assert info.value.retry_after == 7
    fault(sandbox, kind="429", path="/glImportItems", seconds=0)
    assert client.find(voucher.external_ref, DAY) is None  # a short wait on a query is waited out


def test_credit_and_burst_limits_in_200_are_rate_limited(sandbox):
    with make_client(sandbox, max_rate_wait=0) as c:
        requests.post(sandbox[1].url + "/_sandbox/limits", json={"credits": 0}, timeout=5)
        with pytest.raises(LedgerRateLimited, match="Insufficient credits") as info:
            c.test_connection()
        assert info.value.retry_after == CREDITS_RETRY_AFTER
        requests.post(sandbox[1].url + "/_sandbox/limits", json={"credits": None, "burst_per_second": 1}, timeout=5)
        c.test_connection()
        with pytest.raises(LedgerRateLimited, match="Burst") as info:
            c.test_connection()
        assert info.value.retry_after == 1


def test_burst_on_a_query_is_waited_out(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/limits", json={"burst_per_second": 1}, timeout=5)
    with make_client(sandbox) as c:
        c.test_connection()
        assert c.test_connection().startswith("Connected")
        assert c.calls["query __typename"] == 3


@pytest.mark.parametrize("token", ["wrong-token", "two words"])
def test_bad_token_is_an_auth_error_naming_the_token_not_its_value(sandbox, token):
    with make_client(sandbox, token=token) as c:
        with pytest.raises(LedgerAuthError, match="Xledger API token") as info:
            c.test_connection()
        assert token not in str(info.value) and token not in repr(c)


def test_get_refuses_a_non_id(client):
    with pytest.raises(LedgerValidationError):
        client.get("abc")
    with pytest.raises(LedgerValidationError, match="no GL import item"):
        client.get("1")


def others_import(sandbox, day: dt.date, amount: str = "99.00") -> None:
    """Two lines imported by someone else: no extIdentifier, grouped by trRegNumber and postedDate."""
    nodes = [
        {
            "trRegNumber": 777,
            "postedDate": day.isoformat(),
            "transactionSource": {"code": "GL"},
            "account": {"code": code},
            "amount": value,
        }
        for code, value in (("1920", amount), ("3000", f"-{amount}"))
    ]
    with make_client(sandbox) as other:
        other.graphql(M_ADD_ITEMS, {"inputs": [{"node": n} for n in nodes]})


def net_per_account(vouchers) -> dict[str, int]:
    totals: dict[str, int] = {}
    for voucher in vouchers:
        for account, amount, _ in voucher.postings:
            totals[account] = totals.get(account, 0) + amount
    return totals


def test_list_vouchers_is_the_range_end_exclusive_with_postings_as_posted(client, sandbox):
    before, first, second, end = (DAY + dt.timedelta(days=n) for n in (-1, 0, 1, 2))
    for day in (before, first, second, end):
        client.post(day_voucher(day=day))
    lines = [VoucherLine("3000", -100, "3") for _ in range(1100)] + [VoucherLine("1920", 110_000)]
    big = Voucher("13", second, external_ref("13", second), "big", tuple(lines))  # 1101 items: 3 pages
    client.post(big)
    others_import(sandbox, first)
    client.calls.clear()
    listed = client.list_vouchers(first, end)
    assert client.calls["query glImportItems"] == 3  # 7 + 7 + 1101 + 2 items, pages of 500
    by_ref = {v.external_ref: v for v in listed}
    assert set(by_ref) == {external_ref("12", first), external_ref("12", second), big.external_ref, ""}
    for day in (first, second):
        voucher = day_voucher(day=day)
        assert sorted(by_ref[voucher.external_ref].postings) == expected(voucher)
        assert by_ref[voucher.external_ref] == client.find(voucher.external_ref, day)
    assert sorted(by_ref[big.external_ref].postings) == [("1920", 110_000, None), ("3000", -110_000, "3")]
    assert sorted(by_ref[""].postings) == [("1920", 9_900, None), ("3000", -9_900, None)]
    assert by_ref[""].date == first
    assert [v.date for v in listed] == sorted(v.date for v in listed)
    assert client.list_vouchers(first, first) == [] and client.list_vouchers(end, first) == []
    assert client.list_vouchers(first, end, include_non_posted=True) == listed  # imports are staged alike


def test_reverse_imports_a_negated_counter_voucher_the_original_still_found(client, sandbox):
    voucher = day_voucher()
    original = client.post(voucher)
    on = DAY + dt.timedelta(days=3)
    reversal = client.reverse(original.ledger_id, on)
    assert reversal.external_ref == f"{voucher.external_ref}:reversal" and reversal.date == on
    assert sorted(reversal.postings) == sorted((a, -amount, vat) for a, amount, vat in expected(voucher))
    assert client.find(voucher.external_ref, DAY) == original
    assert client.get(reversal.ledger_id) == reversal
    listed = client.list_vouchers(DAY, on + dt.timedelta(days=1))
    assert {v.external_ref for v in listed} == {voucher.external_ref, reversal.external_ref}
    assert set(net_per_account(listed).values()) == {0}
    items = [i for i in sandbox[0].state.store.items if i["extIdentifier"] == reversal.external_ref]
    assert len(items) == len(voucher.lines) and {i["trRegNumber"] for i in items} == {20260304}
    card = next(i for i in items if i["account"] == {"code": "1920"})
    assert card["glObject1"] == {"code": "1"} and card["amount"] == "-1250.00" and card["text"] == "Reversering: Kort"
    assert [i.get("taxRule") for i in items][2:] == [{"code": "2"}, {"code": "21"}, {"code": "22"}, {"code": "5"}, None]
    assert client.reverse(original.ledger_id, on) == reversal  # asked again: looked up, not imported twice
    assert client.calls["mutation addGLImportItems"] == 2


def test_reverse_after_a_lost_answer_reverses_once(client, sandbox):
    original = client.post(day_voucher())
    fault(sandbox, kind="save_then_drop", path="/addGLImportItems", method="POST")
    with pytest.raises(LedgerTransient, match="outcome is unknown.*reverse\\(\\) again"):
        client.reverse(original.ledger_id, DAY)
    reversal = client.reverse(original.ledger_id, DAY)
    assert client.calls["mutation addGLImportItems"] == 2  # the post and the dropped reversal, nothing after
    exts = [i["extIdentifier"] for i in sandbox[0].state.store.items]
    assert exts.count(reversal.external_ref) == len(day_voucher().lines)
    assert set(net_per_account(client.list_vouchers(DAY, DAY + dt.timedelta(days=1))).values()) == {0}


def test_reverse_of_a_split_voucher_cut_short_is_completed(client, sandbox):
    lines = [VoucherLine("3000", -100, "3") for _ in range(600)] + [VoucherLine("1920", 60_000)]
    voucher = Voucher("12", DAY, external_ref("12", DAY), "big", tuple(lines))
    original = client.post(voucher)
    original_mutation = client._graphql_locked
    count = {"n": 0}

    def second_fails(query, variables):
        if query.lstrip().startswith("mutation"):
            count["n"] += 1
            if count["n"] == 2:
                sandbox[0].state.faults.add("500", "/addGLImportItems")
        return original_mutation(query, variables)

    client._graphql_locked = second_fails  # type: ignore[method-assign]
    with pytest.raises(LedgerTransient, match="1 of 2 calls done"):
        client.reverse(original.ledger_id, DAY)
    client._graphql_locked = original_mutation  # type: ignore[method-assign]
    reversal = client.reverse(original.ledger_id, DAY)
    assert sorted(reversal.postings) == [("1920", -60_000, None), ("3000", 60_000, "3")]
    exts = [i["extIdentifier"] for i in sandbox[0].state.store.items if ":reversal" in i["extIdentifier"]]
    assert len(exts) == len(set(exts)) == 601 and exts[0] == f"{voucher.external_ref}:reversal#1/601"
    assert client.find(voucher.external_ref, DAY) == original


def test_reverse_refuses_an_import_without_extidentifier_and_a_non_id(client, sandbox):
    others_import(sandbox, DAY)
    (theirs,) = client.list_vouchers(DAY, DAY + dt.timedelta(days=1))
    with pytest.raises(LedgerValidationError, match="no extIdentifier"):
        client.reverse(theirs.ledger_id, DAY)
    with pytest.raises(LedgerValidationError, match="not an Xledger dbId"):
        client.reverse("abc", DAY)
    assert len(sandbox[0].state.store.items) == 2


def test_reverse_without_read_back_returns_what_xledger_holds(client, sandbox):
    original = client.post(day_voucher())
    with make_client(sandbox, read_back_after_post=False) as quick:
        reversal = quick.reverse(original.ledger_id, DAY)
        assert quick.calls["query glImportItems"] == 2 and quick.calls["mutation addGLImportItems"] == 1
    assert reversal == client.find(f"{original.external_ref}:reversal", DAY)
