"""`kassebro journal rebuild`: after a wiped journal, the ledger's vouchers (corrections and
reversals included) are written back, and running the days again posts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kassebro.config import load_vendor
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal
from kassebro.posting.rebuild import rebuild

from ..e2e.conftest import DAYS, tripletex_home


def _edit(root: Path, change) -> None:
    path = root / "config" / "vendors" / "cafe_solsiden.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _run(days, client, journal: Journal) -> list[dict]:
    vendor = load_vendor("cafe_solsiden")
    results = []
    for day in days:
        pipeline.prepare(vendor, day, journal)
        results.append(pipeline.post(vendor, day, client(), journal))
    return results


def test_a_wiped_journal_is_rebuilt_from_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tripletex_home(tmp_path, monkeypatch) as (root, app, client):
        journal = Journal()
        _run(DAYS, client, journal)
        # Card settlements now go to another account: the first two days get a correction each ...
        _edit(root, lambda d: d["mapping"].setdefault("payment_types", {}).update({"12002": "1941"}))
        assert [r["kinds"] for r in _run(DAYS[:2], client, journal)] == [["correction"]] * 2
        # ... and, with reversals chosen, the third is reversed and posted again
        _edit(root, lambda d: d["ledger"].update(on_change="reverse"))
        assert _run(DAYS[2:], client, journal)[0]["kinds"] == ["reversal", "repost"]
        vouchers = len(app.state.store.list_vouchers())
        assert vouchers == 3 + 2 + 2

        wiped = Journal(f"sqlite:///{tmp_path / 'wiped.sqlite'}")
        rebuilt = rebuild(load_vendor("cafe_solsiden"), DAYS[0], DAYS[-1], client(), wiped)
        assert [(d.versions, d.state, d.matches_day) for d in rebuilt] == [(2, "posted", True)] * 2 + [
            (3, "posted", True)
        ]
        assert [b.kind for b in wiped.booked("cafe_solsiden", DAYS[2])] == ["original", "reversal", "repost"]
        assert [wiped.get("cafe_solsiden", d).version for d in DAYS] == [2, 2, 3]

        again = _run(DAYS, client, wiped)
        assert [r["state"] for r in again] == ["posted"] * 3 and all(r["already"] for r in again)
        assert len(app.state.store.list_vouchers()) == vouchers  # zero new vouchers
        vendor = load_vendor("cafe_solsiden")
        assert all(pipeline.verify(vendor, d, client(), wiped)["verified"] for d in DAYS)

        # A day the ledger does not hold as it reads now is corrected by the next run, once.
        _edit(root, lambda d: d["mapping"]["payment_types"].update({"12002": "1940"}))
        wiped_again = Journal(f"sqlite:///{tmp_path / 'wiped-again.sqlite'}")
        (day,) = rebuild(load_vendor("cafe_solsiden"), DAYS[0], DAYS[0], client(), wiped_again)
        assert (day.versions, day.matches_day) == (2, False)
        _edit(root, lambda d: d["ledger"].update(on_change="correction"))
        (result,) = _run(DAYS[:1], client, wiped_again)
        assert result["kinds"] == ["correction"] and result["version"] == 3
        assert len(app.state.store.list_vouchers()) == vouchers + 1


def test_the_cli_rebuilds_through_the_vendors_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from kassebro.cli import main
    from kassebro.demo.sandboxes import connection

    with tripletex_home(tmp_path, monkeypatch) as (_root, app, client):
        _run(DAYS[:1], client, Journal())
        monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(connection("tripletex", app.state.url)))
        url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        day = DAYS[0].isoformat()
        assert main(["journal", "rebuild", "--vendor", "cafe_solsiden", "--from", day, "--to", day, "--url", url]) == 0
        entry = Journal(url).get("cafe_solsiden", DAYS[0])
        assert entry.state == "posted" and entry.ledger_id
