"""The Tripletex client against the sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
import sys
import time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import (
    LedgerAuthError,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.tripletex import TripletexClient
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, create_app

# The vendored official spec (tests/contracts/specs, see ORIGIN.md): a missing file fails, never skips.
SPEC_PATH = Path(__file__).resolve().parents[1] / "contracts" / "specs" / "tripletex" / "openapi.json"

DAY = dt.date(2026, 3, 1)


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


@pytest.fixture
def client(sandbox):
    with TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, timeout=5, retry_backoff=0.01) as c:
        yield c


def add_fault(sandbox, **fault: Any) -> None:
    requests.post(sandbox[1].url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def day_voucher(day: dt.date = DAY, vendor: str = "shop12", **extra_lines: Any) -> Voucher:
    lines = (
        VoucherLine("1920", 1_250_00, None, "Bankkort", department="1"),
        VoucherLine("1940", 250_50, None, "Vipps", department="1"),
        VoucherLine("3000", -1_250_00, "3", "Salg 25 %", department="1"),
        VoucherLine("3030", -250_00, "31", "Salg 15 %", department="1", project="100"),
        VoucherLine("7798", -50, None, "Øreavrunding", department="1"),
    )
    return Voucher(
        vendor_id=vendor,
        business_day=day,
        external_ref=external_ref(vendor, day),
        description=f"POS dagsoppgjør {vendor} {day}",
        lines=lines,
    )


def expected(voucher: Voucher) -> tuple[tuple[str, int, str | None], ...]:
    return tuple((line.account, line.amount, line.vat_code) for line in voucher.lines)


# ---- posting and reading back ---------------------------------------------------------------


def test_post_reads_back_what_was_sent(client, store):
    voucher = day_voucher()
    posted = client.post(voucher)
    assert posted.postings == expected(voucher)
    assert posted.in_ledger and posted.number == "1-2026"
    assert posted.external_ref == voucher.external_ref and posted.date == DAY
    assert sum(amount for _, amount, _ in posted.postings) == 0

    # The ledger also holds the VAT rows it generated, which the read-back leaves out.
    stored = store.voucher(int(posted.ledger_id))
    assert len([p for p in stored.postings if p.row == 0]) == 2

    assert client.get(posted.ledger_id) == posted
    assert client.find(voucher.external_ref, DAY) == posted
    assert client.find("kassebro:shop12:1999-01-01", DAY) is None


def test_lookups_are_cached(client):
    client.post(day_voucher(DAY))
    client.post(day_voucher(DAY + dt.timedelta(days=1)))
    assert client.calls["GET /ledger/account"] == 1
    assert client.calls["GET /ledger/vatType"] == 1
    assert client.calls["GET /department"] == 1
    assert client.calls["GET /project"] == 1
    assert client.calls["POST /token/session/:create"] == 1
    assert client.calls["POST /ledger/voucher"] == 2
    assert client.calls["GET /ledger/voucher/{id}"] == 2  # the read-back
    assert client.account_id("3000") == client.resolve_accounts(["3000"])["3000"] != 3000
    assert client.vat_type_id("3") != 3
    assert client.calls["GET /ledger/account"] == 1


def test_not_sent_to_ledger_stays_non_posted(client, sandbox):
    posted = client.post(day_voucher(), send_to_ledger=False)
    assert not posted.in_ledger and posted.number == ""
    assert client.find(day_voucher().external_ref, DAY) == posted
    assert client.list_vouchers(DAY, DAY + dt.timedelta(days=1)) == []
    [waiting] = client.list_vouchers(DAY, DAY + dt.timedelta(days=1), include_non_posted=True)
    assert waiting.ledger_id == posted.ledger_id
    assert client.send_to_ledger(posted.ledger_id).in_ledger


def test_test_connection(client):
    assert client.test_connection() == "Connection ok"


def test_reverse_and_list(client):
    posted = client.post(day_voucher())
    reversal = client.reverse(posted.ledger_id, DAY + dt.timedelta(days=3))
    assert reversal.postings == tuple((a, -amount, vat) for a, amount, vat in posted.postings)
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=7))
    assert [v.ledger_id for v in listed] == [posted.ledger_id, reversal.ledger_id]
    assert client.list_vouchers(DAY, DAY) == []  # dateTo is exclusive
    # A reversed voucher still counts as found: never post a day twice on a guess.
    assert client.find(posted.external_ref, DAY).ledger_id == posted.ledger_id
    client.delete(reversal.ledger_id)
    assert [v.ledger_id for v in client.list_vouchers(DAY, DAY + dt.timedelta(days=7))] == [posted.ledger_id]


def test_reverse_after_a_lost_answer_reverses_once(client, sandbox):
    posted = client.post(day_voucher())
    sandbox[0].state.faults.add("save_then_drop", path="/ledger/voucher/*/:reverse", method="PUT")
    with pytest.raises(LedgerTransient):
        client.reverse(posted.ledger_id, DAY)
    reversal = client.reverse(posted.ledger_id, DAY)  # the retry finds the reversal through the link
    assert [v.ledger_id for v in client.list_vouchers(DAY, DAY + dt.timedelta(days=1))] == [
        posted.ledger_id,
        reversal.ledger_id,
    ]
    puts = [c for c in sandbox[0].state.calls.list() if c["method"] == "PUT" and c["path"].endswith(":reverse")]
    assert len(puts) == 1


# ---- the lookup cache and calls per voucher -------------------------------------------------


def new_client(sandbox, **kwargs: Any) -> TripletexClient:
    return TripletexClient(
        sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, timeout=5, retry_backoff=0.01, **kwargs
    )


def sandbox_calls(sandbox) -> list[tuple[str, str]]:
    """The sandbox's call log in order, voucher ids as {id}."""
    return [(c["method"], re.sub(r"/\d+$", "/{id}", c["path"])) for c in sandbox[0].state.calls.list()]


LOOKUPS = ("GET /ledger/account", "GET /ledger/vatType", "GET /department", "GET /project")


def test_a_file_cache_spares_the_next_client_every_lookup(sandbox, store, tmp_path):
    path = tmp_path / "lookups" / "tripletex.json"
    first = new_client(sandbox, cache=LookupCache(path))
    first.post(day_voucher(DAY))
    assert [first.calls[k] for k in LOOKUPS] == [1, 1, 1, 1]

    second = new_client(sandbox, cache=LookupCache(path))  # as a task in another process would
    voucher = day_voucher(DAY + dt.timedelta(days=1))
    posted = second.post(voucher)
    assert posted.postings == expected(voucher)
    assert [second.calls[k] for k in LOOKUPS] == [0, 0, 0, 0]
    assert len(store.list_vouchers()) == 2

    # The account info kept in JSON still drives the vatLocked check, without a call.
    locked = Voucher("shop12", DAY, "ref", "x", (VoucherLine("1920", 100_00), VoucherLine("3000", -100_00, "31")))
    third = new_client(sandbox, cache=LookupCache(path))
    with pytest.raises(LedgerValidationError, match="locked to VAT code 3"):
        third.render(locked)
    assert third.call_count == 0

    text = path.read_text(encoding="utf-8")
    for secret in (DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, first._session_token.reveal()):
        assert secret not in text


def test_a_refused_post_clears_the_cache(sandbox, store, tmp_path):
    cache = LookupCache(tmp_path / "lookups.json")
    client = new_client(sandbox, cache=cache)
    client.post(day_voucher())
    assert cache.table("accounts") and cache.path.exists()
    # 1500 is a customer ledger account: Tripletex refuses a posting without a customer.
    lines = (VoucherLine("1500", 100_00), VoucherLine("3010", -100_00, "3"))
    with pytest.raises(LedgerValidationError, match="Kunde mangler"):
        client.post(Voucher("shop12", DAY, "ref-2", "Kredittsalg", lines))
    assert cache.table("accounts") == {} and cache.table("vat_types") == {}
    assert not cache.path.exists()
    client.post(day_voucher(vendor="other"))  # the chart is read afresh
    assert client.calls["GET /ledger/account"] == 3


@pytest.mark.parametrize("read_back", [False, True])
def test_calls_per_voucher_with_a_warm_cache(sandbox, store, read_back):
    cache = LookupCache()
    new_client(sandbox, cache=cache).render(day_voucher())  # another client warmed the cache
    sandbox[0].state.calls.clear()

    client = new_client(sandbox, cache=cache, read_back_after_post=read_back)
    voucher = day_voucher()
    assert client.find(voucher.external_ref, DAY) is None
    posted = client.post(voucher)

    sequence = [
        ("POST", "/token/session/:create"),
        ("GET", "/ledger/voucher/>externalVoucherNumber"),
        ("POST", "/ledger/voucher"),
    ]
    # The spec declares no `fields` on POST /ledger/voucher: its answer has postings as
    # references, so a read-back costs one GET.
    assert sandbox_calls(sandbox) == sequence + ([("GET", "/ledger/voucher/{id}")] if read_back else [])
    assert client.call_count == len(sequence) + read_back
    [sent] = [c for c in sandbox[0].state.calls.list() if c["method"] == "POST" and c["path"] == "/ledger/voucher"]
    assert sent["query"] == "sendToLedger=true"

    assert posted.postings == expected(voucher)
    assert posted.in_ledger and posted.number == "1-2026" and posted.external_ref == voucher.external_ref
    # What was built from the sent body is what the ledger holds.
    assert client.get(posted.ledger_id) == posted
    assert [v.id for v in store.list_vouchers()] == [int(posted.ledger_id)]


# ---- the POST body against the spec ---------------------------------------------------------
# ---- the POST body against the spec ---------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    with open(SPEC_PATH, encoding="utf-8", errors="replace") as fh:
        return json.load(fh)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def read_only_fields(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields we send that the spec marks readOnly (Tripletex ignores or rejects them)."""
    schema = resolve(schema)
    found = []
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key, value in instance.items():
            prop = props.get(key, {})
            if prop.get("readOnly"):
                found.append(f"{path}{key}")
            found += read_only_fields(value, prop, f"{path}{key}.")
    elif isinstance(instance, list):
        for item in instance:
            found += read_only_fields(item, schema.get("items", {}), path)
    return found


def test_sent_body_matches_the_spec_voucher_schema(client, sandbox):
    voucher = day_voucher()
    client.post(voucher)
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).text
    [sent] = [
        c["body"]
        for c in json.loads(calls, parse_float=Decimal)["calls"]
        if c["method"] == "POST" and c["path"] == "/ledger/voucher"
    ]
    assert sent == client.render(voucher)
    operation = spec()["paths"]["/ledger/voucher"]["post"]
    schema_ref = next(iter(operation["requestBody"]["content"].values()))["schema"]
    validator = jsonschema.Draft7Validator({**schema_ref, "components": spec()["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(sent)]
    assert not errors
    assert read_only_fields(sent, schema_ref) == []
    # Amounts went over the wire with exactly two decimals.
    assert '"amountGross":-1250.00' in calls and '"amountGross":-0.50' in calls
    assert [p["row"] for p in sent["postings"]] == [1, 2, 3, 4, 5]


# ---- errors ---------------------------------------------------------------------------------


def test_wrong_employee_token_is_an_auth_error_without_the_token(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "employee-token-s3cr3t-value"
    bad = TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, secret, retry_backoff=0.01)
    with pytest.raises(LedgerAuthError) as info:
        bad.test_connection()
    message = str(info.value)
    assert "employee token" in message and secret not in message
    assert secret not in repr(bad) and DEMO_CONSUMER_TOKEN not in repr(bad)
    assert secret not in caplog.text

    bad = TripletexClient(sandbox[1].url, "consumer-s3cr3t", DEMO_EMPLOYEE_TOKEN)
    with pytest.raises(LedgerAuthError, match="consumer token") as info:
        bad.post(day_voucher())
    assert "consumer-s3cr3t" not in str(info.value)


def test_no_token_in_logs_or_errors_on_a_full_run(client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    client.post(day_voucher())
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="500")
    with pytest.raises(LedgerTransient) as info:
        client.post(day_voucher(vendor="other"))
    session_token = client._session_token.reveal()
    for text in (caplog.text, str(info.value), repr(client), repr(vars(client))):
        for secret in (DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, session_token):
            assert secret not in text


def test_ledger_refusal_is_a_validation_error_with_the_details(client, store):
    # 1500 is a customer ledger account: Tripletex wants a customer on the posting.
    lines = (VoucherLine("1500", 100_00), VoucherLine("3010", -100_00, "3"))
    voucher = Voucher("shop12", DAY, external_ref("shop12", DAY), "Kredittsalg", lines)
    with pytest.raises(LedgerValidationError) as info:
        client.post(voucher)
    message = str(info.value)
    assert "422" in message and "postings.customer.id: Kunde mangler." in message
    assert "request id" in message
    assert store.list_vouchers() == []


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (VoucherLine("3999", -100_00, "3"), "3999"),
        (VoucherLine("1920:10001", -100_00), "1920:10001"),
        (VoucherLine("3000", -100_00, "31"), "locked to VAT code 3"),
        (VoucherLine("3000", -100_00, None), "locked to VAT code 3"),
        (VoucherLine("3010", -100_00, "99"), "VAT codes unknown to Tripletex: 99"),
        (VoucherLine("3010", -100_00, "3", department="42"), "department 42"),
        (VoucherLine("3010", -100_00, "3", project="999"), "project 999"),
    ],
)
def test_bad_mapping_is_refused_before_posting(client, line, words):
    voucher = Voucher("shop12", DAY, "ref", "x", (VoucherLine("1920", 100_00), line))
    with pytest.raises(LedgerValidationError, match=words):
        client.post(voucher)
    assert client.calls["POST /ledger/voucher"] == 0


def test_rate_limit_is_waited_out_then_succeeds(client, sandbox):
    client.test_connection()
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="429", seconds=1)
    start = time.monotonic()
    posted = client.post(day_voucher())
    assert time.monotonic() - start >= 1.0
    assert posted.postings == expected(day_voucher())
    assert client.calls["POST /ledger/voucher"] == 2


def test_long_rate_limit_raises_with_retry_after(sandbox):
    client = TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, max_rate_wait=5)
    add_fault(sandbox, path="/ledger/account", kind="429", seconds=120)
    with pytest.raises(LedgerRateLimited) as info:
        client.resolve_accounts(["1920"])
    assert info.value.retry_after == 120


def test_server_error_on_post_is_transient_and_not_retried(client, sandbox, store):
    client.resolve_accounts(["1920"])
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="500", times=5)
    with pytest.raises(LedgerTransient, match="look it up first"):
        client.post(day_voucher())
    assert client.calls["POST /ledger/voucher"] == 1
    assert store.list_vouchers() == []


def test_server_error_on_get_is_retried(client, sandbox):
    client.test_connection()
    add_fault(sandbox, path="/ledger/account", method="GET", kind="500", times=2)
    assert client.resolve_accounts(["1920"])["1920"] > 0
    assert client.calls["GET /ledger/account"] == 3
    add_fault(sandbox, path="/ledger/vatType", method="GET", kind="500", times=5)
    with pytest.raises(LedgerTransient):
        client.vat_type_id("3")


def test_saved_then_dropped_post_is_found_afterwards(client, sandbox, store):
    """The exactly-once building block: unknown outcome -> find() before posting again."""
    voucher = day_voucher()
    client.resolve_accounts(["1920"])
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="save_then_drop")
    with pytest.raises(LedgerTransient):
        client.post(voucher)
    assert len(store.list_vouchers()) == 1
    found = client.find(voucher.external_ref, voucher.business_day)
    assert found is not None and found.postings == expected(voucher)
    assert client.calls["POST /ledger/voucher"] == 1


def test_timeout_is_transient_and_the_voucher_may_still_land(sandbox, store):
    client = TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, timeout=0.3, retry_backoff=0.01)
    client.resolve_accounts(["1920"])
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="delay", seconds=0.6)
    with pytest.raises(LedgerTransient, match="timed out"):
        client.post(day_voucher())
    deadline = time.monotonic() + 3
    while not store.list_vouchers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.find(day_voucher().external_ref, DAY) is not None


def test_expired_session_is_recreated_once(client, sandbox):
    client.post(day_voucher())
    requests.post(sandbox[1].url + "/_sandbox/expire_sessions", timeout=5).raise_for_status()
    client.post(day_voucher(vendor="other"))
    assert client.calls["POST /token/session/:create"] == 2


def test_duplicate_references_in_the_ledger_raise(client):
    voucher = day_voucher()
    client.post(voucher)
    client.post(voucher)  # the caller skipped find(): the books now hold the day twice
    with pytest.raises(LedgerValidationError, match="2 vouchers carry"):
        client.find(voucher.external_ref, DAY)


def test_importable_without_airflow():
    code = "import sys, kassebro.ledgers.tripletex;sys.exit(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
