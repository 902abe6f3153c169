"""A ledger system declared in this file only is wired everywhere the registry reaches: the config
check, the CLI, Airflow's connection types and hooks, the pools (launcher and docker-compose), the
demo's connections; and what it cannot do is refused by the config check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from kassebro.ledgers import registry
from kassebro.ledgers.http import HttpClient, LedgerHttp
from kassebro.ledgers.registry import ConnectionParts, LedgerSystem

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "toy-secret-token"


class ToyClient(HttpClient):
    """The smallest Ledger client: it proves the connection, through the one HTTP base."""

    system = "Toy Ledger"

    def __init__(self, base_url: str, token: str, session: requests.Session | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = LedgerHttp(self.system, session=session, timeout=timeout, secrets=lambda: (self._token,))

    @classmethod
    def from_connection(cls, parts: ConnectionParts, **_: object) -> ToyClient:
        return cls(parts.base_url, parts.password, parts.session, parts.timeout)

    def test_connection(self) -> str:
        response = self._http.send(
            "GET", self.base_url + "/ping", "GET /ping", headers={"X-Token": self._token}, idempotent=True
        )
        return response.json()["answer"]


def create_app(state_path: object = None) -> object:
    """The toy system's sandbox: answers /ping for the right token."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ping(request):  # noqa: ANN001, ANN202
        if request.headers.get("X-Token") != TOKEN:
            return JSONResponse({"error": "bad token"}, status_code=401)
        return JSONResponse({"answer": "pong", "headers": sorted(request.headers)})

    return Starlette(routes=[Route("/ping", ping)])


def demo_connection(url: str) -> dict:
    return {"conn_type": "toyledger", "host": url, "password": TOKEN, "extra": {}}


TOY = LedgerSystem(
    name="toyledger",
    title="Toy Ledger",
    client=f"{__name__}:ToyClient",
    sandbox=__name__,
    sandbox_port=8999,
    environments={"production": ("https://toy.example/api", None)},
    form={
        "ui-field-behaviour": {"hidden-fields": ["schema", "port", "login", "extra"], "relabeling": {}},
        "conn-fields": {"shop_key": {"label": "Shop key", "schema": {"type": ["string", "null"]}}},
    },
    secret_extras=("shop_key",),
    approval=False,
    dimensions=False,
    pool_slots=2,
)


@pytest.fixture
def toy() -> Iterator[LedgerSystem]:
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister(TOY.name)


def _vendor_file(root: Path, **ledger: object) -> Path:
    """A config directory whose one vendor posts to the toy system (`ledger` fields added)."""
    source = PROJECT / "config" / "vendors" / "cafe_solsiden.yaml"
    data = yaml.safe_load(source.read_text())
    keep_dimensions = ledger.pop("with_dimensions", False)
    data["ledger"] = {"system": "toyledger", "connection": "toy_conn", **ledger}
    dimensions = {key: data.pop(key) for key in ("department", "project") if key in data}
    if keep_dimensions:
        data.update(dimensions)
    (root / "vendors").mkdir(parents=True, exist_ok=True)
    for name in ("defaults.yaml",):
        if (PROJECT / "config" / name).exists():
            (root / name).write_text((PROJECT / "config" / name).read_text())
    for extra in (PROJECT / "config").iterdir():
        if extra.is_dir() and extra.name != "vendors":
            target = root / extra.name
            target.mkdir(exist_ok=True)
            for f in extra.iterdir():
                (target / f.name).write_text(f.read_text())
    path = root / "vendors" / "cafe_solsiden.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def test_unknown_systems_are_refused_with_the_known_ones(tmp_path: Path) -> None:
    from kassebro.config import load_vendors

    _vendor_file(tmp_path)
    configs = load_vendors(tmp_path)
    assert not configs.vendors
    assert "unsupported ledger system 'toyledger'; known: tripletex, fiken" in configs.issues[0].message


def test_the_config_check_takes_the_system_and_refuses_what_it_cannot_do(toy: LedgerSystem, tmp_path: Path) -> None:
    from kassebro.config import LedgerTarget, load_vendors

    assert "toyledger" in LedgerTarget.model_json_schema()["properties"]["system"]["enum"]
    _vendor_file(tmp_path)
    (vendor,) = load_vendors(tmp_path).vendors
    assert vendor.ledger.system == "toyledger" and vendor.pool == "ledger_toyledger"
    assert vendor.ledger.lease == TOY.lease_seconds and vendor.ledger.visibility == TOY.visibility_seconds

    _vendor_file(tmp_path, send_to_ledger=False)
    (issue,) = load_vendors(tmp_path).issues
    assert "send_to_ledger: false is not possible with Toy Ledger" in issue.message
    _vendor_file(tmp_path, with_dimensions=True)
    (issue,) = load_vendors(tmp_path).issues
    assert "Toy Ledger vouchers cannot carry a department or project" in issue.message


def test_xledger_cannot_leave_a_voucher_for_approval(tmp_path: Path) -> None:
    """Xledger's import has no draft to approve: `send_to_ledger: false` used to be ignored while
    the journal said "posted"; now the config check refuses it."""
    from kassebro.config import load_vendors

    _vendor_file(tmp_path, send_to_ledger=False)
    path = tmp_path / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace("system: toyledger", "system: xledger"))
    (issue,) = load_vendors(tmp_path).issues
    assert "send_to_ledger: false is not possible with Xledger" in issue.message


def test_cli_provider_hooks_and_pools_know_the_system(
    toy: LedgerSystem, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kassebro.airflow import hooks
    from kassebro.airflow.pools import wanted_pools
    from kassebro.airflow.provider import get_provider_info
    from kassebro.cli import build_parser, main
    from kassebro.demo.home import demo_connections
    from kassebro.sandbox.server import running

    assert build_parser().parse_args(["sandbox", "toyledger"]).system == "toyledger"
    (kind,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "toyledger"]
    assert kind["hook-class-name"] == "kassebro.airflow.hooks.ToyLedgerHook"
    assert kind["conn-fields"]["shop_key"]["label"] == "Shop key"
    assert hooks.ToyLedgerHook is hooks.hook_class("toyledger")  # where Airflow's UI finds it
    assert wanted_pools()["ledger_toyledger"] == (2, "Concurrent calls to Toy Ledger")
    assert demo_connections()["toyledger"] == "toyledger_demo"

    _vendor_file(tmp_path)
    assert main(["pools", "show", "--config", str(tmp_path)]) == 0  # what docker-compose's start-up runs
    assert "ledger_toyledger" in capsys.readouterr().out

    with running(create_app()) as server:
        connection = {**demo_connection(server.url), "extra": {"shop_key": "never-a-header", "timeout": 3}}
        monkeypatch.setenv("AIRFLOW_CONN_TOY_CONN", json.dumps(connection))
        client = hooks.ledger_for("toyledger", "toy_conn")
        assert isinstance(client, ToyClient) and client.timeout == 3
        assert client.test_connection() == "pong"
        assert "shop-key" not in client._http.session.headers  # a secret extra is never a header
        assert client.calls["GET /ping"] == 1
