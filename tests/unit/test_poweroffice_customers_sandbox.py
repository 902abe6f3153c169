"""The PowerOffice Go v2 sandbox's customers and their subledger accounts, over real HTTP.

Answers are checked against the merged v2 spec's schemas (the helpers of
`test_poweroffice_sandbox`); a voucher line on a customer's SubledgerAccountId is booked on 1500
with CustomerAccountNo (INFERRED: the customers' subledger is 1500, see the sandbox's docstring).
"""

from __future__ import annotations

from typing import Any

import requests

from kassebro.sandbox.poweroffice import DEFAULT_PRIVILEGES, create_app
from kassebro.sandbox.server import running
from tests.unit import test_poweroffice_sandbox as po
from tests.unit.test_poweroffice_sandbox import DAY, assert_valid, every_row, ids, logged_in, response_schema

# The PowerOffice sandbox tests' fixtures: one sandbox for the module, reset before each test.
sandbox = po.sandbox
_clean = po._clean
api = po.api

NORDLYS = {"Number": 10_000, "Name": "Nordlys Catering AS", "OrganizationNumber": "915000001"}


def new_customer(**fields: Any) -> dict[str, Any]:
    return {
        "Name": "Fjellstua Kantine AS",
        "OrganizationNumber": "915000002",
        "EmailAddress": "post@fjellstua.example",
        "InvoiceEmailAddress": "faktura@fjellstua.example",
        "IsPerson": False,
        "ExternalImportReference": "shop12-kunde-7",
        "MailAddress": {"AddressLine1": "Fjellveien 1", "ZipCode": "0161", "City": "Oslo", "CountryCode": "NO"},
        **fields,
    }


def customers(http: requests.Session, base: str, **params: Any) -> requests.Response:
    return http.get(base + "/Customers", params=params, timeout=5)


def subledger_voucher(api, subledger_id: int, ref: str = "kreditt-1") -> dict[str, Any]:
    """Credit sales: the customer owes 250.00 (subledger), sales at 25 %."""
    accounts, vats = ids(api)
    return {
        "CurrencyCode": "NOK",
        "VoucherDate": DAY.isoformat(),
        "Description": "Kredittsalg",
        "ExternalImportReference": ref,
        "VoucherLines": [
            {"AccountId": subledger_id, "PostingDate": DAY.isoformat(), "VatId": vats["0"], "CurrencyAmount": "250.00"},
            {
                "AccountId": accounts["3000"],
                "PostingDate": DAY.isoformat(),
                "VatId": vats["3"],
                "CurrencyAmount": "-250.00",
            },
        ],
    }


def test_the_seeded_customer_validates_against_the_spec(api):
    http, base = api
    answer = customers(http, base)
    assert answer.status_code == 200, answer.text
    assert_valid(answer.json(), response_schema("/Customers", "get", "200"))
    (seeded,) = answer.json()
    assert {k: seeded[k] for k in NORDLYS} == NORDLYS
    assert seeded["ExternalImportReference"] is None and seeded["IsActive"] is True
    gl_ids = {a["Id"] for a in every_row(http, base + "/GeneralLedgerAccounts")}
    assert isinstance(seeded["SubledgerAccountId"], int) and seeded["SubledgerAccountId"] not in gl_ids
    one = http.get(base + f"/Customers/{seeded['Id']}", timeout=5)
    assert one.status_code == 200 and one.json() == seeded
    assert_valid(one.json(), response_schema("/Customers/{id}", "get", "200"))
    missing = http.get(base + "/Customers/1", timeout=5)
    assert missing.status_code == 404 and missing.json()["Title"] == "Object(s) not found"
    assert_valid(missing.json(), response_schema("/Customers/{id}", "get", "404"))


def test_post_numbers_customers_and_gives_a_new_subledger_account(api):
    http, base = api
    created = http.post(base + "/Customers", json=new_customer(), timeout=5)
    assert created.status_code == 201, created.text
    assert_valid(created.json(), response_schema("/Customers", "post", "201"))
    body = created.json()
    assert body["Number"] == 10_001 and body["IsActive"] is True
    assert body["Name"] == "Fjellstua Kantine AS" and body["InvoiceEmailAddress"] == "faktura@fjellstua.example"
    assert body["MailAddress"]["City"] == "Oslo" and body["MailAddress"]["ZipCode"] == "0161"
    given = http.post(base + "/Customers", json=new_customer(Number=12_000, ExternalImportReference=None))
    assert given.status_code == 201 and given.json()["Number"] == 12_000
    following = http.post(base + "/Customers", json={"Name": "Tredje AS"})
    assert following.status_code == 201 and following.json()["Number"] == 12_001
    assert following.json()["MailAddress"]["CountryCode"] == "NO"
    assert_valid(following.json(), response_schema("/Customers", "post", "201"))
    everyone = customers(http, base).json()
    gl_ids = {a["Id"] for a in every_row(http, base + "/GeneralLedgerAccounts")}
    subledgers = [c["SubledgerAccountId"] for c in everyone]
    assert len(set(subledgers)) == 4 and not gl_ids.intersection(subledgers)
    assert len({c["Id"] for c in everyone}) == 4
    assert http.get(base + f"/Customers/{body['Id']}", timeout=5).json() == body


def test_post_refusals_are_400_problem_details(api):
    http, base = api
    assert http.post(base + "/Customers", json=new_customer()).status_code == 201
    refusals = [
        ({"Name": "Igjen AS", "Number": 10_000}, "10000"),  # a taken number
        (new_customer(Name="Andre AS"), "ExternalImportReference is already in use"),  # the spec's wording
        ({"OrganizationNumber": "915000009"}, None),  # no Name
        ({"Name": "X AS", "MailAddress": {"AddressLine1": "Vei 1"}}, None),  # ZipCode, City required
        ({"Name": "X AS", "Number": "tusen"}, None),
        ({"IsPerson": True, "FirstName": "Kari"}, None),  # a person needs FirstName and LastName
    ]
    for body, detail in refusals:
        answer = http.post(base + "/Customers", json=body, timeout=5)
        assert answer.status_code == 400, body
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json()["Title"] == "Customer validation error(s)"
        assert_valid(answer.json(), response_schema("/Customers", "post", "400"))
        if detail:
            assert detail in answer.json()["Detail"], answer.json()
        else:
            assert answer.json()["Errors"], answer.json()
    person = http.post(base + "/Customers", json={"IsPerson": True, "FirstName": "Kari", "LastName": "Nordmann"})
    assert person.status_code == 201 and person.json()["Name"] == "Kari Nordmann"
    assert len(customers(http, base).json()) == 3


def test_list_filters_are_the_specs(api):
    http, base = api
    for n, fields in enumerate(
        [
            {"Number": 11_000, "ExternalNumber": 30_000},
            {"Number": 12_000, "ExternalNumber": 15_000},
            {"Number": 13_500, "ExternalNumber": 150_000},
        ]
    ):
        created = http.post(base + "/Customers", json=new_customer(ExternalImportReference=f"ext-{n}", **fields))
        assert created.status_code == 201, created.text

    def numbers(**params: Any) -> list[int]:
        answer = customers(http, base, **params)
        if answer.status_code == 204:
            return []
        assert answer.status_code == 200, answer.text
        assert_valid(answer.json(), response_schema("/Customers", "get", "200"))
        return [c["Number"] for c in answer.json()]

    assert numbers() == [10_000, 11_000, 12_000, 13_500]
    assert numbers(customerNos="10000-11000, 12000, 13000-") == [10_000, 11_000, 12_000, 13_500]
    assert numbers(customerNos="10000,12000") == [10_000, 12_000]
    assert numbers(customerNos="11000-12999") == [11_000, 12_000]
    assert numbers(customerNos="13000-") == [13_500]
    assert numbers(customerNos="99999") == []  # 204
    assert customers(http, base, customerNos="99999").status_code == 204
    assert numbers(externalNos="30000, 14153-19534, 150000-") == [11_000, 12_000, 13_500]
    assert numbers(externalNos="30000") == [11_000]
    assert numbers(externalImportReference="ext-1") == [12_000]
    assert numbers(externalImportReference="ext-9") == []
    assert numbers(externalImportReference=" ") == [10_000, 11_000, 12_000, 13_500]  # whitespace: no filter
    assert numbers(customerNos="11000-", externalImportReference="ext-2") == [13_500]
    # paged like the other lists
    assert numbers(PageSize=2) == [10_000, 11_000]
    assert numbers(PageSize=2, PageNumber=2) == [12_000, 13_500]
    assert numbers(PageSize=2, PageNumber=3) == []
    assert customers(http, base, PageSize=0).status_code == 400


def test_customers_need_the_customer_roles():
    without = [p for p in DEFAULT_PRIVILEGES if p != "Customer_Full"]
    with running(create_app(privileges=without)) as server:
        http = logged_in(server)
        assert http.get(server.url + "/v2/Customers", timeout=5).status_code == 403
        assert http.post(server.url + "/v2/Customers", json={"Name": "X"}, timeout=5).status_code == 403
    with running(create_app(privileges=[*without, "Customer"])) as server:
        http = logged_in(server)
        assert http.get(server.url + "/v2/Customers", timeout=5).status_code == 200
        assert http.post(server.url + "/v2/Customers", json={"Name": "X"}, timeout=5).status_code == 403


def test_a_line_on_the_subledger_account_is_booked_on_1500_for_the_customer(api):
    http, base = api
    customer = http.post(base + "/Customers", json=new_customer()).json()
    created = http.post(base + "/Vouchers/ManualJournals", json=subledger_voucher(api, customer["SubledgerAccountId"]))
    assert created.status_code == 201, created.text
    assert created.json()["VoucherLines"][0]["AccountId"] == customer["SubledgerAccountId"]  # as sent
    rows = http.get(base + "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY}, timeout=5).json()
    assert_valid(rows, response_schema("/AccountTransactions", "get", "200"))
    accounts, _ = ids(api)
    (receivable,) = [r for r in rows if r["AccountNo"] == 1500]
    assert receivable["AccountId"] == accounts["1500"]
    assert receivable["CustomerAccountNo"] == customer["Number"] == 10_001
    assert receivable["ContactId"] == customer["Id"]
    assert receivable["Amount"] == 250.0 and receivable["VatAmount"] == 0
    assert {r["AccountNo"]: r["CustomerAccountNo"] for r in rows} == {1500: 10_001, 3000: None, 2700: None}
    only = http.get(base + "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY, "accountNos": "1500"})
    assert [r["Id"] for r in only.json()] == [receivable["Id"]]
    balance = http.get(base + "/TrialBalance", params={"date": DAY, "hideAccountsWithZeroBalance": "true"}).json()
    assert_valid(balance, response_schema("/TrialBalance", "get", "200"))
    assert {r["AccountNo"]: r["Balance"] for r in balance} == {1500: 250.0, 3000: -200.0, 2700: -50.0}
    # the seeded customer too, and the reversal keeps the customer
    seeded = customers(http, base, customerNos="10000").json()[0]
    second = http.post(
        base + "/Vouchers/ManualJournals", json=subledger_voucher(api, seeded["SubledgerAccountId"], "k2")
    )
    assert second.status_code == 201, second.text
    assert http.post(base + f"/Vouchers/Reverse/{second.json()['Id']}").status_code == 200
    rows = http.get(base + "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY, "accountNos": "1500"})
    assert sorted((r["CustomerAccountNo"], r["Amount"]) for r in rows.json()) == [
        (10_000, -250.0),
        (10_000, 250.0),
        (10_001, 250.0),
    ]


def test_journal_entry_drafts_take_the_subledger_account(sandbox, api):
    http, base = api
    accounts, vats = ids(api)
    seeded = customers(http, base).json()[0]
    draft = {
        "CurrencyCode": "NOK",
        "VoucherDate": DAY.isoformat(),
        "ManualVoucherLines": [
            {
                "DebitAccountId": seeded["SubledgerAccountId"],
                "DebitVatId": vats["0"],
                "CreditAccountId": accounts["3000"],
                "CreditVatId": vats["3"],
                "CurrencyAmount": 100,
            }
        ],
    }
    created = http.post(base + "/JournalEntryVouchers/ManualJournals", json=draft)
    assert created.status_code == 201, created.text
    draft_id = created.json()["Id"]
    http.post(base + f"/JournalEntryVouchers/{draft_id}/submitForApproval", json={}).raise_for_status()
    requests.post(sandbox[1].url + f"/_sandbox/approve/{draft_id}", timeout=5).raise_for_status()
    rows = http.get(base + "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY, "accountNos": "1500"})
    assert [(r["CustomerAccountNo"], r["Amount"]) for r in rows.json()] == [(10_000, 100.0)]


def test_unknown_account_ids_are_still_refused(api):
    http, base = api
    for account_id in (1, 6_149_999, 8_100_001):  # nothing, not a subledger id, a customer's (contact) Id
        answer = http.post(base + "/Vouchers/ManualJournals", json=subledger_voucher(api, account_id))
        assert answer.status_code == 400, account_id
        assert "VoucherLines[0].AccountId" in answer.json()["Errors"]


def test_customers_survive_a_restart_and_reset_seeds_again(tmp_path):
    state = tmp_path / "po.json"
    with running(create_app(state_path=state)) as server:
        http, base = logged_in(server), server.url + "/v2"
        customer = http.post(base + "/Customers", json=new_customer()).json()
        voucher = http.post(
            base + "/Vouchers/ManualJournals", json=subledger_voucher((http, base), customer["SubledgerAccountId"])
        )
        assert voucher.status_code == 201, voucher.text
    with running(create_app(state_path=state)) as server:
        http, base = logged_in(server), server.url + "/v2"
        assert http.get(base + f"/Customers/{customer['Id']}", timeout=5).json() == customer
        rows = http.get(base + "/AccountTransactions", params={"fromDate": DAY, "toDate": DAY, "accountNos": "1500"})
        assert [r["CustomerAccountNo"] for r in rows.json()] == [10_001]
        following = http.post(base + "/Customers", json={"Name": "Etter omstart AS"}).json()
        assert following["Number"] == 10_002 and following["Id"] != customer["Id"]
        assert following["SubledgerAccountId"] != customer["SubledgerAccountId"]
        requests.post(server.url + "/_sandbox/reset", timeout=5).raise_for_status()
        http = logged_in(server)  # reset drops the tokens
        after = customers(http, base).json()
        assert [(c["Number"], c["Name"], c["OrganizationNumber"]) for c in after] == [
            (10_000, "Nordlys Catering AS", "915000001")
        ]
        assert http.post(base + "/Customers", json={"Name": "Ny AS"}).json()["Number"] == 10_001
    with running(create_app(state_path=state)) as server:
        http, base = logged_in(server), server.url + "/v2"
        assert [c["Number"] for c in customers(http, base).json()] == [10_000, 10_001]
