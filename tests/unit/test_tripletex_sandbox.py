"""The Tripletex sandbox, over real HTTP: shapes against the official spec, rules, faults."""

from __future__ import annotations

import base64
import datetime as dt
import json
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
from fastapi.routing import APIRoute

from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import (
    CHART,
    DEMO_CLIENT_COMPANIES,
    DEMO_COMPANY,
    DEMO_CONSUMER_TOKEN,
    DEMO_EMPLOYEE_TOKEN,
    DEMO_FIRM,
    DEMO_FIRM_EMPLOYEE_TOKEN,
    Account,
    Company,
    apply_fields,
    create_app,
    parse_fields,
)

# The vendored official spec (tests/contracts/specs, see ORIGIN.md): a missing file fails, never skips.
SPEC_PATH = Path(__file__).resolve().parents[1] / "contracts" / "specs" / "tripletex" / "openapi.json"

ROW0_MESSAGE = (
    "Posteringene på rad 0 (guiRow 0) er systemgenererte og kan ikke opprettes eller endres på utsiden av Tripletex."
)


# ---- spec helpers ---------------------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    with open(SPEC_PATH, encoding="utf-8", errors="replace") as fh:
        return json.load(fh)


@cache
def validator(schema_name: str) -> jsonschema.Draft7Validator:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": spec()["components"]}
    return jsonschema.Draft7Validator(root)


def strip_nulls(value: Any) -> Any:
    """The real API returns null for absent values, which OpenAPI 3.0 types do not allow."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def assert_schema(instance: Any, schema_name: str) -> None:
    errors = sorted(validator(schema_name).iter_errors(strip_nulls(instance)), key=str)
    assert not errors, f"{schema_name}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


def response_schema(path: str, method: str, status: str) -> str:
    content = spec()["paths"][path][method]["responses"][status]["content"]
    ref = next(iter(content.values()))["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    extra = Account(999_000_001, 3050, "Salgsinntekt, takeaway (test)", "31", False)
    app = create_app(extra_accounts=[extra])
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    app, server = sandbox
    requests.post(server.url + "/_sandbox/reset", timeout=5).raise_for_status()
    yield


@pytest.fixture
def api(sandbox):
    return sandbox[1].url + "/v2"


@pytest.fixture
def store(sandbox):
    return sandbox[0].state.store


def tomorrow() -> str:
    return (dt.date.today() + dt.timedelta(days=1)).isoformat()


@pytest.fixture
def auth(api) -> dict[str, str]:
    r = requests.post(
        api + "/token/session/:create",
        json={
            "consumerToken": DEMO_CONSUMER_TOKEN,
            "employeeToken": DEMO_EMPLOYEE_TOKEN,
            "expirationDate": tomorrow(),
        },
        timeout=5,
    )
    assert r.status_code == 201, r.text
    token = r.json()["value"]["token"]
    return {"Authorization": "Basic " + base64.b64encode(f"0:{token}".encode()).decode()}


def ids(api: str, auth: dict[str, str]) -> tuple[dict[int, int], dict[str, int]]:
    accounts = requests.get(api + "/ledger/account", headers=auth, timeout=5).json()["values"]
    vats = requests.get(api + "/ledger/vatType", headers=auth, timeout=5).json()["values"]
    return {a["number"]: a["id"] for a in accounts}, {v["number"]: v["id"] for v in vats}


def voucher_body(api, auth, **overrides: Any) -> dict[str, Any]:
    acc, vat = ids(api, auth)
    body = {
        "date": "2026-03-01",
        "description": "POS dagsoppgjør butikk 12",
        "externalVoucherNumber": "kassebro:shop12:2026-03-01",
        "postings": [
            {"row": 1, "date": "2026-03-01", "description": "Bankkort", "account": {"id": acc[1920]},
             "amountGross": Decimal("1250.00"), "amountGrossCurrency": Decimal("1250.00")},
            {"row": 2, "date": "2026-03-01", "description": "Vipps", "account": {"id": acc[1940]},
             "amountGross": Decimal("250.00"), "amountGrossCurrency": Decimal("250.00")},
            {"row": 3, "date": "2026-03-01", "description": "Salg 25%", "account": {"id": acc[3000]},
             "vatType": {"id": vat["3"]}, "amountGross": Decimal("-1250.00"),
             "amountGrossCurrency": Decimal("-1250.00"), "department": {"id": 70_001}},
            {"row": 4, "date": "2026-03-01", "description": "Salg 15%", "account": {"id": acc[3030]},
             "vatType": {"id": vat["31"]}, "amountGross": Decimal("-250.00"),
             "amountGrossCurrency": Decimal("-250.00"), "project": {"id": 80_101}},
        ],
    }  # fmt: skip
    body.update(overrides)
    return body


def post(api, auth, body, send_to_ledger: bool | None = None) -> requests.Response:
    params = {} if send_to_ledger is None else {"sendToLedger": str(send_to_ledger).lower()}
    payload = json.dumps(body, default=lambda d: float(d) if isinstance(d, Decimal) else d)
    return requests.post(
        api + "/ledger/voucher",
        params=params,
        data=payload,
        headers={**auth, "Content-Type": "application/json"},
        timeout=5,
    )


def assert_error(r: requests.Response, status: int, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert_schema(body, "ApiError")
    assert set(body) == {
        "status", "code", "message", "link", "developerMessage", "validationMessages", "requestId"
    }  # fmt: skip
    assert body["status"] == status and body["code"] == code
    assert r.headers["x-tlx-request-id"] == body["requestId"]
    return body


# ---- shapes ---------------------------------------------------------------------------------


def test_every_served_path_is_in_the_spec(sandbox):
    app, _ = sandbox
    normalise = lambda p: re.sub(r"\{[^}]+\}", "{}", p)  # noqa: E731
    spec_paths = {normalise(p): {m.upper() for m in ops} for p, ops in spec()["paths"].items()}
    served = [
        (route.path.removeprefix("/v2"), method)
        for route in app.routes
        if isinstance(route, APIRoute) and route.path.startswith("/v2/")
        for method in route.methods
    ]
    assert len(served) >= 17
    missing = [(p, m) for p, m in served if m not in spec_paths.get(normalise(p), set())]
    assert not missing


def test_session_create_post_and_put(api):
    r = requests.post(
        api + "/token/session/:create",
        json={
            "consumerToken": DEMO_CONSUMER_TOKEN,
            "employeeToken": DEMO_EMPLOYEE_TOKEN,
            "expirationDate": tomorrow(),
        },
        timeout=5,
    )
    assert r.status_code == 201
    assert_schema(r.json(), response_schema("/token/session/:create", "post", "201"))
    assert r.json()["value"]["token"] and r.json()["value"]["expirationDate"] == tomorrow()
    assert DEMO_EMPLOYEE_TOKEN not in r.text and DEMO_CONSUMER_TOKEN not in r.text

    r = requests.put(
        api + "/token/session/:create",
        params={
            "consumerToken": DEMO_CONSUMER_TOKEN,
            "employeeToken": DEMO_EMPLOYEE_TOKEN,
            "expirationDate": tomorrow(),
        },
        timeout=5,
    )
    assert r.status_code == 200
    assert_schema(r.json(), response_schema("/token/session/:create", "put", "200"))


def test_session_create_rejects_bad_tokens_like_tripletex(api, sandbox):
    r = requests.post(
        api + "/token/session/:create",
        json={"consumerToken": "nope", "employeeToken": DEMO_EMPLOYEE_TOKEN, "expirationDate": tomorrow()},
        timeout=5,
    )
    body = assert_error(r, 422, 18000)
    assert body["validationMessages"][0]["field"] == "arg:consumerToken"

    # A bad employee token is not a 401 in Tripletex.
    r = requests.post(
        api + "/token/session/:create",
        json={"consumerToken": DEMO_CONSUMER_TOKEN, "employeeToken": "nope", "expirationDate": tomorrow()},
        timeout=5,
    )
    assert_error(r, 404, 6000)

    # Tokens in a legacy PUT query never reach the call log.
    requests.put(
        api + "/token/session/:create",
        params={"consumerToken": "secret-c", "employeeToken": "secret-e", "expirationDate": tomorrow()},
        timeout=5,
    )
    log = json.dumps(requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json())
    assert "secret-c" not in log and "secret-e" not in log
    assert DEMO_EMPLOYEE_TOKEN not in log


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        "Basic " + base64.b64encode(b"0:not-a-session").decode(),
        "Basic " + base64.b64encode(b"oma@example.com:x").decode(),
    ],
)
def test_bad_auth_is_401_with_the_error_body(api, header):
    headers = {"Authorization": header} if header else {}
    r = requests.get(api + "/ledger/account", headers=headers, timeout=5)
    assert_error(r, 401, 3000)


def test_lookup_shapes(api, auth):
    r = requests.get(
        api + "/ledger/account",
        params={"number": "3000,1920", "fields": "id,number,vatType(id,number),vatLocked"},
        headers=auth,
        timeout=5,
    )
    assert r.status_code == 200
    body = r.json()
    assert_schema(body, response_schema("/ledger/account", "get", "200"))
    assert {"fullResultSize", "from", "count", "versionDigest", "values"} <= set(body)
    by_number = {a["number"]: a for a in body["values"]}
    assert set(by_number) == {1920, 3000}
    assert by_number[3000]["vatLocked"] is True
    assert by_number[3000]["vatType"]["number"] == "3"
    assert by_number[3000]["id"] != 3000

    r = requests.get(api + "/ledger/vatType", params={"number": "3,31,33"}, headers=auth, timeout=5)
    assert_schema(r.json(), response_schema("/ledger/vatType", "get", "200"))
    percent = {v["number"]: Decimal(str(v["percentage"])) for v in r.json()["values"]}
    assert percent == {"3": 25, "31": 15, "33": 12}

    r = requests.get(api + "/token/session/>whoAmI", headers=auth, timeout=5)
    assert_schema(r.json(), response_schema("/token/session/>whoAmI", "get", "200"))
    assert r.json()["value"]["companyId"]

    for path, schema_path in (("/department", "/department"), ("/project", "/project")):
        r = requests.get(api + path, headers=auth, timeout=5)
        assert_schema(r.json(), response_schema(schema_path, "get", "200"))

    r = requests.get(api + "/ledger/account", params={"from": 2, "count": 3}, headers=auth, timeout=5)
    assert r.json()["from"] == 2 and r.json()["count"] == 3
    assert r.json()["fullResultSize"] == len(CHART) + 1


def test_voucher_round_trip_with_generated_vat_rows(api, auth, store):
    r = post(api, auth, voucher_body(api, auth))
    assert r.status_code == 201, r.text
    assert_schema(r.json(), response_schema("/ledger/voucher", "post", "201"))
    created = r.json()["value"]
    # Without `fields`, nested objects are references, as in the real API.
    assert set(created["postings"][0]) == {"id", "url"}
    assert created["number"] == 1 and created["year"] == 2026

    r = requests.get(
        api + f"/ledger/voucher/{created['id']}",
        params={"fields": "*,postings(*,account(id,number),vatType(id,number))"},
        headers=auth,
        timeout=5,
    )
    assert_schema(r.json(), response_schema("/ledger/voucher/{id}", "get", "200"))
    postings = r.json()["value"]["postings"]
    rows = [
        (p["row"], p["account"]["number"], str(p["amount"]), str(p["amountGross"]), p["vatType"]["number"])
        for p in postings
    ]
    assert rows == [
        (1, 1920, "1250.0", "1250.0", "0"),
        (2, 1940, "250.0", "250.0", "0"),
        (3, 3000, "-1000.0", "-1250.0", "3"),
        (0, 2700, "-250.0", "-250.0", "3"),
        (4, 3030, "-217.39", "-250.0", "31"),
        (0, 2701, "-32.61", "-32.61", "31"),
    ]
    assert sum(Decimal(str(p["amount"])) for p in postings) == 0
    assert [p["systemGenerated"] for p in postings if p["row"] == 0] == [True, True]
    assert postings[2]["department"]["id"] == 70_001 and postings[4]["project"]["id"] == 80_101

    # The raw JSON carries exactly two decimals (no float round trip).
    assert '"amountGross":-1250.00' in r.text

    r = requests.get(
        api + "/ledger/voucher/>externalVoucherNumber",
        params={"externalVoucherNumber": "kassebro:shop12:2026-03-01"},
        headers=auth,
        timeout=5,
    )
    assert_schema(r.json(), response_schema("/ledger/voucher/>externalVoucherNumber", "get", "200"))
    assert [v["id"] for v in r.json()["values"]] == [created["id"]]

    r = requests.get(
        api + "/ledger/posting",
        params={"dateFrom": "2026-03-01", "dateTo": "2026-03-02", "fields": "*"},
        headers=auth,
        timeout=5,
    )
    assert_schema(r.json(), response_schema("/ledger/posting", "get", "200"))
    assert len(r.json()["values"]) == 6

    assert store.voucher(created["id"]).external_voucher_number == "kassebro:shop12:2026-03-01"
    admin = requests.get(api.removesuffix("/v2") + "/_sandbox/vouchers", timeout=5).json()
    assert [v["id"] for v in admin["vouchers"]] == [created["id"]]


def test_voucher_search_date_to_is_exclusive_and_numbers_run_per_year(api, auth):
    for day in ("2026-03-01", "2026-03-02", "2027-01-05"):
        body = voucher_body(api, auth, date=day, externalVoucherNumber=f"ref:{day}")
        for p in body["postings"]:
            p["date"] = day
        assert post(api, auth, body).status_code == 201
    r = requests.get(
        api + "/ledger/voucher",
        params={"dateFrom": "2026-03-01", "dateTo": "2026-03-02"},
        headers=auth,
        timeout=5,
    )
    assert_schema(r.json(), response_schema("/ledger/voucher", "get", "200"))
    assert [v["date"] for v in r.json()["values"]] == ["2026-03-01"]
    r = requests.get(
        api + "/ledger/voucher",
        params={"dateFrom": "2026-01-01", "dateTo": "2028-01-01", "fields": "number,year"},
        headers=auth,
        timeout=5,
    )
    assert [(v["number"], v["year"]) for v in r.json()["values"]] == [(1, 2026), (2, 2026), (1, 2027)]
    r = requests.get(api + "/ledger/voucher", params={"dateFrom": "2026-01-01"}, headers=auth, timeout=5)
    assert_error(r, 422, 18000)


def _row0(body):
    body["postings"][0]["row"] = 0


def _unbalanced(body):
    body["postings"][0]["amountGross"] = body["postings"][0]["amountGrossCurrency"] = Decimal("1249.99")


def _unknown_account(body):
    body["postings"][1]["account"] = {"id": 123}


def _vat_locked(body):
    body["postings"][2]["vatType"] = {"id": 6005}  # 31 on 3000, which is locked to 3


def _no_postings(body):
    body["postings"] = []


def _three_decimals(body):
    body["postings"][0]["amountGross"] = body["postings"][0]["amountGrossCurrency"] = Decimal("1250.001")


def _missing_row(body):
    del body["postings"][1]["row"]


def _customer_ledger(body):
    body["postings"][1]["account"] = {"id": CHART[0].id}  # 1500 needs a customer


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (_row0, "postings.row", ROW0_MESSAGE),
        (_unbalanced, "postings", "Summen av posteringene for 2026-03-01 er ikke lik 0."),
        (_unknown_account, "postings.account.id", "Kontoen med id 123 finnes ikke."),
        (_vat_locked, "postings.vatType.id", "er låst til mva-kode 3"),
        (_no_postings, "postings", "Et bilag kan ikke registreres uten posteringer."),
        (_three_decimals, "postings.amountGross", "2 desimaler"),
        (_missing_row, "postings.row", "Kan ikke være null."),
        (_customer_ledger, "postings.customer.id", "Kunde mangler."),
    ],
)
def test_voucher_rules(api, auth, store, mutate, field, message):
    body = voucher_body(api, auth)
    mutate(body)
    r = post(api, auth, body)
    error = assert_error(r, 422, 18000)
    assert error["message"] == "Validering feilet."
    assert any(m["field"] == field and message in m["message"] for m in error["validationMessages"]), error
    assert store.list_vouchers() == []


def test_bad_json_is_422(api, auth):
    r = requests.post(
        api + "/ledger/voucher",
        data=b"{not json",
        headers={**auth, "Content-Type": "application/json"},
        timeout=5,
    )
    assert_error(r, 422, 22000)
    assert_error(requests.get(api + "/ledger/voucher/42", headers=auth, timeout=5), 404, 6000)
    assert_error(requests.get(api + "/no/such/path", headers=auth, timeout=5), 404, 6000)


def test_not_sent_to_ledger_waits_in_non_posted(api, auth):
    r = post(api, auth, voucher_body(api, auth), send_to_ledger=False)
    value = r.json()["value"]
    assert value["number"] == 0 and value["tempNumber"] == 1
    r = requests.get(api + "/ledger/voucher/>nonPosted", headers=auth, timeout=5)
    assert_schema(r.json(), response_schema("/ledger/voucher/>nonPosted", "get", "200"))
    assert [v["id"] for v in r.json()["values"]] == [value["id"]]
    r = requests.get(
        api + "/ledger/voucher", params={"dateFrom": "2026-01-01", "dateTo": "2027-01-01"}, headers=auth, timeout=5
    )
    assert r.json()["values"] == []
    assert (
        requests.get(  # postings of unposted vouchers are not in the ledger
            api + "/ledger/posting", params={"dateFrom": "2026-01-01", "dateTo": "2027-01-01"}, headers=auth, timeout=5
        ).json()["values"]
        == []
    )

    r = requests.put(
        api + f"/ledger/voucher/{value['id']}/:sendToLedger",
        params={"version": value["version"], "number": 0},
        headers=auth,
        timeout=5,
    )
    assert r.status_code == 200 and r.json()["value"]["number"] == 1
    assert requests.get(api + "/ledger/voucher/>nonPosted", headers=auth, timeout=5).json()["values"] == []


def test_reverse_and_delete(api, auth, store):
    created = post(api, auth, voucher_body(api, auth)).json()["value"]
    r = requests.put(
        api + f"/ledger/voucher/{created['id']}/:reverse", params={"date": "2026-03-05"}, headers=auth, timeout=5
    )
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/ledger/voucher/{id}/:reverse", "put", "200"))
    reversal = store.voucher(r.json()["value"]["id"])
    original = store.voucher(created["id"])
    assert original.reverse_voucher_id == reversal.id and reversal.reverse_voucher_id == original.id
    assert sorted(p.gross for p in reversal.postings) == sorted(-p.gross for p in original.postings)
    again = requests.put(
        api + f"/ledger/voucher/{created['id']}/:reverse", params={"date": "2026-03-05"}, headers=auth, timeout=5
    )
    assert_error(again, 422, 18000)

    r = requests.delete(api + f"/ledger/voucher/{reversal.id}", headers=auth, timeout=5)
    assert r.status_code == 204
    assert [v.id for v in store.list_vouchers()] == [created["id"]]


def test_fields_filter():
    tree = parse_fields("id,postings(row,account(id,number)),*")
    value = {
        "id": 1,
        "date": "2026-03-01",
        "voucherType": {"id": 9, "url": "u", "name": "x"},
        "postings": [{"id": 7, "url": "p", "row": 1, "amount": 5, "account": {"id": 2, "url": "u", "number": 1920}}],
    }
    assert apply_fields(value, tree) == {
        "id": 1,
        "date": "2026-03-01",
        "voucherType": {"id": 9, "url": "u"},
        "postings": [{"row": 1, "account": {"id": 2, "number": 1920}}],
    }
    # No filter: top level in full, nested objects as references.
    assert apply_fields(value, parse_fields("")) == {
        "id": 1,
        "date": "2026-03-01",
        "voucherType": {"id": 9, "url": "u"},
        "postings": [{"id": 7, "url": "p"}],
    }
    assert apply_fields(value, parse_fields("postings(*)"))["postings"] == [
        {"id": 7, "url": "p", "row": 1, "amount": 5, "account": {"id": 2, "url": "u"}}
    ]


# ---- faults ---------------------------------------------------------------------------------


def add_fault(sandbox, **fault):
    r = requests.post(sandbox[1].url + "/_sandbox/faults", json=fault, timeout=5)
    assert r.status_code == 201, r.text


def test_fault_429_has_rate_limit_headers_then_recovers(sandbox, api, auth):
    add_fault(sandbox, path="/ledger/account", method="GET", kind="429", seconds=7)
    r = requests.get(api + "/ledger/account", headers=auth, timeout=5)
    assert_error(r, 429, 0)
    assert r.headers["X-Rate-Limit-Remaining"] == "0"
    assert r.headers["X-Rate-Limit-Reset"] == "7"
    assert int(r.headers["X-Rate-Limit-Limit"]) > 0
    assert requests.get(api + "/ledger/account", headers=auth, timeout=5).status_code == 200


def test_fault_500_and_delay(sandbox, api, auth):
    add_fault(sandbox, path="/ledger/*", kind="500", times=2)
    for _ in range(2):
        assert_error(requests.get(api + "/ledger/vatType", headers=auth, timeout=5), 500, 1000)
    assert requests.get(api + "/ledger/vatType", headers=auth, timeout=5).status_code == 200

    add_fault(sandbox, path="/ledger/vatType", kind="delay", seconds=0.3)
    start = time.monotonic()
    assert requests.get(api + "/ledger/vatType", headers=auth, timeout=5).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_fault_save_then_drop_stores_and_gives_no_answer(sandbox, api, auth, store):
    add_fault(sandbox, path="/ledger/voucher", method="POST", kind="save_then_drop")
    with pytest.raises(requests.ConnectionError):
        post(api, auth, voucher_body(api, auth))
    [voucher] = store.list_vouchers()
    assert voucher.external_voucher_number == "kassebro:shop12:2026-03-01"
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    dropped = [c for c in calls if c["fault"] == "save_then_drop"]
    assert dropped and dropped[0]["status"] is None and dropped[0]["saved_status"] == 201
    # The next call works (the server is fine, only that connection was dropped).
    assert post(api, auth, voucher_body(api, auth, externalVoucherNumber="x")).status_code == 201


def test_call_log_and_admin_listing(sandbox, api, auth):
    requests.get(api + "/ledger/vatType", params={"number": "3"}, headers=auth, timeout=5)
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/token/session/:create", 201),
        ("GET", "/ledger/vatType", 200),
    ]
    assert "body" not in calls[0]  # token bodies are never logged
    faults = requests.get(sandbox[1].url + "/_sandbox/faults", timeout=5).json()
    assert faults == {"faults": []}


def test_optional_rate_limit_counts_calls_with_the_real_headers():
    with running(create_app(rate_limit=(2, 60))) as server:
        api = server.url + "/v2"
        statuses = []
        for _ in range(3):
            r = requests.get(api + "/ledger/account", timeout=5)  # 401s count too
            statuses.append((r.status_code, r.headers["X-Rate-Limit-Remaining"]))
        assert statuses == [(401, "1"), (401, "0"), (429, "0")]
        assert 0 < int(r.headers["X-Rate-Limit-Reset"]) <= 60


# ---- accounting firms: several companies, each with its own books ---------------------------

BAKERY = DEMO_CLIENT_COMPANIES[0]


def login(api: str, employee_token: str, user: int | str = 0) -> dict[str, str]:
    r = requests.post(
        api + "/token/session/:create",
        json={"consumerToken": DEMO_CONSUMER_TOKEN, "employeeToken": employee_token, "expirationDate": tomorrow()},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    token = r.json()["value"]["token"]
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def as_user(auth: dict[str, str], user: int | str) -> dict[str, str]:
    """The same session, acting for another company (Basic username)."""
    token = base64.b64decode(auth["Authorization"].removeprefix("Basic ")).decode().partition(":")[2]
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def company_body(api: str, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """voucher_body with the department and project ids of the company `auth` acts for."""
    body = voucher_body(api, auth, **overrides)
    deps = requests.get(api + "/department", params={"departmentNumber": "1"}, headers=auth, timeout=5)
    projs = requests.get(api + "/project", params={"number": "100"}, headers=auth, timeout=5)
    [dep], [proj] = deps.json()["values"], projs.json()["values"]
    body["postings"][2]["department"] = {"id": dep["id"]}
    body["postings"][3]["project"] = {"id": proj["id"]}
    return body


def test_with_login_access_lists_the_firms_clients(api):
    firm = login(api, DEMO_FIRM_EMPLOYEE_TOKEN)
    r = requests.get(api + "/company/>withLoginAccess", headers=firm, timeout=5)
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/company/>withLoginAccess", "get", "200"))
    body = r.json()
    assert {"fullResultSize", "from", "count", "versionDigest", "values"} <= set(body)
    assert body["fullResultSize"] == body["count"] == 3
    assert {(c["id"], c["organizationNumber"]) for c in body["values"]} == {
        (DEMO_COMPANY.id, DEMO_COMPANY.organization_number),
        *((c.id, c.organization_number) for c in DEMO_CLIENT_COMPANIES),
    }
    r = requests.get(
        api + "/company/>withLoginAccess", params={"fields": "id,organizationNumber"}, headers=firm, timeout=5
    )
    assert all(set(c) == {"id", "organizationNumber"} for c in r.json()["values"])
    # A company's own employee token reaches no clients.
    kiosk = login(api, DEMO_EMPLOYEE_TOKEN)
    assert requests.get(api + "/company/>withLoginAccess", headers=kiosk, timeout=5).json()["values"] == []


def test_basic_user_must_be_a_company_the_employee_may_log_in_to(api):
    firm = login(api, DEMO_FIRM_EMPLOYEE_TOKEN)
    for user in (0, DEMO_FIRM.id, BAKERY.id, DEMO_COMPANY.id):
        assert requests.get(api + "/ledger/vatType", headers=as_user(firm, user), timeout=5).status_code == 200
    assert_error(requests.get(api + "/ledger/vatType", headers=as_user(firm, 12345), timeout=5), 403, 9000)
    kiosk = login(api, DEMO_EMPLOYEE_TOKEN)
    assert_error(requests.get(api + "/ledger/vatType", headers=as_user(kiosk, BAKERY.id), timeout=5), 403, 9000)
    # A bad session is still 401, whatever the company.
    assert_error(requests.get(api + "/ledger/vatType", headers=as_user(firm, "x"), timeout=5), 401, 3000)

    r = requests.get(api + "/token/session/>whoAmI", headers=as_user(firm, BAKERY.id), timeout=5)
    assert_schema(r.json(), response_schema("/token/session/>whoAmI", "get", "200"))
    value = r.json()["value"]
    assert value["companyId"] == BAKERY.id and value["employeeId"] == DEMO_FIRM.employee_id
    assert value["employeeIsProxy"] is True


def test_each_company_has_its_own_books_and_ids(api, store):
    firm = login(api, DEMO_FIRM_EMPLOYEE_TOKEN)
    bakery, kiosk = as_user(firm, BAKERY.id), login(api, DEMO_EMPLOYEE_TOKEN)
    bakery_accounts, _ = ids(api, bakery)
    kiosk_accounts, _ = ids(api, kiosk)
    assert set(bakery_accounts) == set(kiosk_accounts)
    assert not set(bakery_accounts.values()) & set(kiosk_accounts.values())

    r = post(api, bakery, company_body(api, bakery))
    assert r.status_code == 201, r.text
    created = r.json()["value"]
    assert created["number"] == 1
    assert [v.id for v in store.list_vouchers(BAKERY.id)] == [created["id"]]
    assert store.list_vouchers() == [] and store.list_vouchers(DEMO_FIRM.id) == []
    # Another company's voucher is not there for the kiosk, nor for the firm's own books.
    assert_error(requests.get(api + f"/ledger/voucher/{created['id']}", headers=kiosk, timeout=5), 404, 6000)
    assert_error(requests.get(api + f"/ledger/voucher/{created['id']}", headers=firm, timeout=5), 404, 6000)
    found = requests.get(
        api + "/ledger/voucher/>externalVoucherNumber",
        params={"externalVoucherNumber": "kassebro:shop12:2026-03-01"},
        headers=kiosk,
        timeout=5,
    ).json()["values"]
    assert found == []
    # Numbers run per company: the kiosk's first voucher is number 1 too.
    assert post(api, kiosk, voucher_body(api, kiosk)).json()["value"]["number"] == 1

    # The kiosk's account ids do not exist in the bakery's chart.
    mixed = company_body(api, bakery, externalVoucherNumber="mixed")
    mixed["postings"][0]["account"] = {"id": kiosk_accounts[1920]}
    error = assert_error(post(api, bakery, mixed), 422, 18000)
    assert error["validationMessages"][0]["field"] == "postings.account.id"

    calls = requests.get(api.removesuffix("/v2") + "/_sandbox/calls", timeout=5).json()["calls"]
    posts = [c["user"] for c in calls if c["method"] == "POST" and c["path"] == "/ledger/voucher"]
    assert posts == [str(BAKERY.id), "0", str(BAKERY.id)]
    assert DEMO_FIRM_EMPLOYEE_TOKEN not in json.dumps(calls)
    admin = requests.get(api.removesuffix("/v2") + "/_sandbox/vouchers", params={"company_id": BAKERY.id}, timeout=5)
    assert [v["id"] for v in admin.json()["vouchers"]] == [created["id"]]


def test_post_voucher_answers_the_default_rendering_whatever_fields_says(api, auth):
    # The spec declares no `fields` on POST /ledger/voucher (it does on the GETs).
    declared = [p["name"] for p in spec()["paths"]["/ledger/voucher"]["post"].get("parameters", [])]
    assert "fields" not in declared
    payload = json.dumps(voucher_body(api, auth), default=lambda d: float(d) if isinstance(d, Decimal) else d)
    r = requests.post(
        api + "/ledger/voucher",
        params={"fields": "*,postings(*,account(id,number))"},
        data=payload,
        headers={**auth, "Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    assert all(set(p) == {"id", "url"} for p in r.json()["value"]["postings"])


def test_companies_are_checked_and_kept_across_a_restart(tmp_path):
    orphan = Company(id=1, name="Uten tilgang AS", organization_number="111111111", employee_id=2, login_access=(99,))
    with pytest.raises(ValueError, match="99"):
        create_app(employee_tokens={"t": orphan})
    state = tmp_path / "tripletex.json"
    with running(create_app(state_path=state)) as server:
        bakery = as_user(login(server.url + "/v2", DEMO_FIRM_EMPLOYEE_TOKEN), BAKERY.id)
        created = post(server.url + "/v2", bakery, company_body(server.url + "/v2", bakery)).json()["value"]
    store = create_app(state_path=state).state.store
    assert store.voucher(created["id"], BAKERY.id).number == 1
    assert store.list_vouchers() == []


# ---- persistence and the command line -------------------------------------------------------


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "tripletex.json"
    with running(create_app(state_path=state)) as server:
        api = server.url + "/v2"
        token = requests.post(
            api + "/token/session/:create",
            json={
                "consumerToken": DEMO_CONSUMER_TOKEN,
                "employeeToken": DEMO_EMPLOYEE_TOKEN,
                "expirationDate": tomorrow(),
            },
            timeout=5,
        ).json()["value"]["token"]
        auth = {"Authorization": "Basic " + base64.b64encode(f"0:{token}".encode()).decode()}
        created = post(api, auth, voucher_body(api, auth)).json()["value"]
    app = create_app(state_path=state)
    assert app.state.store.voucher(created["id"]).number == 1
    with running(app) as server:  # the session token still works, the number sequence goes on
        api = server.url + "/v2"
        again = post(api, auth, voucher_body(api, auth, externalVoucherNumber="next")).json()["value"]
        assert again["number"] == 2 and again["id"] > created["id"]


def test_command_line_serves_the_demo_tokens_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassebro.sandbox.tripletex", "--port", "0", "--log-level", "warning",
         "--state", str(tmp_path / "state.json")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+)/v2", line).group(1)
        r = requests.get(url + "/v2/ledger/account", timeout=5)
        assert r.status_code == 401 and r.json()["code"] == 3000
        # The tokens kassebro.demo.home and docker-compose use.
        r = requests.post(
            url + "/v2/token/session/:create",
            json={
                "consumerToken": "demo-consumer-token",
                "employeeToken": "demo-employee-token",
                "expirationDate": tomorrow(),
            },
            timeout=5,
        )
        assert r.status_code == 201
        assert (tmp_path / "state.json").exists()
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


# ---- VAT: the sandbox's own rule, not kassebro's ----------------------------------------------
#
# Tripletex generates the VAT row from amountGross and the vatType's percentage: VAT = gross x p /
# (100 + p), net (`amount`) = gross - VAT; the sandbox rounds the VAT itself half up per posting
# (INFERRED, see `tripletex.generated_vat`). At 25 % and 15 % the VAT in a whole-øre gross never
# ends in exactly half an øre (gross/5, 3 x gross/23), so the cases are at 12 %, where it does:
#   1000.02 x 12/112 = 107.145 -> 107.15 (net 892.87)
#      0.42 x 12/112 =   0.045 ->   0.05 (net 0.37)
# Rounding the net first, half to even, or cutting off would each give 107.14 and 0.04.


def test_generated_vat_rounds_a_half_ore_up_per_posting(api, auth):
    acc, vat = ids(api, auth)
    body = voucher_body(
        api,
        auth,
        postings=[
            {"row": 1, "date": "2026-03-01", "account": {"id": acc[1920]},
             "amountGross": Decimal("1000.02"), "amountGrossCurrency": Decimal("1000.02")},
            {"row": 2, "date": "2026-03-01", "account": {"id": acc[3040]}, "vatType": {"id": vat["33"]},
             "amountGross": Decimal("-1000.02"), "amountGrossCurrency": Decimal("-1000.02")},
            {"row": 3, "date": "2026-03-01", "account": {"id": acc[4300]}, "vatType": {"id": vat["13"]},
             "amountGross": Decimal("0.42"), "amountGrossCurrency": Decimal("0.42")},
            {"row": 4, "date": "2026-03-01", "account": {"id": acc[1920]},
             "amountGross": Decimal("-0.42"), "amountGrossCurrency": Decimal("-0.42")},
        ],
    )  # fmt: skip
    r = post(api, auth, body)
    assert r.status_code == 201, r.text
    r = requests.get(
        api + f"/ledger/voucher/{r.json()['value']['id']}",
        params={"fields": "*,postings(*,account(id,number))"},
        headers=auth,
        timeout=5,
    )
    rows = [(p["row"], p["account"]["number"], Decimal(str(p["amount"]))) for p in r.json()["value"]["postings"]]
    assert rows == [
        (1, 1920, Decimal("1000.02")),
        (2, 3040, Decimal("-892.87")),
        (0, 2702, Decimal("-107.15")),  # a credit's half øre goes away from zero too
        (3, 4300, Decimal("0.37")),
        (0, 2712, Decimal("0.05")),
        (4, 1920, Decimal("-0.42")),
    ]


def test_generated_vat_is_the_sandboxs_own_rule():
    from kassebro.sandbox.tripletex import VAT_TYPES, generated_vat

    by_number = {v.number: v for v in VAT_TYPES}
    # 25 % and 15 %: exact or plainly nearest (no half øre can occur); 12 %: half an øre, up.
    assert generated_vat(125000, by_number["3"]) == 25000
    assert generated_vat(25000, by_number["31"]) == 3261  # 32.608...
    assert generated_vat(100002, by_number["33"]) == 10715  # 107.145
    assert generated_vat(-100002, by_number["33"]) == -10715
    assert generated_vat(14, by_number["33"]) == 2  # 1.5 øre
    assert generated_vat(100002, by_number["5"]) == 0  # no VAT account, no VAT row
