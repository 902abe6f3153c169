"""The Fiken sandbox's contacts over real HTTP: shapes against the official spec, the filters, a new
customer's reskontro sub-account in the chart and on journal entry lines, numbering per company,
the state file and the reset. What is the spec's and what is INFERRED: `kassebro.sandbox.fiken`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kassebro.sandbox.fiken import (
    ACCOUNTS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_COMPANY,
    DEMO_REFRESH_TOKEN,
    Company,
    create_app,
)
from kassebro.sandbox.server import running

from .test_fiken_sandbox import SLUG, entry_body, response_schema, spec, validator

Call = Callable[..., requests.Response]
OTHER = Company("Andre Kiosk AS", "andre-kiosk-as", "999999997")
CONTACTS = f"/companies/{SLUG}/contacts"
WRITE_ONLY = {"phoneNumber", "memberNumberString", "memberNumber", "currency"}


@pytest.fixture(scope="module")
def sandbox():
    app = create_app(companies=(DEMO_COMPANY, OTHER))
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", json={"tokens": True}, timeout=5).raise_for_status()
    yield


def _session(url: str, refresh: str = DEMO_REFRESH_TOKEN) -> tuple[Call, str]:
    """A call(method, path, **kwargs) under /api/v2 with a fresh access token, and the new refresh token."""
    tokens = requests.post(
        url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        target = path if path.startswith("http") else url + "/api/v2" + path
        extra = kwargs.pop("headers", {})
        return requests.request(method, target, headers={**headers, **extra}, timeout=10, **kwargs)

    return call, tokens["refresh_token"]


@pytest.fixture
def api(sandbox) -> Iterator[Call]:
    yield _session(sandbox[1].url)[0]


def _create(api: Call, slug: str = SLUG, **body: Any) -> requests.Response:
    response = api("POST", f"/companies/{slug}/contacts", json=body)
    assert response.status_code == 201, response.text
    return response


def _contact(api: Call, response: requests.Response) -> dict[str, Any]:
    found = api("GET", response.headers["Location"])
    assert found.status_code == 200, found.text
    return found.json()


def _names(api: Call, slug: str = SLUG, **params: Any) -> list[str]:
    response = api("GET", f"/companies/{slug}/contacts", params=params)
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()]


def _codes(api: Call, slug: str = SLUG) -> dict[str, str]:
    return {a["code"]: a["name"] for a in api("GET", f"/companies/{slug}/accounts").json()}


def _journal_body(account: str, amount: int = 100000) -> dict[str, Any]:
    lines = [{"amount": amount, "debitAccount": account, "creditAccount": "3000", "creditVatCode": 3}]
    return entry_body(journalEntries=[{"description": "Kredittsalg", "date": "2026-03-01", "lines": lines}])


NEW_CUSTOMER = {
    "name": "Fjordkafeen AS",
    "organizationNumber": "923456789",
    "email": "faktura@fjordkafeen.no",
    "customer": True,
    "memberNumberString": "shop12:K1001",
    "phoneNumber": "55123456",
    "address": {"streetAddress": "Kaien 1", "postCode": "5003", "city": "Bergen", "country": "Norge"},
}


# ---- the spec's shapes and the seeded contacts -------------------------------------------------


def test_the_contacts_answer_in_the_specs_shape(api):
    validator(spec()["components"]["schemas"]["contact"]).validate(NEW_CUSTOMER)
    created = _create(api, **NEW_CUSTOMER)
    listing = api("GET", CONTACTS)
    validator(response_schema("/companies/{companySlug}/contacts", "get")).validate(listing.json())
    one = _contact(api, created)
    validator(response_schema("/companies/{companySlug}/contacts/{contactId}", "get")).validate(one)
    assert not any(WRITE_ONLY & set(c) for c in [*listing.json(), one])  # write-only: never rendered
    assert one == {
        "contactId": one["contactId"],
        "createdDate": one["createdDate"],
        "lastModifiedDate": one["createdDate"],
        "name": "Fjordkafeen AS",
        "email": "faktura@fjordkafeen.no",
        "organizationNumber": "923456789",
        "customerNumber": 10003,
        "customerAccountCode": "1500:10003",
        "customer": True,
        "supplier": False,
        "inactive": False,
        "address": {"streetAddress": "Kaien 1", "postCode": "5003", "city": "Bergen", "country": "Norge"},
    }


def test_every_company_has_the_seeded_contacts(api):
    for slug in (SLUG, OTHER.slug):
        seeded = api("GET", f"/companies/{slug}/contacts").json()
        assert [
            (c["name"], c.get("organizationNumber"), c.get("email"), c["customerNumber"], c["inactive"]) for c in seeded
        ] == [
            ("Nordlys Catering AS", "915000001", "post@nordlys-catering.no", 10001, False),
            ("Gammel Kunde AS", "987000001", None, 10002, True),
        ]
        assert [c["customerAccountCode"] for c in seeded] == ["1500:10001", "1500:10002"]
        chart = _codes(api, slug)
        assert chart["1500:10001"] == "Nordlys Catering AS" and "1500:10002" not in chart  # inactive: not in it
        assert chart == ACCOUNTS


def test_contacts_are_paged_with_fiken_headers(api):
    _create(api, name="Tredje AS")
    page = api("GET", CONTACTS, params={"page": 1, "pageSize": 2})
    assert [c["name"] for c in page.json()] == ["Tredje AS"]
    assert page.headers["Fiken-Api-Page"] == "1" and page.headers["Fiken-Api-Page-Size"] == "2"
    assert page.headers["Fiken-Api-Page-Count"] == "2" and page.headers["Fiken-Api-Result-Count"] == "3"
    assert api("GET", CONTACTS, params={"pageSize": 101}).status_code == 400


# ---- filters -----------------------------------------------------------------------------------


def test_the_filters(api):
    _create(api, **NEW_CUSTOMER)
    _create(api, name="Leverandøren AS", supplier=True, organizationNumber="923456780")
    everyone = ["Nordlys Catering AS", "Gammel Kunde AS", "Fjordkafeen AS", "Leverandøren AS"]
    assert _names(api) == everyone  # active and inactive, in createdDate order
    assert _names(api, memberNumberString="shop12:K1001") == ["Fjordkafeen AS"]
    assert _names(api, memberNumberString="shop12:K100") == []  # exact
    assert _names(api, memberNumberString="shop12:K1001", customer="true") == ["Fjordkafeen AS"]
    assert _names(api, organizationNumber="915000001") == ["Nordlys Catering AS"]
    assert _names(api, organizationNumber="91500000") == []
    assert _names(api, email="post@nordlys-catering.no") == ["Nordlys Catering AS"]
    assert _names(api, email="POST@nordlys-catering.no") == []
    assert _names(api, phoneNumber="55123456") == ["Fjordkafeen AS"]
    assert _names(api, inactive="true") == ["Gammel Kunde AS"]
    assert _names(api, inactive="false") == ["Nordlys Catering AS", "Fjordkafeen AS", "Leverandøren AS"]
    assert _names(api, organizationNumber="987000001", inactive="false") == []
    assert _names(api, customer="true") == everyone[:3]
    assert _names(api, supplier="true") == ["Leverandøren AS"]
    assert _names(api, customer="true", supplier="true") == []
    assert _names(api, customer="false") == ["Leverandøren AS"]
    assert _names(api, customerNumber=10003) == ["Fjordkafeen AS"]
    assert _names(api, supplierNumber=20001) == ["Leverandøren AS"]
    assert _names(api, name="nordlys") == ["Nordlys Catering AS"]  # contains, case-insensitive
    assert _names(api, name="AS") == everyone
    assert _names(api, group="Storkunder") == []
    assert _names(api, createdDateGe="2025-01-02") == ["Fjordkafeen AS", "Leverandøren AS"]
    assert _names(api, sortBy="createdDate desc") == everyone[::-1]
    for bad in ({"inactive": "yes"}, {"customerNumber": "x"}, {"createdDate": "2025-1-1"}, {"sortBy": "name"}):
        refused = api("GET", CONTACTS, params=bad)
        assert refused.status_code == 400 and refused.json()["error"] == "bad_request", bad


# ---- POST --------------------------------------------------------------------------------------


def test_a_new_customer_has_its_account_in_the_chart_and_on_journal_entries(sandbox, api):
    created = _create(api, **NEW_CUSTOMER)
    assert created.content == b""
    location = created.headers["Location"]
    assert re.fullmatch(rf"{re.escape(sandbox[1].url)}/api/v2/companies/{SLUG}/contacts/\d+", location)
    code = _contact(api, created)["customerAccountCode"]
    assert code == "1500:10003"
    assert _codes(api)[code] == "Fjordkafeen AS"
    in_range = api("GET", f"/companies/{SLUG}/accounts", params={"fromAccount": 1500, "toAccount": 1500}).json()
    assert [a["code"] for a in in_range] == ["1500:10001", "1500:10003"]
    booked = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code))
    assert booked.status_code == 201, booked.text
    entry = api("GET", booked.headers["Location"]).json()
    assert [(line["account"], line["amount"]) for line in entry["lines"]] == [(code, 100000), ("3000", -100000)]
    balances = api("GET", f"/companies/{SLUG}/accountBalances", params={"date": "2026-03-01", "pageSize": 100})
    validator(response_schema("/companies/{companySlug}/accountBalances", "get")).validate(balances.json())
    rows = {row["code"]: row for row in balances.json()}
    assert rows[code] == {"code": code, "name": "Fjordkafeen AS", "balance": 100000}
    assert rows["3000"]["balance"] == -80000 and rows["2700"]["balance"] == -20000
    assert rows["1500:10001"]["balance"] == 0


def test_a_supplier_gets_a_2400_account(api):
    both = _contact(api, _create(api, name="Begge Deler AS", customer=True, supplier=True))
    assert (both["customerAccountCode"], both["supplierAccountCode"]) == ("1500:10003", "2400:20001")
    supplier = _contact(api, _create(api, name="Grossisten AS", supplier=True))
    assert supplier["supplierNumber"] == 20002 and "customerNumber" not in supplier
    chart = _codes(api)
    assert chart["2400:20001"] == "Begge Deler AS" and chart["2400:20002"] == "Grossisten AS" and "2400" in chart
    lines = [{"amount": 50000, "debitAccount": "4300", "creditAccount": "2400:20002"}]
    body = entry_body(journalEntries=[{"description": "Innkjøp", "date": "2026-03-01", "lines": lines}])
    assert api("POST", f"/companies/{SLUG}/generalJournalEntries", json=body).status_code == 201


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"email": "a@b.no"}, "name: required"),
        ({"name": "  "}, "name: required"),
        ({"name": 12}, "name: required"),
        ({"name": "x" * 201}, "name: too long"),
        ({"name": "A AS", "organizationNumber": "91500000"}, "organizationNumber"),
        ({"name": "A AS", "organizationNumber": "9150000011"}, "organizationNumber"),
        ({"name": "A AS", "organizationNumber": "91500000A"}, "organizationNumber"),
        ({"name": "A AS", "organizationNumber": 915000001}, "organizationNumber: must be a string"),
        ({"name": "A AS", "email": "ikke-en-adresse"}, "email"),
        ({"name": "A AS", "phoneNumber": "1" * 21}, "phoneNumber: too long"),
        ({"name": "A AS", "customer": "true"}, "customer: must be a boolean"),
        ({"name": "A AS", "inactive": 1}, "inactive: must be a boolean"),
        ({"name": "A AS", "address": {"city": "Bergen"}}, "address.country: required"),
        ({"name": "A AS", "address": {"country": "Norge", "streetAddress2": "x"}}, "unexpected field"),
        ({"name": "A AS", "kundenummer": 5}, "unexpected field(s): kundenummer"),
        ({"name": "A AS", "bankAccountNumber": "11112233334"}, "not modelled"),
        ([{"name": "A AS"}], "must be a JSON object"),
    ],
)
def test_invalid_contacts_are_refused_with_400(api, body, text):
    response = api("POST", CONTACTS, json=body)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == {"error", "error_description"} and error["error"] == "bad_request"
    assert text in error["error_description"]
    assert len(api("GET", CONTACTS).json()) == 2  # nothing kept


def test_read_only_fields_are_ignored_and_json_is_required(api):
    contact = _contact(api, _create(api, name="A AS", customer=True, customerNumber=5, contactId=1))
    assert contact["customerNumber"] == 10003 and contact["contactId"] != 1
    plain = api("POST", CONTACTS, data=json.dumps({"name": "B AS"}), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415


def test_an_unknown_contact_is_404(api):
    own = _contact(api, _create(api, OTHER.slug, name="Andres kunde AS", customer=True))
    for contact_id in ("999", "abc", str(own["contactId"])):  # the other company's is not found either
        missing = api("GET", f"{CONTACTS}/{contact_id}")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert api("GET", f"/companies/{OTHER.slug}/contacts/{own['contactId']}").status_code == 200


# ---- the reskontro accounts on journal entries --------------------------------------------------


@pytest.mark.parametrize(
    "account",
    [
        "1500:99999",  # no such contact
        "1500:10002",  # the inactive customer's
        "1500",  # reskontro only as a contact's sub-account
        "2400:20001",  # no supplier yet
    ],
)
def test_a_reskontro_account_without_an_active_contact_is_refused(api, account):
    refused = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(account))
    assert refused.status_code == 400
    assert f"account {account} does not exist" in refused.json()["error_description"]
    assert api("GET", f"/companies/{SLUG}/journalEntries").json() == []


def test_another_companys_customer_account_is_unknown(api):
    code = _contact(api, _create(api, OTHER.slug, name="Andres kunde AS", customer=True))["customerAccountCode"]
    assert code == "1500:10003"
    refused = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code))
    assert refused.status_code == 400 and code not in _codes(api)
    assert code in _codes(api, OTHER.slug)


# ---- numbering, the state file and the reset ---------------------------------------------------


def test_customer_numbers_count_per_company(api):
    first = _contact(api, _create(api, name="En AS", customer=True))
    other = _contact(api, _create(api, OTHER.slug, name="En AS", customer=True))
    second = _contact(api, _create(api, name="To AS", customer=True))
    neither = _contact(api, _create(api, name="Bare kontakt AS"))
    assert [c["customerNumber"] for c in (first, other, second)] == [10003, 10003, 10004]
    assert "customerNumber" not in neither and "customerAccountCode" not in neither
    assert len({c["contactId"] for c in (first, other, second, neither)}) == 4


def test_the_state_file_keeps_the_contacts(tmp_path):
    state = tmp_path / "fiken.json"
    with running(create_app(state_path=state)) as server:
        api, refresh = _session(server.url)
        contact = _contact(api, _create(api, **NEW_CUSTOMER))
        code = contact["customerAccountCode"]
        assert api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code)).status_code == 201
    with running(create_app(state_path=state)) as server:
        api, _ = _session(server.url, refresh)
        assert api("GET", f"{CONTACTS}/{contact['contactId']}").json() == contact
        assert _names(api, memberNumberString="shop12:K1001") == ["Fjordkafeen AS"]
        assert _codes(api)[code] == "Fjordkafeen AS"
        again = api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code))
        assert again.status_code == 201
        balances = api("GET", f"/companies/{SLUG}/accountBalances", params={"date": "2026-03-01", "pageSize": 100})
        assert {r["code"]: r["balance"] for r in balances.json()}[code] == 200000
        after = _contact(api, _create(api, name="Etter omstart AS", customer=True))
        assert after["customerNumber"] == 10004 and after["contactId"] > contact["contactId"]


def test_a_state_file_of_before_contacts_keeps_the_seeded_ones(tmp_path):
    state = tmp_path / "fiken.json"
    state.write_text(json.dumps({"refresh_tokens": [DEMO_REFRESH_TOKEN], "next_id": 1, "entries": []}))
    with running(create_app(state_path=state)) as server:
        api, _ = _session(server.url)
        assert _names(api) == ["Nordlys Catering AS", "Gammel Kunde AS"]


def test_reset_clears_and_seeds_the_contacts_again(sandbox, api):
    seeded = api("GET", CONTACTS).json()
    created = _contact(api, _create(api, **NEW_CUSTOMER))
    assert created["customerAccountCode"] in _codes(api)
    requests.post(sandbox[1].url + "/_sandbox/reset", json={}, timeout=5).raise_for_status()
    assert api("GET", CONTACTS).json() == seeded
    assert api("GET", f"{CONTACTS}/{created['contactId']}").status_code == 404
    assert "1500:10003" not in _codes(api) and _codes(api) == ACCOUNTS
    assert _contact(api, _create(api, **NEW_CUSTOMER))["customerAccountCode"] == "1500:10003"


def test_a_contact_made_inactive_keeps_its_balance_but_leaves_the_chart(sandbox, api):
    contact = _contact(api, _create(api, **NEW_CUSTOMER))
    code = contact["customerAccountCode"]
    assert api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code)).status_code == 201
    sandbox[0].state.store.contact(SLUG, contact["contactId"]).inactive = True  # no PUT in the sandbox
    assert code not in _codes(api)
    balances = api("GET", f"/companies/{SLUG}/accountBalances", params={"date": "2026-03-01", "pageSize": 100})
    assert {r["code"]: r for r in balances.json()}[code] == {"code": code, "name": "Fjordkafeen AS", "balance": 100000}
    assert api("POST", f"/companies/{SLUG}/generalJournalEntries", json=_journal_body(code)).status_code == 400
