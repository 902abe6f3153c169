"""The Fiken sandbox over real HTTP: shapes against the official spec, OAuth, rules, faults."""

from __future__ import annotations

import re
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from kassebro.sandbox.fiken import (
    API_FLAG,
    DEMO_AUTH_CODE,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    create_app,
)
from kassebro.sandbox.server import running

# The vendored official spec (tests/contracts/specs, see ORIGIN.md): a missing file fails, never skips.
SPEC_PATH = Path(__file__).resolve().parents[1] / "contracts" / "specs" / "fiken" / "openapi.yaml"

SLUG = "demo-kiosk-as"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({**schema, "components": spec()["components"]})


def response_schema(path: str, method: str, status: str = "200") -> dict[str, Any]:
    return spec()["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", json={"tokens": True}, timeout=5).raise_for_status()
    yield


def token(sandbox, refresh: str = DEMO_REFRESH_TOKEN) -> requests.Response:
    return requests.post(
        sandbox[1].url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )


@pytest.fixture
def api(sandbox):
    access = token(sandbox).json()["access_token"]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {access}"
    base = sandbox[1].url + "/api/v2"

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return http.request(method, base + path, timeout=10, **kwargs)

    yield call
    http.close()


def entry_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "description": "POS butikk 12 [kassebro:shop12:2026-03-01]",
        "open": True,
        "journalEntries": [
            {
                "description": "POS butikk 12 [kassebro:shop12:2026-03-01]",
                "date": "2026-03-01",
                "lines": [
                    {"amount": 125000, "debitAccount": "1920:10001", "creditAccount": "3000", "creditVatCode": 3},
                    {"amount": 25000, "debitAccount": "1920:10002", "creditAccount": "3030", "creditVatCode": 31},
                ],
            }
        ],
    }
    body.update(overrides)
    return body


# ---- spec shape ------------------------------------------------------------------------------


def test_served_paths_are_in_the_spec(sandbox):
    def normalise(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    spec_paths = {normalise(p): {m.upper() for m in ops if m != "parameters"} for p, ops in spec()["paths"].items()}
    served = [
        (normalise(route.path.removeprefix("/api/v2")), method)
        for route in sandbox[0].routes
        if getattr(route, "path", "").startswith("/api/v2")
        for method in getattr(route, "methods", set())
    ]
    assert served
    missing = [(p, m) for p, m in served if m not in spec_paths.get(p, set())]
    assert not missing


def test_the_example_request_validates_and_posts(api):
    body = entry_body()
    validator(spec()["components"]["schemas"]["generalJournalEntryRequest"]).validate(body)
    response = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body)
    assert response.status_code == 201
    assert response.content == b""
    location = response.headers["Location"]
    assert re.search(rf"/api/v2/companies/{SLUG}/journalEntries/\d+$", location)


def test_read_responses_match_their_schemas(api):
    api("POST", f"/companies/{SLUG}/generalJournalEntries", json=entry_body()).raise_for_status()
    cases = [
        ("/user", "/user"),
        ("/companies", "/companies"),
        ("/companies/{companySlug}", f"/companies/{SLUG}"),
        ("/companies/{companySlug}/accounts", f"/companies/{SLUG}/accounts"),
        ("/companies/{companySlug}/bankAccounts", f"/companies/{SLUG}/bankAccounts"),
        ("/companies/{companySlug}/journalEntries", f"/companies/{SLUG}/journalEntries"),
        ("/companies/{companySlug}/journalEntries/{journalEntryId}", f"/companies/{SLUG}/journalEntries/1"),
    ]
    for spec_path, path in cases:
        response = api("GET", path)
        assert response.status_code == 200, path
        validator(response_schema(spec_path, "get")).validate(response.json())


def test_companies_are_paged_with_fiken_headers(api):
    response = api("GET", "/companies", params={"page": 0, "pageSize": 1})
    assert len(response.json()) == 1
    assert response.headers["Fiken-Api-Page"] == "0"
    assert response.headers["Fiken-Api-Page-Size"] == "1"
    assert response.headers["Fiken-Api-Result-Count"] == "2"
    assert response.headers["Fiken-Api-Page-Count"] == "2"
    assert api("GET", "/companies", params={"pageSize": 101}).status_code == 400


def test_company_and_bank_accounts(api):
    company = api("GET", f"/companies/{SLUG}").json()
    assert company["name"] == "Demo Kiosk AS" and company["hasApiAccess"] is True and company["testCompany"] is True
    codes = [b["accountCode"] for b in api("GET", f"/companies/{SLUG}/bankAccounts").json()]
    assert codes == ["1920:10001", "1920:10002"]
    accounts = api("GET", f"/companies/{SLUG}/accounts", params={"fromAccount": 3000, "toAccount": 3099}).json()
    assert {a["code"] for a in accounts} >= {"3000", "3030"} and all(a["code"].startswith("30") for a in accounts)


# ---- OAuth -----------------------------------------------------------------------------------


def test_refresh_token_is_rotated_and_the_old_one_dies(sandbox):
    first = token(sandbox)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["refresh_token"] != DEMO_REFRESH_TOKEN
    again = token(sandbox)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert token(sandbox, body["refresh_token"]).status_code == 200


def test_authorization_code_works_once(sandbox):
    def exchange() -> requests.Response:
        return requests.post(
            sandbox[1].url + "/oauth/token",
            data={"grant_type": "authorization_code", "code": DEMO_AUTH_CODE, "redirect_uri": "x", "state": "s"},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            timeout=5,
        )

    assert exchange().status_code == 200
    assert exchange().json()["error"] == "invalid_grant"


def test_bad_client_and_bad_bearer(sandbox):
    response = requests.post(
        sandbox[1].url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": DEMO_REFRESH_TOKEN},
        auth=(DEMO_CLIENT_ID, "wrong"),
        timeout=5,
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    api = requests.get(sandbox[1].url + "/api/v2/user", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert api.status_code == 401


def test_expired_access_token_gets_401(sandbox, api):
    assert api("GET", "/user").status_code == 200
    requests.post(sandbox[1].url + "/_sandbox/expire_tokens", timeout=5).raise_for_status()
    assert api("GET", "/user").status_code == 401


def test_company_without_api_module_is_403(api):
    assert api("GET", "/companies/uten-api-as/accounts").status_code == 403


# ---- journal entry rules -------------------------------------------------------------------


def first_entry(**changes: Any) -> dict[str, Any]:
    body = entry_body()
    body["journalEntries"][0].update(changes)
    return body


def first_line(**changes: Any) -> dict[str, Any]:
    body = entry_body()
    body["journalEntries"][0]["lines"][0].update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (first_line(creditAccount="3999"), "does not exist"),
        (first_line(debitAccount="1920"), "does not exist"),
        (first_line(debitAccount="19200"), "invalid account"),
        (first_line(amount=0), "greater than 0"),
        (first_line(amount=-5), "greater than 0"),
        (first_line(amount=12.5), "integer"),
        (first_line(creditVatCode=25), "VAT code"),
        (first_line(vatCode="3"), "unexpected field"),
        (first_entry(description=""), "description"),
        (first_entry(date="01.03.2026"), "date"),
        (first_entry(lines=[]), "lines"),
        (first_entry(description="x" * (201 - len(API_FLAG))), "too long"),
        (entry_body(journalEntries=[]), "journalEntries"),
    ],
)
def test_invalid_entries_are_refused_with_400(api, body, text):
    response = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == {"error", "error_description"}
    assert text in error["error_description"]
    assert api("GET", f"/companies/{SLUG}/journalEntries").json() == []


def test_longest_description_is_accepted(api):
    body = first_entry(description="x" * (200 - len(API_FLAG)))
    assert api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body).status_code == 201


def test_read_back_lines_are_signed_per_side_with_the_flag(api):
    location = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=entry_body()).headers["Location"]
    entry = api("GET", location.split("/api/v2", 1)[1]).json()
    assert entry["description"] == API_FLAG + "POS butikk 12 [kassebro:shop12:2026-03-01]"
    assert entry["date"] == "2026-03-01" and entry["journalEntryNumber"] == 1
    assert [(line["account"], line["amount"], line["vatCode"]) for line in entry["lines"]] == [
        ("1920:10001", 125000, "0"),
        ("3000", -125000, "3"),
        ("1920:10002", 25000, "0"),
        ("3030", -25000, "31"),
    ]


def test_journal_entries_filter_by_date_and_page(api):
    for day in ("2026-03-01", "2026-03-02", "2026-03-02"):
        api("POST", f"/companies/{SLUG}/generalJournalEntries", json=first_entry(date=day)).raise_for_status()
    assert len(api("GET", f"/companies/{SLUG}/journalEntries", params={"date": "2026-03-02"}).json()) == 2
    assert len(api("GET", f"/companies/{SLUG}/journalEntries", params={"dateLt": "2026-03-02"}).json()) == 1
    page = api("GET", f"/companies/{SLUG}/journalEntries", params={"page": 1, "pageSize": 2})
    assert len(page.json()) == 1 and page.headers["Fiken-Api-Page-Count"] == "2"


def test_deleting_a_transaction_books_its_reverse_transaction(api):
    location = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=entry_body()).headers["Location"]
    entry = api("GET", location.split("/api/v2", 1)[1]).json()
    path = f"/companies/{SLUG}/transactions/{entry['transactionId']}"
    transaction = api("GET", path).json()
    validator(response_schema("/companies/{companySlug}/transactions/{transactionId}", "get")).validate(transaction)
    assert transaction["deleted"] is False and [e["journalEntryId"] for e in transaction["entries"]] == [
        entry["journalEntryId"]
    ]
    assert api("PATCH", path + "/delete").status_code == 400  # the description is required
    deleted = api("PATCH", path + "/delete", params={"description": "Feilført [x:reversal]"})
    assert deleted.status_code == 200
    body = deleted.json()
    validator(response_schema("/companies/{companySlug}/transactions/{transactionId}/delete", "patch")).validate(body)
    assert body["deleted"] is True and body["transactionId"] == entry["transactionId"]
    offset = body["entries"][0]["offsetTransactionId"]
    assert (
        api("GET", f"/companies/{SLUG}/journalEntries/{entry['journalEntryId']}").json()["offsetTransactionId"]
        == offset
    )
    reverse = api("GET", f"/companies/{SLUG}/transactions/{offset}").json()
    assert reverse["deleted"] is False and reverse["description"] == "Feilført [x:reversal]"
    [balancing] = reverse["entries"]
    assert balancing["date"] == entry["date"] and balancing["description"] == "Feilført [x:reversal]"
    assert [(line["account"], line["amount"]) for line in balancing["lines"]] == [
        (line["account"], -line["amount"]) for line in entry["lines"]
    ]
    listed = api("GET", f"/companies/{SLUG}/journalEntries", params={"date": entry["date"]}).json()
    validator(response_schema("/companies/{companySlug}/journalEntries", "get")).validate(listed)
    assert [e["journalEntryId"] for e in listed] == [entry["journalEntryId"], balancing["journalEntryId"]]
    again = api("PATCH", path + "/delete", params={"description": "igjen"})
    assert again.status_code == 400 and "already deleted" in again.json()["error_description"]
    assert api("GET", f"/companies/{SLUG}/transactions/12345").status_code == 404
    assert api("PATCH", f"/companies/{SLUG}/transactions/12345/delete", params={"description": "x"}).status_code == 404


def test_one_request_is_one_transaction(api):
    body = entry_body()
    body["journalEntries"].append(dict(body["journalEntries"][0], date="2026-03-02"))
    api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body).raise_for_status()
    entries = api("GET", f"/companies/{SLUG}/journalEntries").json()
    assert len(entries) == 2 and entries[0]["transactionId"] == entries[1]["transactionId"]
    transaction = api("GET", f"/companies/{SLUG}/transactions/{entries[0]['transactionId']}").json()
    assert [e["date"] for e in transaction["entries"]] == ["2026-03-01", "2026-03-02"]


# ---- concurrency and faults ------------------------------------------------------------------


def add_fault(sandbox, **fault: Any) -> None:
    requests.post(sandbox[1].url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()


def test_a_second_concurrent_request_for_a_company_gets_429(sandbox, api):
    add_fault(sandbox, kind="delay", method="GET", path=f"/api/v2/companies/{SLUG}/accounts", seconds=0.6)
    results: list[int] = []
    slow = threading.Thread(target=lambda: results.append(api("GET", f"/companies/{SLUG}/accounts").status_code))
    slow.start()
    time.sleep(0.2)
    second = api("GET", f"/companies/{SLUG}/bankAccounts")
    slow.join()
    assert results == [200]
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert api("GET", f"/companies/{SLUG}/bankAccounts").status_code == 200


def test_fault_kinds(sandbox, api):
    add_fault(sandbox, kind="429", path="/companies/*", seconds=2)
    limited = api("GET", f"/companies/{SLUG}")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    add_fault(sandbox, kind="500", path="/user")
    assert api("GET", "/user").status_code == 500
    add_fault(sandbox, kind="save_then_drop", method="POST", path="*generalJournalEntries")
    with pytest.raises(requests.ConnectionError):
        api("POST", f"/companies/{SLUG}/generalJournalEntries", json=entry_body())
    assert len(api("GET", f"/companies/{SLUG}/journalEntries").json()) == 1
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    dropped = [c for c in calls if c["fault"] == "save_then_drop"]
    assert dropped[0]["status"] is None and dropped[0]["saved_status"] == 201
    assert all("refresh_token" not in str(c.get("body", "")) for c in calls)


def test_state_file_keeps_books_and_tokens(tmp_path):
    state = tmp_path / "fiken.json"
    with running(create_app(state_path=state)) as server:
        refreshed = requests.post(
            server.url + "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": DEMO_REFRESH_TOKEN},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            timeout=5,
        ).json()
        headers = {"Authorization": f"Bearer {refreshed['access_token']}"}
        url = f"{server.url}/api/v2/companies/{SLUG}/generalJournalEntries"
        requests.post(url, json=entry_body(), headers=headers, timeout=5).raise_for_status()
    with running(create_app(state_path=state)) as server:
        again = requests.post(
            server.url + "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            timeout=5,
        ).json()
        headers = {"Authorization": f"Bearer {again['access_token']}"}
        entries = requests.get(f"{server.url}/api/v2/companies/{SLUG}/journalEntries", headers=headers, timeout=5)
        assert len(entries.json()) == 1


# ---- VAT: the sandbox's own rule, not kassebro's ----------------------------------------------
#
# A debit side with a VAT code is net (FK-SPEC journalEntryLine.amount); Fiken adds net x rate at
# the code's class rate (HIGH 25, MEDIUM 15, LOW 12 %), rounded half up per line (INFERRED, see
# `fiken.vat_added`). On a net amount half an øre occurs at 25 % and 15 % too:
#      99.90 x 15 % =    14.985 ->    14.99, booked 114.89
#   10000.02 x 25 % =  2500.005 ->  2500.01, booked 12500.03
# Rounding half to even or cutting off would give 14.98 and 2500.00.


def test_vat_on_a_net_debit_rounds_a_half_ore_up(api):
    lines = [
        {"amount": 9990, "debitAccount": "4300", "debitVatCode": 11, "creditAccount": "1920:10001"},
        {"amount": 1000002, "debitAccount": "4300", "debitVatCode": 1, "creditAccount": "1920:10001"},
    ]
    body = entry_body(journalEntries=[{"description": "Innkjøp", "date": "2026-03-01", "lines": lines}])
    created = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body)
    assert created.status_code == 201, created.text
    entry = api("GET", created.headers["Location"].split("/api/v2", 1)[1]).json()
    assert [(line["account"], line["amount"], line["vatCode"]) for line in entry["lines"]] == [
        ("4300", 11489, "11"),
        ("1920:10001", -11489, "0"),
        ("4300", 1250003, "1"),
        ("1920:10001", -1250003, "0"),
    ]


def test_vat_added_is_the_sandboxs_own_rule():
    from kassebro.sandbox.fiken import vat_added

    assert vat_added(125000, 1) == 31250  # the live test's 1250.00 net + 312.50
    assert vat_added(9990, 11) == 1499  # 14.985
    assert vat_added(10, 3) == 3  # 2.5 øre
    assert vat_added(14, 33) == 2  # 1.68
    assert vat_added(9000, 12) == 1000  # raw fish, 11.11 %: 999.9 øre
    assert vat_added(9990, 5) == vat_added(9990, 0) == vat_added(9990, None) == 0
