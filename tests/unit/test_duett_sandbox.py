"""The Duett sandbox over real HTTP: auth, registers, filters, voucher rules, faults, state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests

from kassebro.sandbox.duett import (
    CLIENT_HEADER,
    DEMO_CLIENT_KEY,
    DEMO_INTEGRATION_KEY,
    INTEGRATION_HEADER,
    create_app,
)
from kassebro.sandbox.server import running

HEADERS = {INTEGRATION_HEADER: DEMO_INTEGRATION_KEY, CLIENT_HEADER: DEMO_CLIENT_KEY}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


@pytest.fixture(scope="module")
def server():
    with running(create_app()) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    requests.post(server.url + "/_sandbox/reset", timeout=5).raise_for_status()
    requests.put(server.url + "/_sandbox/lock", json={"locked_until": None}, timeout=5).raise_for_status()


def get(server, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=HEADERS, timeout=5)


def post(server, body: Any) -> requests.Response:
    return requests.post(server.url + "/Voucher/v2", json=body, headers=HEADERS, timeout=5)


def voucher(number: int = 1001, date: str = "2026-03-01", **changes: Any) -> dict[str, Any]:
    body = {
        "voucherNumber": number,
        "voucherDate": date,
        "text": "Dagsoppgjør [kassebro:shop12:2026-03-01]",
        "lines": [
            {"accountNumber": "1920", "amountGross": "1250.00", "vatCode": None},
            {"accountNumber": "3000", "amountGross": "-1000.00", "vatCode": "3"},
            {"accountNumber": "3030", "amountGross": "-250.00", "vatCode": "31"},
        ],
    }
    body.update(changes)
    return body


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS and body["status"] == status
    return body


def test_wrong_or_missing_keys_get_401_naming_the_header(server):
    bad = requests.get(
        server.url + "/system/v2/integration",
        headers={INTEGRATION_HEADER: "nope", CLIENT_HEADER: DEMO_CLIENT_KEY},
        timeout=5,
    )
    body = assert_problem(bad, 401)
    assert INTEGRATION_HEADER in body["detail"] and "nope" not in bad.text
    missing = requests.get(server.url + "/system/v2/integration", headers={INTEGRATION_HEADER: DEMO_INTEGRATION_KEY})
    assert CLIENT_HEADER in assert_problem(missing, 401)["detail"]


def test_integration_and_registers(server):
    info = get(server, "/system/v2/integration").json()
    assert info["clientName"] == "Demo Kiosk AS" and "Regnskap" in info["activeModules"]
    intervals = get(server, "/Register/v2/AccountIntervals", **{"filter[accountType][EQ]": "customer"}).json()
    assert [i["accountType"] for i in intervals] == ["customer"]
    accounts = get(server, "/Register/v2/Account", **{"filter[accountNumber][IN]": "1920,3000,9999"}).json()
    assert sorted(a["accountNumber"] for a in accounts) == ["1920", "3000"]
    codes = {v["standardTaxCode"] for v in get(server, "/Register/v2/VatCode").json()}
    assert {"3", "31", "33", "5", "6"} <= codes
    assert_problem(get(server, "/Register/v2/Account", **{"filter[accountNumber][XX]": "1"}), 400)


def test_post_read_back_and_list_by_year(server):
    created = post(server, voucher())
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["voucherYear"] == 2026 and [line["lineNumber"] for line in data["lines"]] == [1, 2, 3]
    assert data["lines"][1]["amountNetto"] == -800  # 1000 gross at 25 %
    assert get(server, f"/Voucher/v2/{data['id']}").json() == data
    listed = get(server, "/Voucher/v2", **{"filter[voucherYear][EQ]": "2026", "filter[voucherNumber][EQ]": "1001"})
    assert [v["id"] for v in listed.json()] == [data["id"]]
    assert get(server, "/Voucher/v2", **{"filter[voucherYear][EQ]": "2025"}).json() == []
    assert_problem(get(server, "/Voucher/v2"), 400)  # the year filter is required
    assert_problem(get(server, "/Voucher/v2/00000000-0000-0000-0000-000000000000"), 404)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"accountNumber": "1920", "amountGross": "1.00"}]}, "lines"),
        (
            {
                "lines": [
                    {"accountNumber": "9999", "amountGross": "1.00"},
                    {"accountNumber": "3000", "amountGross": "-1.00", "vatCode": "3"},
                ]
            },
            "lines[0].accountNumber",
        ),
        (
            {
                "lines": [
                    {"accountNumber": "1920", "amountGross": "1.00"},
                    {"accountNumber": "3000", "amountGross": "-1.00", "vatCode": "77"},
                ]
            },
            "lines[1].vatCode",
        ),
        (
            {
                "lines": [
                    {"accountNumber": "1920", "amountGross": "1.00"},
                    {"accountNumber": "3900", "amountGross": "0"},
                    {"accountNumber": "3000", "amountGross": "-1.00", "vatCode": "3"},
                ]
            },
            "lines[1].amountGross",
        ),
        ({"voucherNumber": None}, "voucherNumber"),
    ],
)
def test_voucher_rules_answer_validation_problem_details(server, changes, field):
    body = assert_problem(post(server, voucher(**changes)), 400)
    assert field in body["errors"]
    assert requests.get(server.url + "/_sandbox/vouchers", timeout=5).json()["vouchers"] == []


def test_duplicate_number_in_the_same_year_is_refused(server):
    assert post(server, voucher()).status_code == 201
    body = assert_problem(post(server, voucher(date="2026-12-31")), 400)
    assert "already exists in 2026" in body["errors"]["voucherNumber"][0]
    assert post(server, voucher(date="2027-01-01")).status_code == 201  # unique per year only


def test_duplicate_status_409_is_selectable():
    with running(create_app(duplicate_status=409)) as srv:
        assert post(srv, voucher()).status_code == 201
        assert_problem(post(srv, voucher()), 409)


def test_period_lock(server):
    requests.put(server.url + "/_sandbox/lock", json={"locked_until": "2026-03-31"}, timeout=5).raise_for_status()
    body = assert_problem(post(server, voucher(date="2026-03-31")), 400)
    assert "locked" in body["errors"]["voucherDate"][0]
    assert post(server, voucher(date="2026-04-01")).status_code == 201


def test_faults(server):
    url = server.url + "/_sandbox/faults"
    requests.post(url, json={"kind": "429", "path": "/system/v2/integration", "seconds": 3}, timeout=5)
    limited = get(server, "/system/v2/integration")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    requests.post(url, json={"kind": "500", "path": "/Voucher/v2", "method": "POST"}, timeout=5)
    assert_problem(post(server, voucher()), 500)
    requests.post(url, json={"kind": "save_then_drop", "path": "/Voucher/v2", "method": "POST"}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        post(server, voucher())
    assert len(requests.get(server.url + "/_sandbox/vouchers", timeout=5).json()["vouchers"]) == 1
    calls = requests.get(server.url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert [c["fault"] for c in calls] == ["429", "500", "save_then_drop"]
    assert calls[-1]["status"] is None and calls[-1]["saved_status"] == 201


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "duett.json"
    with running(create_app(state_path=state)) as srv:
        created = post(srv, voucher()).json()
    with running(create_app(state_path=state, locked_until=dt.date(2020, 1, 1))) as srv:
        assert get(srv, f"/Voucher/v2/{created['id']}").json() == created
        assert_problem(post(srv, voucher()), 400)  # the number is still taken


def test_list_by_voucher_date_range(server):
    for number, date in ((1, "2026-02-28"), (2, "2026-03-01"), (3, "2026-03-02"), (4, "2026-03-03")):
        assert post(server, voucher(number, date)).status_code == 201
    listed = get(
        server,
        "/Voucher/v2",
        **{
            "filter[voucherYear][EQ]": "2026",
            "filter[voucherDate][GTE]": "2026-03-01",
            "filter[voucherDate][LT]": "2026-03-03",
        },
    ).json()
    assert [v["voucherNumber"] for v in listed] == [2, 3]
    closed = get(server, "/Voucher/v2", **{"filter[voucherYear][EQ]": "2026", "filter[voucherDate][LTE]": "2026-03-01"})
    assert [v["voucherNumber"] for v in closed.json()] == [1, 2]


# ---- VAT: the sandbox's own rule, not kassebro's ----------------------------------------------
#
# A line is written gross; amountNetto is gross less the VAT at the line's VAT code, gross x rate /
# (100 + rate), rounded half up per line (INFERRED, see `duett.line_vat`). At 25 % and 15 % a
# whole-øre gross never holds exactly half an øre of VAT, so the case is at 12 %: 1000.02 x 12/112
# = 107.145 -> 107.15, amountNetto -892.87. Rounding the net first, half to even, or cutting off
# would each give -892.88.


def test_amount_netto_takes_a_half_ore_of_vat_up_per_line(server):
    lines = [
        {"accountNumber": "1920", "amountGross": "1000.02", "vatCode": None},
        {"accountNumber": "3040", "amountGross": "-1000.02", "vatCode": "33"},
    ]
    created = post(server, voucher(lines=lines))
    assert created.status_code == 201, created.text
    netto = [Decimal(str(line["amountNetto"])) for line in created.json()["lines"]]
    assert netto == [Decimal("1000.02"), Decimal("-892.87")]


def test_line_vat_is_the_sandboxs_own_rule():
    from kassebro.sandbox.duett import VAT_CODES, line_vat

    by_code = {v.code: v for v in VAT_CODES}
    assert line_vat(100000, by_code["3"]) == 20000
    assert line_vat(25000, by_code["31"]) == 3261  # 32.608...
    assert line_vat(100002, by_code["33"]) == 10715  # 107.145
    assert line_vat(-100002, by_code["33"]) == -10715
    assert line_vat(100002, None) == 0
