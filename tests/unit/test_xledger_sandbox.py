"""The Xledger GraphQL sandbox over real HTTP: auth, the import rules, errors in 200, faults."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from kassebro.sandbox.server import running
from kassebro.sandbox.xledger import DEMO_TOKEN, MAX_IMPORT_ITEMS, create_app, parse_operation

AUTH = {"Authorization": f"token {DEMO_TOKEN}"}

# The example from apis.md §4, verbatim.
APIS_MD_EXAMPLE = """mutation { addGLImportItems(inputs:[
 {node:{trRegNumber:20260301,postedDate:"2026-03-01",transactionSource:{code:"GL"},account:{code:"1920"},amount:"1250.00",text:"POS kort",glObject1:{code:"12"},extIdentifier:"pos-12-2026-03-01"}},
 {node:{trRegNumber:20260301,postedDate:"2026-03-01",transactionSource:{code:"GL"},account:{code:"3000"},amount:"-1250.00",taxRule:{code:"3"},text:"Salg 25%",glObject1:{code:"12"},extIdentifier:"pos-12-2026-03-01"}}
]){ edges { node { dbId } } } }"""  # noqa: E501

ADD = (
    "mutation Add($inputs: [AddGLImportItemsInput!]!) { addGLImportItems(inputs: $inputs) { edges { node { dbId } } } }"
)


@pytest.fixture(scope="module")
def sandbox():
    app = create_app(tax_rules={"0": "none", "2": "25", "3": "25 (as in apis.md's example)", "21": "15"})
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    sandbox[0].state.store.reject_duplicates = False
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()


def gql(sandbox, query: str, variables: dict[str, Any] | None = None, headers=None) -> requests.Response:
    return requests.post(
        sandbox[1].url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=AUTH if headers is None else headers,
        timeout=5,
    )


def node(account: str, amount: str, ext: str = "ref-1", **extra: Any) -> dict[str, Any]:
    return {
        "node": {
            "trRegNumber": 20260301,
            "postedDate": "2026-03-01",
            "transactionSource": {"code": "GL"},
            "account": {"code": account},
            "amount": amount,
            "extIdentifier": ext,
            **extra,
        }
    }


def test_parse_operation_reads_literals_and_variables():
    op, field, args = parse_operation(APIS_MD_EXAMPLE)
    assert (op, field) == ("mutation", "addGLImportItems")
    assert args["inputs"][1]["node"]["taxRule"] == {"code": "3"}
    assert args["inputs"][0]["node"]["trRegNumber"] == 20260301
    assert parse_operation(
        "query Q($n: Int) { accounts(first: $n, ownerSet: LOWER) { edges { cursor } } }", {"n": 3}
    ) == (
        "query",
        "accounts",
        {"first": 3, "ownerSet": "LOWER"},
    )


def test_documented_example_is_accepted(sandbox):
    response = gql(sandbox, APIS_MD_EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    edges = body["data"]["addGLImportItems"]["edges"]
    assert len(edges) == 2 and all(isinstance(e["node"]["dbId"], int) for e in edges)
    vouchers = requests.get(sandbox[1].url + "/_sandbox/vouchers", timeout=5).json()["vouchers"]
    assert [v["extIdentifier"] for v in vouchers] == ["pos-12-2026-03-01"]


def test_typename_connection_test(sandbox):
    assert gql(sandbox, "query { __typename }").json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 200), ({"Authorization": "Bearer x"}, 200), ({"Authorization": "token wrong"}, 401)],
)
def test_bad_token(sandbox, headers, status):
    response = gql(sandbox, "query { __typename }", headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_unbalanced_unknown_account_and_tax_rule_are_errors_in_200(sandbox):
    response = gql(sandbox, ADD, {"inputs": [node("1920", "100.00"), node("3000", "-99.00")]})
    assert response.status_code == 200
    assert "do not balance" in response.json()["errors"][0]["message"]
    response = gql(sandbox, ADD, {"inputs": [node("1921", "1.00"), node("3000", "-1.00", taxRule={"code": "99"})]})
    messages = " ".join(e["message"] for e in response.json()["errors"])
    assert "'1921' does not exist" in messages and "'99' does not exist" in messages
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_VALUE"
    assert sandbox[0].state.store.items == []


def test_more_than_500_items_is_refused(sandbox):
    inputs = [node("1920", "1.00") for _ in range(MAX_IMPORT_ITEMS)] + [node("3000", f"-{MAX_IMPORT_ITEMS}.00")]
    errors = gql(sandbox, ADD, {"inputs": inputs}).json()["errors"]
    assert "at most 500" in errors[0]["message"]


def test_split_group_balances_once_complete(sandbox):
    first = gql(sandbox, ADD, {"inputs": [node("1920", "3.00", "r#1/3"), node("3000", "-1.00", "r#2/3")]}).json()
    assert "errors" not in first
    repeated = gql(sandbox, ADD, {"inputs": [node("3000", "-2.00", "r#2/3")]}).json()
    assert "already imported" in repeated["errors"][0]["message"]
    wrong = gql(sandbox, ADD, {"inputs": [node("3000", "-1.00", "r#3/3")]}).json()
    assert "do not balance" in wrong["errors"][0]["message"]
    done = gql(sandbox, ADD, {"inputs": [node("3000", "-2.00", "r#3/3")]}).json()
    assert "errors" not in done


def test_duplicates_accepted_by_default_refused_when_configured(sandbox):
    assert "errors" not in gql(sandbox, ADD, {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]}).json()
    assert "errors" not in gql(sandbox, ADD, {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]}).json()
    sandbox[0].state.store.reject_duplicates = True
    again = gql(sandbox, ADD, {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]}).json()
    assert "already imported" in again["errors"][0]["message"]


def test_lookups_page_relay_style(sandbox):
    page = gql(sandbox, "query { accounts(first: 2, ownerSet: LOWER) { edges { cursor node { code } } } }").json()
    conn = page["data"]["accounts"]
    assert len(conn["edges"]) == 2 and conn["pageInfo"]["hasNextPage"] is True
    after = conn["edges"][-1]["cursor"]
    nxt = gql(sandbox, "query($a: String) { accounts(first: 2, after: $a) { edges { node { code } } } }", {"a": after})
    assert nxt.json()["data"]["accounts"]["edges"][0]["node"]["code"] > conn["edges"][-1]["node"]["code"]
    kinds = gql(sandbox, "query { objectKinds(first: 100) { edges { node { dbId name } } } }").json()
    kind = next(e["node"]["dbId"] for e in kinds["data"]["objectKinds"]["edges"] if e["node"]["name"] == "TAX_RULE")
    rules = gql(
        sandbox,
        f"query {{ objectValues(first: 100, filter: {{objectKindDbId: {kind}}}) {{ edges {{ node {{ code }} }} }} }}",
    )
    assert {e["node"]["code"] for e in rules.json()["data"]["objectValues"]["edges"]} == {"0", "2", "3", "21"}


def test_unknown_field_and_credit_and_burst_limits(sandbox):
    assert "Cannot query field" in gql(sandbox, "query { nothing }").json()["errors"][0]["message"]
    requests.post(sandbox[1].url + "/_sandbox/limits", json={"credits": 1}, timeout=5)
    assert "errors" not in gql(sandbox, "query { __typename }").json()
    body = gql(sandbox, "query { __typename }")
    assert body.status_code == 200
    assert body.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST.INSUFFICIENT_CREDITS"
    requests.post(sandbox[1].url + "/_sandbox/limits", json={"credits": None, "burst_per_second": 1}, timeout=5)
    gql(sandbox, "query { __typename }")
    codes = gql(sandbox, "query { __typename }").json()["errors"][0]["extensions"]["code"]
    assert codes == "BAD_REQUEST.BURST_RATE_LIMIT_REACHED"


def test_faults_match_the_top_level_field(sandbox):
    url = sandbox[1].url
    requests.post(url + "/_sandbox/faults", json={"kind": "429", "path": "/addGLImportItems", "seconds": 2}, timeout=5)
    assert gql(sandbox, "query { __typename }").status_code == 200
    response = gql(sandbox, ADD, {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]})
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    requests.post(
        url + "/_sandbox/faults", json={"kind": "save_then_drop", "path": "/graphql/addGLImportItems"}, timeout=5
    )
    with pytest.raises(requests.ConnectionError):
        gql(sandbox, ADD, {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]})
    assert len(sandbox[0].state.store.items) == 2
    calls = requests.get(url + "/_sandbox/calls", timeout=5).json()["calls"]
    assert [c["path"] for c in calls] == ["/__typename", "/addGLImportItems", "/addGLImportItems"]
    assert calls[-1]["fault"] == "save_then_drop" and calls[-1]["saved_status"] == 200


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "xledger.json"
    with running(create_app(state_path=state)) as server:
        requests.post(
            server.url + "/graphql",
            json={"query": ADD, "variables": {"inputs": [node("1920", "1.00"), node("3000", "-1.00")]}},
            headers=AUTH,
            timeout=5,
        ).raise_for_status()
    with running(create_app(state_path=state)) as server:
        assert len(requests.get(server.url + "/_sandbox/vouchers", timeout=5).json()["vouchers"]) == 1


ITEMS_BETWEEN = """query($first: Int, $after: String) {
  glImportItems(first: $first, after: $after, filter: {postedDate_gte: "2026-03-01", postedDate_lt: "2026-03-03"}) {
    edges { cursor node { dbId postedDate extIdentifier } } pageInfo { hasNextPage }
  }
}"""


def test_items_filter_by_posted_date_range(sandbox):
    for day in ("2026-02-28", "2026-03-01", "2026-03-02", "2026-03-03"):
        inputs = [
            node("1920", "1.00", f"ref-{day}", postedDate=day),
            node("3000", "-1.00", f"ref-{day}", postedDate=day),
        ]
        assert "errors" not in gql(sandbox, ADD, {"inputs": inputs}).json()
    data = gql(sandbox, ITEMS_BETWEEN, {"first": 3}).json()["data"]["glImportItems"]
    assert [e["node"]["postedDate"] for e in data["edges"]] == ["2026-03-01", "2026-03-01", "2026-03-02"]
    assert data["pageInfo"]["hasNextPage"] is True
    rest = gql(sandbox, ITEMS_BETWEEN, {"first": 3, "after": data["edges"][-1]["cursor"]}).json()["data"]
    assert [e["node"]["extIdentifier"] for e in rest["glImportItems"]["edges"]] == ["ref-2026-03-02"]
    inclusive = gql(
        sandbox,
        'query { glImportItems(first: 10, filter: {postedDate_gt: "2026-03-01", postedDate_lte: "2026-03-03"}) '
        "{ edges { node { postedDate } } } }",
    ).json()["data"]["glImportItems"]["edges"]
    assert sorted({e["node"]["postedDate"] for e in inclusive}) == ["2026-03-02", "2026-03-03"]


def test_items_filter_refuses_unknown_fields_and_bad_dates(sandbox):
    unknown = gql(
        sandbox, 'query { glImportItems(first: 1, filter: {voucherDate: "2026-03-01"}) { edges { cursor } } }'
    )
    error = unknown.json()["errors"][0]
    assert 'Field "voucherDate" is not defined' in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    bad = gql(sandbox, 'query { glImportItems(first: 1, filter: {postedDate_gte: "1.3.2026"}) { edges { cursor } } }')
    assert "yyyy-MM-dd" in bad.json()["errors"][0]["message"]
