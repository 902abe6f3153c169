"""The exactly-once pipeline against every ledger sandbox: a post whose answer is lost is found,
not posted again, and a second run posts nothing."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

from kassebro.config import load_vendor
from kassebro.ledgers.base import LedgerTransient
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal
from kassebro.sandbox.server import running

from ..e2e.conftest import DAYS, make_home


def tripletex():
    from kassebro.ledgers.tripletex import TripletexClient
    from kassebro.sandbox.tripletex import create_app

    return (
        create_app(),
        lambda url: TripletexClient(url, "demo-consumer-token", "demo-employee-token"),
        "/ledger/voucher",
    )


def fiken():
    from kassebro.ledgers.fiken import FikenClient
    from kassebro.sandbox import fiken as sandbox

    def client(url: str) -> FikenClient:
        return FikenClient(
            url,
            sandbox.DEMO_COMPANY.slug,
            client_id=sandbox.DEMO_CLIENT_ID,
            client_secret=sandbox.DEMO_CLIENT_SECRET,
            refresh_token=tokens[-1],
            token_store=tokens.append,
        )

    tokens = [sandbox.DEMO_REFRESH_TOKEN]
    return sandbox.create_app(), client, "/companies/*/generalJournalEntries"


def poweroffice():
    from kassebro.ledgers.poweroffice import PowerOfficeClient
    from kassebro.sandbox import poweroffice as sandbox

    def client(url: str) -> PowerOfficeClient:
        return PowerOfficeClient(
            url,
            f"{url}/OAuth/Token",
            application_key=sandbox.DEMO_APPLICATION_KEY,
            client_key=sandbox.DEMO_CLIENT_KEY,
            subscription_key=sandbox.DEMO_SUBSCRIPTION_KEY,
        )

    return sandbox.create_app(), client, "/Vouchers/ManualJournals"


def xledger():
    from kassebro.ledgers.xledger import XledgerClient
    from kassebro.sandbox import xledger as sandbox

    # the sandbox logs GraphQL calls by their top-level field, which its faults match too
    return sandbox.create_app(), lambda url: XledgerClient(f"{url}/graphql", sandbox.DEMO_TOKEN), "/addGLImportItems"


def duett():
    from kassebro.ledgers.duett import DuettClient
    from kassebro.sandbox import duett as sandbox

    def client(url: str) -> DuettClient:
        return DuettClient(url, integration_key=sandbox.DEMO_INTEGRATION_KEY, client_key=sandbox.DEMO_CLIENT_KEY)

    return sandbox.create_app(), client, "/Voucher/v2"


@pytest.mark.parametrize("system", [tripletex, fiken, poweroffice, xledger, duett], ids=lambda f: f.__name__)
def test_exactly_once(system, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_home(tmp_path)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
    vendor = load_vendor("cafe_solsiden")
    app, make_client, post_path = system()
    if system not in (tripletex, poweroffice):  # Fiken journal entries cannot carry a department
        vendor = vendor.model_copy(update={"department": None})
    journal = Journal()
    with running(app) as server:
        for day in DAYS:
            pipeline.prepare(vendor, day, journal)
        app.state.faults.add("save_then_drop", path=post_path, method="POST")
        results = []
        for day in DAYS:
            try:
                results.append(pipeline.post(vendor, day, make_client(server.url), journal))
            except LedgerTransient:  # the answer was lost: the retry looks it up
                results.append(pipeline.post(vendor, day, make_client(server.url), journal))
        assert [r["state"] for r in results] == ["posted"] * 3
        assert sum(bool(r["already"]) for r in results) == 1  # the dropped one was found, not posted again
        for day in DAYS:  # a second run of the same days
            assert pipeline.post(vendor, day, make_client(server.url), journal)["already"] is True
            assert pipeline.verify(vendor, day, make_client(server.url), journal)["verified"] is True
        posts = [c for c in app.state.calls.list() if c["method"] == "POST" and fnmatch(c["path"], "*" + post_path)]
        assert len(posts) == 3  # one POST per day, the dropped one included: never posted twice


@pytest.mark.parametrize("system", [tripletex, fiken, poweroffice, xledger, duett], ids=lambda f: f.__name__)
def test_no_post_while_a_lost_one_may_still_appear(system, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'hidden_save': the ledger keeps the voucher, drops the answer, and shows it to lookups only
    later. The retries wait out the system's visibility window instead of posting again."""
    import time

    root = make_home(tmp_path)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
    vendor = load_vendor("cafe_solsiden")
    ledger = vendor.ledger.model_copy(update={"visibility_seconds": 4})
    vendor = vendor.model_copy(update={"ledger": ledger, "department": None if system is not tripletex else "1"})
    app, make_client, post_path = system()
    journal = Journal()
    day = DAYS[0]
    with running(app) as server:
        pipeline.prepare(vendor, day, journal)
        app.state.faults.add("hidden_save", path=post_path, method="POST", seconds=1.5)
        with pytest.raises(LedgerTransient):
            pipeline.post(vendor, day, make_client(server.url), journal)
        waits = 0
        while True:  # the retries, as Airflow would run them
            try:
                result = pipeline.post(vendor, day, make_client(server.url), journal)
                break
            except LedgerTransient as exc:
                assert "may still appear" in str(exc)
                waits += 1
                time.sleep(0.5)
        assert waits >= 1 and result["already"] is True
        posts = [c for c in app.state.calls.list() if c["method"] == "POST" and fnmatch(c["path"], "*" + post_path)]
        assert len(posts) == 1


def test_without_the_window_the_hidden_save_would_post_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the fault bites, so the window above is what keeps the day to one voucher."""
    root = make_home(tmp_path)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
    vendor = load_vendor("cafe_solsiden")
    assert vendor.ledger.visibility == 0  # the test home's setting
    app, make_client, post_path = tripletex()
    journal = Journal()
    with running(app) as server:
        pipeline.prepare(vendor, DAYS[0], journal)
        app.state.faults.add("hidden_save", path=post_path, method="POST", seconds=1.0)
        with pytest.raises(LedgerTransient):
            pipeline.post(vendor, DAYS[0], make_client(server.url), journal)
        assert pipeline.post(vendor, DAYS[0], make_client(server.url), journal)["already"] is False
        import time

        time.sleep(1.5)
        assert len(app.state.store.list_vouchers()) == 2
