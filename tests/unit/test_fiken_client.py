"""The Fiken client against the Fiken sandbox over real HTTP (no mocked HTTP layer)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.core.money import vat_from_gross
from kassebro.ledgers.base import (
    LedgerAuthError,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
    PostedVoucher,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.fiken import API_FLAG, DESCRIPTION_MAX, FikenClient, net_parts, pair_lines
from kassebro.sandbox.fiken import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, create_app
from kassebro.sandbox.server import running

# The vendored official spec (tests/contracts/specs, see ORIGIN.md): a missing file fails, never skips.
SPEC_PATH = Path(__file__).resolve().parents[1] / "contracts" / "specs" / "fiken" / "openapi.yaml"

SLUG = "demo-kiosk-as"
DAY = dt.date(2026, 3, 1)


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", json={"tokens": True}, timeout=5).raise_for_status()
    yield


class TokenBox:
    """What the Airflow hook will do: keep the latest refresh token."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    def __call__(self, token: str) -> None:
        self.saved.append(token)


def make_client(sandbox, refresh: str = DEMO_REFRESH_TOKEN, slug: str = SLUG, **kwargs: Any) -> FikenClient:
    options = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": refresh,
        "timeout": 5,
        "retry_backoff": 0.01,
        **kwargs,
    }
    return FikenClient(sandbox[1].url, slug, **options)


@pytest.fixture
def tokens() -> TokenBox:
    return TokenBox()


@pytest.fixture
def client(sandbox, tokens):
    with make_client(sandbox, token_store=tokens) as c:
        yield c


def add_fault(sandbox, **fault: Any) -> None:
    requests.post(sandbox[1].url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def day_voucher(day: dt.date = DAY, vendor: str = "shop12", description: str | None = None) -> Voucher:
    lines = (
        VoucherLine("1920:10001", 1_250_00, None, "Bankkort"),
        VoucherLine("1920:10002", 250_50, None, "Vipps"),
        VoucherLine("3000", -1_250_00, "3", "Salg 25 %"),
        VoucherLine("3030", -200_00, "31", "Salg 15 %"),
        VoucherLine("3040", -50_00, "33", "Salg 12 %"),
        VoucherLine("7798", -50, None, "Øreavrunding"),
    )
    return Voucher(
        vendor_id=vendor,
        business_day=day,
        external_ref=external_ref(vendor, day),
        description=description or f"POS dagsoppgjør {vendor} {day}",
        lines=lines,
    )


def per_account(voucher: Voucher) -> Counter:
    totals: Counter = Counter()
    for line in voucher.lines:
        totals[(line.account, None if line.vat_code in (None, "0") else line.vat_code)] += line.amount
    return Counter({key: amount for key, amount in totals.items() if amount})


# ---- rendering -------------------------------------------------------------------------------


def test_pairing_books_every_account_exactly():
    voucher = day_voucher()
    lines = pair_lines(voucher)
    assert lines == [
        {"amount": 1_250_00, "debitAccount": "1920:10001", "creditAccount": "3000", "creditVatCode": 3},
        {"amount": 200_00, "debitAccount": "1920:10002", "creditAccount": "3030", "creditVatCode": 31},
        {"amount": 50_00, "debitAccount": "1920:10002", "creditAccount": "3040", "creditVatCode": 33},
        {"amount": 50, "debitAccount": "1920:10002", "creditAccount": "7798"},
    ]
    booked: Counter = Counter()
    for line in lines:
        booked[(line["debitAccount"], line.get("debitVatCode"))] += line["amount"]
        booked[(line["creditAccount"], line.get("creditVatCode"))] -= line["amount"]
    assert booked == Counter(
        {(line.account, int(line.vat_code) if line.vat_code else None): line.amount for line in voucher.lines}
    )


def test_rendered_body_validates_against_the_spec(client):
    body = client.render(day_voucher(), open_entry=True)
    schema = {"$ref": "#/components/schemas/generalJournalEntryRequest", "components": spec()["components"]}
    jsonschema.Draft7Validator(schema).validate(body)
    assert body["open"] is True
    assert body["journalEntries"][0]["description"].endswith("[kassebro:shop12:2026-03-01]")


def test_description_fits_with_fikens_flag():
    voucher = day_voucher(description="Veldig lang tekst " * 20)
    text = FikenClient.description(voucher)
    assert len(API_FLAG) + len(text) == DESCRIPTION_MAX
    assert text.endswith("… [kassebro:shop12:2026-03-01]")


def test_unrenderable_vouchers_are_refused_before_sending(client):
    base = day_voucher()
    bad_account = Voucher("v", DAY, "kassebro:v:2026-03-01", "x", (VoucherLine("1920", 100), VoucherLine("3999", -100)))
    with pytest.raises(LedgerValidationError, match="not in the Fiken chart: 1920, 3999"):
        client.render(bad_account)
    assert client.calls["POST /companies/{slug}/generalJournalEntries"] == 0
    assert client.render(base)


# ---- VAT-coded debits (returns, days of net refunds) --------------------------------------------

RATES = {3: 2500, 31: 1500, 33: 1200}


def fiken_books(lines: list[dict[str, Any]]) -> Counter:
    """What Fiken books for rendered lines, folded back to gross per (account, VAT code).

    The model kassebro renders for: a coded debit's amount is net and Fiken adds its VAT (half
    up), booking net + VAT on the line's credit side (spec: "net amount for debitAccount lines";
    live-tested the same way by fiken-mcp, journal entries 61-63); a credit's amount is gross.
    """
    booked: Counter = Counter()
    for line in lines:
        debit_code = line.get("debitVatCode")
        rate = RATES.get(debit_code, 0) if debit_code is not None else 0
        vat = int((Decimal(line["amount"]) * rate / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if rate:
            assert "creditVatCode" not in line  # the side that takes net + VAT has no code of its own
        booked[(line["debitAccount"], debit_code)] += line["amount"] + vat
        booked[(line["creditAccount"], line.get("creditVatCode"))] -= line["amount"] + vat
    return Counter({key: amount for key, amount in booked.items() if amount})


def voucher_books(voucher: Voucher) -> Counter:
    totals: Counter = Counter()
    for line in voucher.lines:
        totals[(line.account, int(line.vat_code) if line.vat_code is not None else None)] += line.amount
    return Counter({key: amount for key, amount in totals.items() if amount})


def refund_voucher(*lines: VoucherLine) -> Voucher:
    return Voucher("shop12", DAY, external_ref("shop12", DAY), "POS dagsoppgjør shop12", tuple(lines))


def test_a_net_refund_is_sent_net_with_the_debit_vat_code():
    voucher = refund_voucher(VoucherLine("3000", 1_250_00, "3", "Retur 25 %"), VoucherLine("1920:10001", -1_250_00))
    assert pair_lines(voucher) == [
        {"amount": 1_000_00, "debitAccount": "3000", "debitVatCode": 3, "creditAccount": "1920:10001"}
    ]
    assert fiken_books(pair_lines(voucher)) == voucher_books(voucher)


def test_returns_pair_with_credits_without_vat_else_go_through_a_payment_account():
    with_tips = refund_voucher(
        VoucherLine("1920:10001", 1_300_00),
        VoucherLine("3000", 250_00, "3", "Retur 25 %"),
        VoucherLine("3000", -1_500_00, "3", "Salg 25 %"),
        VoucherLine("2910", -50_00, None, "Tips"),
    )
    lines = pair_lines(with_tips)
    assert lines[0] == {"amount": 40_00, "debitAccount": "3000", "debitVatCode": 3, "creditAccount": "2910"}
    assert fiken_books(lines) == voucher_books(with_tips)
    # refunds at 25 %, sales at 15 %, all paid by card: only the card account can carry the refund
    by_card = refund_voucher(
        VoucherLine("1920:10002", 750_00),
        VoucherLine("3000", 250_00, "3", "Retur 25 %"),
        VoucherLine("3030", -1_000_00, "31", "Salg 15 %"),
    )
    assert pair_lines(by_card) == [
        {"amount": 200_00, "debitAccount": "3000", "debitVatCode": 3, "creditAccount": "1920:10002"},
        {"amount": 1_000_00, "debitAccount": "1920:10002", "creditAccount": "3030", "creditVatCode": 31},
    ]
    assert fiken_books(pair_lines(by_card)) == voucher_books(by_card)
    only_vat = refund_voucher(VoucherLine("3000", 100_00, "3"), VoucherLine("3030", -100_00, "31"))
    with pytest.raises(LedgerValidationError, match="account without a VAT code"):
        pair_lines(only_vat)


def test_every_refund_amount_books_exactly_to_the_ore():
    for gross in range(1, 5_000):
        for code, rate in RATES.items():
            voucher = refund_voucher(
                VoucherLine("3000", gross, str(code)), VoucherLine("1920:10001", -gross - 7), VoucherLine("7798", 7)
            )
            assert fiken_books(pair_lines(voucher)) == voucher_books(voucher), (gross, code)
            parts = net_parts(gross, rate)
            assert len(parts) <= 2 and (len(parts) == 1 or parts[-1] == 1)
            assert parts[0] == gross - vat_from_gross(gross, rate) or len(parts) == 2


def test_a_refund_day_is_accepted_by_the_sandbox_as_rendered(sandbox, tokens):
    voucher = refund_voucher(
        VoucherLine("3000", 1_250_00, "3", "Retur 25 %"),
        VoucherLine("3030", 115_00, "31", "Retur 15 %"),
        VoucherLine("3000", -500_00, "3", "Salg 25 %"),
        VoucherLine("1920:10001", -865_00),
    )
    with make_client(sandbox, token_store=tokens, read_back_after_post=False) as c:
        body = c.render(voucher)
        schema = {"$ref": "#/components/schemas/generalJournalEntryRequest", "components": spec()["components"]}
        jsonschema.Draft7Validator(schema).validate(body)
        posted = c.post(voucher)
        read = c.get(posted.ledger_id)  # as Fiken books it: net refunds plus the VAT Fiken adds
    assert Counter({(a, v): amount for a, amount, v in posted.postings}) == per_account(voucher)
    assert Counter({(a, v): amount for a, amount, v in read.postings}) == per_account(voucher)
    stored = sandbox[0].state.store.entries
    assert [str(stored[0].journal_entry_id)] == [posted.ledger_id]
    assert body["journalEntries"][0]["lines"][:2] == [
        {"amount": 1_000_00, "debitAccount": "3000", "debitVatCode": 3, "creditAccount": "1920:10001"},
        {"amount": 100_00, "debitAccount": "3030", "debitVatCode": 31, "creditAccount": "1920:10001"},
    ]


# ---- the Ledger protocol ---------------------------------------------------------------------


def test_test_connection_wording(client):
    assert client.test_connection() == "Connected to Fiken as Demo Kiosk AS"


def test_test_connection_without_a_company_lists_the_companies(sandbox, tokens):
    """The Airflow UI's Test button knows no vendor, so no company slug."""
    with make_client(sandbox, slug="", token_store=tokens) as c:
        assert (
            c.test_connection()
            == "Connected to Fiken; companies: Demo Kiosk AS (demo-kiosk-as), Uten API AS (uten-api-as)"
        )


def test_company_without_api_module(sandbox):
    with make_client(sandbox, slug="uten-api-as") as other, pytest.raises(LedgerAuthError, match="API module"):
        other.test_connection()


def test_post_reads_back_equal(client, sandbox):
    voucher = day_voucher()
    posted = client.post(voucher)
    assert posted.external_ref == voucher.external_ref
    assert posted.date == DAY and posted.number == "1" and posted.in_ledger
    assert Counter({(a, v): amount for a, amount, v in posted.postings}) == per_account(voucher)
    assert client.get(posted.ledger_id) == posted
    assert client.find(voucher.external_ref, DAY) == posted
    stored = sandbox[0].state.store.entries
    assert len(stored) == 1 and stored[0].open is False


def test_post_without_read_back_returns_what_was_sent_with_the_location_id(sandbox, tokens):
    voucher = day_voucher()
    with make_client(sandbox, token_store=tokens, read_back_after_post=False) as c:
        posted = c.post(voucher)
        assert c.calls["GET /companies/{slug}/journalEntries/{id}"] == 0
        read = c.get(posted.ledger_id)
    assert posted.number == "" and read.number == "1"
    assert posted == PostedVoucher(read.ledger_id, "", read.external_ref, read.date, posted.postings)
    assert Counter({(a, v): amount for a, amount, v in posted.postings}) == Counter(
        {(a, v): amount for a, amount, v in read.postings}
    )


def test_warm_cache_post_is_token_duplicate_check_and_post(sandbox, tokens, tmp_path):
    path = tmp_path / "lookups" / "fiken.json"
    with make_client(sandbox, token_store=tokens, cache=LookupCache(path)) as first:
        first.test_connection()
        first.post(day_voucher())
    sandbox[0].state.calls.clear()
    voucher = day_voucher(DAY + dt.timedelta(days=1))
    second = make_client(
        sandbox, refresh=tokens.saved[-1], token_store=tokens, cache=LookupCache(path), read_back_after_post=False
    )
    with second:
        assert second.find(voucher.external_ref, voucher.business_day) is None
        posted = second.post(voucher)
        made = [(c["method"], c["path"]) for c in sandbox[0].state.calls.list()]
        assert second.company()["name"] == "Demo Kiosk AS"  # cached by the first client's test_connection
        assert second.calls["GET /companies/{slug}"] == 0
        second.test_connection()  # but a connection test always asks Fiken
        assert second.calls["GET /companies/{slug}"] == 1
    assert made == [
        ("POST", "/oauth/token"),
        ("GET", f"/companies/{SLUG}/journalEntries"),
        ("POST", f"/companies/{SLUG}/generalJournalEntries"),
    ]
    assert Counter({(a, v): amount for a, amount, v in posted.postings}) == per_account(voucher)
    text = path.read_text(encoding="utf-8")
    assert "1920:10001" in text
    for secret in (DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, *tokens.saved):
        assert secret not in text


def test_a_new_account_missing_from_the_cache_is_looked_up_again(sandbox, tokens):
    cache = LookupCache()
    cache.put("accounts", {"1920:10001": "Driftskonto", "3000": "Salg"})  # a chart cached before 3030 was made
    voucher = refund_voucher(VoucherLine("1920:10001", 100), VoucherLine("3030", -100, "31"))
    with make_client(sandbox, token_store=tokens, cache=cache) as c:
        c.render(voucher)
        assert c.calls["GET /companies/{slug}/accounts"] == 1
        with pytest.raises(LedgerValidationError, match="not in the Fiken chart: 3999"):
            c.render(refund_voucher(VoucherLine("1920:10001", 100), VoucherLine("3999", -100)))
        assert c.calls["GET /companies/{slug}/accounts"] == 1  # fetched by this client: not again


def test_a_refused_post_clears_the_cache(sandbox, tokens):
    cache = LookupCache()
    with make_client(sandbox, token_store=tokens, cache=cache) as c:
        c.post(day_voucher())
        assert cache.table("accounts")
        with pytest.raises(LedgerValidationError, match="not in the Fiken chart"):
            c.post(refund_voucher(VoucherLine("1920:10001", 100), VoucherLine("3999", -100)))
    assert cache.table("accounts") == {}


def test_send_to_ledger_false_posts_open(client, sandbox):
    client.post(day_voucher(), send_to_ledger=False)
    assert sandbox[0].state.store.entries[0].open is True


def test_find_none_other_day_and_other_version(client):
    voucher = day_voucher()
    client.post(voucher)
    assert client.find(voucher.external_ref, DAY + dt.timedelta(days=1)) is None
    assert client.find(external_ref("shop12", DAY, 2), DAY) is None
    assert client.find(external_ref("shop1", DAY), DAY) is None


def test_find_refuses_a_duplicate(client):
    voucher = day_voucher()
    client.post(voucher)
    client.post(voucher)
    with pytest.raises(LedgerValidationError, match="more than once"):
        client.find(voucher.external_ref, DAY)


def test_save_then_drop_then_find_finds_it(client, sandbox):
    voucher = day_voucher()
    add_fault(sandbox, kind="save_then_drop", method="POST", path="*generalJournalEntries")
    with pytest.raises(LedgerTransient, match="look it up first"):
        client.post(voucher)
    assert client.calls["POST /companies/{slug}/generalJournalEntries"] == 1  # never retried
    found = client.find(voucher.external_ref, DAY)
    assert found is not None
    assert Counter({(a, v): amount for a, amount, v in found.postings}) == per_account(voucher)


def test_500_on_post_is_transient_and_not_retried(client, sandbox):
    add_fault(sandbox, kind="500", method="POST", path="*generalJournalEntries")
    with pytest.raises(LedgerTransient):
        client.post(day_voucher())
    assert client.calls["POST /companies/{slug}/generalJournalEntries"] == 1


def test_500_on_get_is_retried(client, sandbox):
    add_fault(sandbox, kind="500", method="GET", path="/companies/*", times=2)
    assert client.test_connection().startswith("Connected")
    assert client.calls["GET /companies/{slug}"] == 3


def test_missing_account_is_a_validation_error_with_fikens_message(client):
    voucher = Voucher(
        "v", DAY, "kassebro:v:2026-03-01", "x", (VoucherLine("1920:10001", 100), VoucherLine("3999", -100, "3"))
    )
    with pytest.raises(LedgerValidationError, match=r"400 .*account 3999 does not exist"):
        body = client.render(voucher, check_accounts=False)
        client._request("POST", f"{client.company_path}/generalJournalEntries", body=body, raw=True)


# ---- one request at a time ---------------------------------------------------------------------


def test_concurrent_request_429_is_waited_out_on_get(client, sandbox):
    add_fault(sandbox, kind="delay", method="GET", path=f"/companies/{SLUG}/accounts", seconds=0.5)
    other = make_client(sandbox, refresh=_fresh_refresh(sandbox))
    thread = threading.Thread(target=other.account_codes)
    thread.start()
    time.sleep(0.15)
    started = time.monotonic()
    assert client.find("kassebro:shop12:2026-03-01", DAY) is None
    thread.join()
    assert time.monotonic() - started >= 0.9  # one Retry-After: 1
    assert client.calls["GET /companies/{slug}/journalEntries"] == 2


def test_concurrent_request_429_on_post_is_raised(client, sandbox):
    client.account_codes()
    add_fault(sandbox, kind="delay", method="GET", path=f"/companies/{SLUG}", seconds=0.5)
    other = make_client(sandbox, refresh=_fresh_refresh(sandbox))
    thread = threading.Thread(target=other.company)
    thread.start()
    time.sleep(0.15)
    with pytest.raises(LedgerRateLimited) as caught:
        client.post(day_voucher())
    thread.join()
    assert caught.value.retry_after == 1.0
    assert client.calls["POST /companies/{slug}/generalJournalEntries"] == 1
    assert sandbox[0].state.store.entries == []


def test_the_client_serialises_its_own_threads(client, sandbox):
    add_fault(sandbox, kind="delay", method="GET", path="*", seconds=0.2, times=4)
    errors: list[Exception] = []

    def work() -> None:
        try:
            client.find("kassebro:x:2026-03-01", DAY)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert not [c for c in calls if c["status"] == 429]


# ---- tokens ----------------------------------------------------------------------------------


def _fresh_refresh(sandbox) -> str:
    """A second valid refresh token (another login of the same user), via the one-time code."""
    response = requests.post(
        sandbox[1].url + "/oauth/token",
        data={"grant_type": "authorization_code", "code": "demo-auth-code", "redirect_uri": "x", "state": "s"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["refresh_token"]


def test_rotated_refresh_token_is_stored(client, tokens, sandbox):
    client.test_connection()
    assert len(tokens.saved) == 1 and tokens.saved[0] != DEMO_REFRESH_TOKEN
    # The old token is dead; the stored one works.
    with make_client(sandbox) as stale, pytest.raises(LedgerAuthError, match="refresh token was rejected"):
        stale.test_connection()
    with make_client(sandbox, refresh=tokens.saved[0]) as fresh:
        assert fresh.test_connection() == "Connected to Fiken as Demo Kiosk AS"


def test_expired_access_token_is_renewed_once(client, tokens, sandbox):
    client.test_connection()
    requests.post(sandbox[1].url + "/_sandbox/expire_tokens", timeout=5).raise_for_status()
    assert client.find("kassebro:shop12:2026-03-01", DAY) is None
    assert client.calls["POST /oauth/token"] == 2
    assert len(tokens.saved) == 2


def test_bad_refresh_token_is_an_auth_error_without_the_token(sandbox):
    secret = "very-secret-refresh-token-123"
    with make_client(sandbox, refresh=secret) as bad, pytest.raises(LedgerAuthError) as caught:
        bad.test_connection()
    assert "refresh token was rejected" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(bad)


def test_bad_client_secret_names_the_client_credentials(sandbox):
    with make_client(sandbox, client_secret="wrong") as bad, pytest.raises(LedgerAuthError, match="client id/secret"):
        bad.test_connection()


def test_production_token_url():
    client = FikenClient("https://api.fiken.no/api/v2", SLUG, client_id="a", client_secret="b", refresh_token="c")
    assert client.token_url == "https://fiken.no/oauth/token"
    assert client.base_url == "https://api.fiken.no/api/v2"


# ---- listing and reversing -------------------------------------------------------------------


def nets(vouchers: list[PostedVoucher]) -> Counter:
    """What the vouchers book per (account, VAT code), zeros left out."""
    totals: Counter = Counter()
    for voucher in vouchers:
        for account, amount, vat in voucher.postings:
            totals[(account, vat)] += amount
    return Counter({key: amount for key, amount in totals.items() if amount})


def negated(voucher: PostedVoucher) -> Counter:
    return Counter({(a, v): -amount for a, amount, v in voucher.postings})


def foreign_entry(client: FikenClient, day: dt.date) -> PostedVoucher:
    """A journal entry someone else booked: no "[ref]" at the end of its description."""
    body = client.render(day_voucher(day, vendor="other"))
    body["description"] = body["journalEntries"][0]["description"] = "Kontantsalg ført for hånd"
    response = client._request("POST", f"{client.company_path}/generalJournalEntries", body=body, raw=True)
    return client.get(response.headers["Location"].rsplit("/", 1)[1])


def test_list_vouchers_is_the_date_range_end_exclusive(client):
    first = client.post(day_voucher(DAY))
    second = client.post(day_voucher(DAY + dt.timedelta(days=1)), send_to_ledger=False)  # open, booked all the same
    theirs = foreign_entry(client, DAY + dt.timedelta(days=1))
    client.post(day_voucher(DAY + dt.timedelta(days=2)))  # the end date: not included
    client.post(day_voucher(DAY - dt.timedelta(days=1)))
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=2))
    assert listed == [first, second, theirs]
    assert [v.external_ref for v in listed] == [
        external_ref("shop12", DAY),
        external_ref("shop12", DAY + dt.timedelta(days=1)),
        "",
    ]
    assert Counter({(a, v): amount for a, amount, v in listed[0].postings}) == per_account(day_voucher(DAY))
    assert client.list_vouchers(DAY, DAY + dt.timedelta(days=2), include_non_posted=True) == listed
    assert client.list_vouchers(DAY, DAY) == []


def test_list_vouchers_reads_every_page(client, sandbox):
    for _ in range(3):
        client.post(day_voucher())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("kassebro.ledgers.fiken.PAGE_SIZE", 2)
        assert len(client.list_vouchers(DAY, DAY + dt.timedelta(days=1))) == 3
    assert client.calls["GET /companies/{slug}/journalEntries"] == 2


def test_reverse_on_the_entrys_day_is_fikens_own_deletion(client, sandbox):
    voucher = day_voucher()
    posted = client.post(voucher)
    reversal = client.reverse(posted.ledger_id, DAY)
    assert reversal.date == DAY and reversal.ledger_id != posted.ledger_id
    assert reversal.external_ref == voucher.external_ref + ":reversal"
    assert Counter({(a, v): amount for a, amount, v in reversal.postings}) == negated(posted)
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=1))
    # the pair is listed, each marked cancelled (Fiken keeps a deleted entry beside its reverse)
    assert listed == [replace(posted, cancelled=True), replace(reversal, cancelled=True)]
    assert nets(listed) == Counter()
    assert client.find(voucher.external_ref, DAY) == posted  # the original still counts as posted
    stored = {e.journal_entry_id: e for e in sandbox[0].state.store.entries}
    assert stored[int(posted.ledger_id)].deleted is True
    assert stored[int(posted.ledger_id)].offset_transaction_id == stored[int(reversal.ledger_id)].transaction_id
    assert client.reverse(posted.ledger_id, DAY) == reversal  # asked again: the same reversal
    assert client.calls["PATCH /companies/{slug}/transactions/{id}/delete"] == 1
    assert client.calls["POST /companies/{slug}/generalJournalEntries"] == 1


def test_reverse_after_a_lost_answer_reverses_once(client, sandbox):
    posted = client.post(day_voucher())
    sandbox[0].state.faults.add("save_then_drop", path="/companies/*/transactions/*/delete", method="PATCH")
    with pytest.raises(LedgerTransient, match="call reverse again"):
        client.reverse(posted.ledger_id, DAY)
    reversal = client.reverse(posted.ledger_id, DAY)
    listed = client.list_vouchers(DAY, DAY + dt.timedelta(days=1))
    assert [v.ledger_id for v in listed] == [posted.ledger_id, reversal.ledger_id]
    assert nets(listed) == Counter()
    patches = [c for c in sandbox[0].state.calls.list() if c["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["fault"] == "save_then_drop"


def test_reverse_on_another_day_is_a_counter_entry_posted_once(client, sandbox):
    voucher = day_voucher()
    posted = client.post(voucher)
    later = DAY + dt.timedelta(days=3)
    sandbox[0].state.faults.add("save_then_drop", path="/companies/*/generalJournalEntries", method="POST")
    with pytest.raises(LedgerTransient, match="call reverse again"):
        client.reverse(posted.ledger_id, later)
    reversal = client.reverse(posted.ledger_id, later)  # found by its reference, not posted again
    assert reversal.date == later and reversal.external_ref == voucher.external_ref + ":reversal"
    assert Counter({(a, v): amount for a, amount, v in reversal.postings}) == negated(posted)
    assert client.list_vouchers(DAY, later) == [posted]
    listed = client.list_vouchers(DAY, later + dt.timedelta(days=1))
    assert listed == [posted, reversal] and nets(listed) == Counter()
    assert client.find(voucher.external_ref, DAY) == posted
    assert client.find(voucher.external_ref + ":reversal", later) == reversal
    assert client.calls["PATCH /companies/{slug}/transactions/{id}/delete"] == 0
    assert len(sandbox[0].state.store.entries) == 2
    assert not any(e.deleted for e in sandbox[0].state.store.entries)


def test_an_entry_without_our_reference_is_reversed_under_its_id(client):
    theirs = foreign_entry(client, DAY)
    reversal = client.reverse(theirs.ledger_id, DAY + dt.timedelta(days=1))
    assert reversal.external_ref == f"fiken-{theirs.ledger_id}:reversal"
    assert nets([theirs, reversal]) == Counter()
    assert client.reverse(theirs.ledger_id, DAY + dt.timedelta(days=1)) == reversal


def test_a_transaction_of_several_entries_is_not_deleted_to_reverse_one(client, sandbox):
    body = client.render(day_voucher())
    body["journalEntries"].append(dict(body["journalEntries"][0], description="Andre halvdel"))
    response = client._request("POST", f"{client.company_path}/generalJournalEntries", body=body, raw=True)
    first = client.get(response.headers["Location"].rsplit("/", 1)[1])
    reversal = client.reverse(first.ledger_id, DAY)
    assert client.calls["PATCH /companies/{slug}/transactions/{id}/delete"] == 0
    assert reversal.external_ref == first.external_ref + ":reversal"
    assert nets([first, reversal]) == Counter()
    assert not any(e.deleted for e in sandbox[0].state.store.entries)


def test_reverse_refuses_what_is_not_a_journal_entry_id(client):
    with pytest.raises(LedgerValidationError, match="journalEntryId"):
        client.reverse("abc", DAY)
    with pytest.raises(LedgerValidationError, match="404"):
        client.reverse("999", DAY)


def test_clients_of_one_company_take_turns_with_the_company_lock(sandbox, tmp_path, monkeypatch):
    """Two clients (two task processes' worth) for one company: with the company lock the second
    waits for the first's request instead of getting 429 (without it: the test above)."""
    import functools

    from kassebro.ledgers.request_lock import one_at_a_time

    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    lock = functools.partial(one_at_a_time, "Fiken", f"fiken:{SLUG}", f"sqlite:///{tmp_path / 'journal.db'}")
    first = make_client(sandbox, company_lock=lock)
    second = make_client(sandbox, refresh=_fresh_refresh(sandbox), company_lock=lock)
    first.company(), second.company()  # both logged in
    add_fault(sandbox, kind="delay", method="GET", path=f"/companies/{SLUG}/accounts", seconds=0.5)
    thread = threading.Thread(target=first.account_codes)
    thread.start()
    time.sleep(0.15)
    assert second.find("kassebro:shop12:2026-03-01", DAY) is None
    thread.join()
    assert second.calls["GET /companies/{slug}/journalEntries"] == 1  # no 429 to wait out
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert not [c for c in calls if c["status"] == 429]


class SharedGrant:
    """What FikenHook gives every task of a connection: the newest kept rotation, read again."""

    def __init__(self, token: str) -> None:
        self.token = token

    def keep(self, token: str) -> None:
        self.token = token

    def newest(self) -> str:
        return self.token


def _refresh_at_once(sandbox, tmp_path, monkeypatch, *, locked: bool) -> list[str]:
    """Two clients of one grant (two tasks that read the same kept token) log in at the same moment."""
    import functools

    from kassebro.ledgers.request_lock import one_at_a_time

    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    grant = SharedGrant(DEMO_REFRESH_TOKEN)
    options: dict[str, Any] = {"token_store": grant.keep}
    if locked:
        url = f"sqlite:///{tmp_path / 'journal.db'}"
        options.update(
            token_lock=functools.partial(one_at_a_time, "Fiken", "fiken-token:demo", url), token_source=grant.newest
        )
    clients = [make_client(sandbox, **options) for _ in range(2)]
    add_fault(sandbox, kind="delay", method="POST", path="/oauth/token", seconds=0.3)
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def login(client: FikenClient) -> None:
        barrier.wait()
        try:
            client.company()
        except LedgerAuthError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=login, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_tasks_of_one_grant_rotate_the_refresh_token_in_turn(sandbox, tmp_path, monkeypatch):
    assert _refresh_at_once(sandbox, tmp_path, monkeypatch, locked=True) == []


def test_without_the_token_lock_one_of_two_tasks_spends_a_dead_token(sandbox, tmp_path, monkeypatch):
    """What a night of several Fiken tasks at once did before the lock (seen in `make bench-night`)."""
    (error,) = _refresh_at_once(sandbox, tmp_path, monkeypatch, locked=False)
    assert "refresh token was rejected" in error
