"""Work files live in one shared store (`KASSEBRO_WORK_URL`, Airflow's ObjectStoragePath), so the
task that posts a day may run on another host than the task that prepared it.

Two hosts are two data directories (their own local disk) sharing the journal and the work store;
an object store is fsspec's in-memory file system (`memory://`), which has no local path at all.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kassebro.core import workfiles
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal

from ..e2e.conftest import DAYS, tripletex_home

WORK_URL_ENV = "KASSEBRO_WORK_URL"


def test_without_a_url_the_work_files_stay_where_one_machine_kept_them(tmp_path, monkeypatch) -> None:
    from kassebro.config import work_url

    monkeypatch.delenv(WORK_URL_ENV, raising=False)
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path))
    assert work_url() == (tmp_path / "work").as_uri()
    folder = pipeline.work_dir("cafe", DAYS[0])
    assert folder.protocol == "file" and workfiles.local_path(folder) == str(tmp_path / "work" / "cafe" / "2026-11-02")


def test_a_write_is_whole_or_absent_and_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(WORK_URL_ENV, (tmp_path / "store").as_uri())
    path = pipeline.work_dir("cafe", DAYS[0]) / "voucher.json"
    workfiles.write_text(path, "first")
    workfiles.write_text(path, "second")
    assert workfiles.read_text(path) == "second"
    assert sorted(p.name for p in (tmp_path / "store" / "cafe" / "2026-11-02").iterdir()) == ["voucher.json"]


def test_a_day_prepared_on_one_host_is_posted_from_another(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared-work"
    monkeypatch.setenv(WORK_URL_ENV, shared.as_uri())
    monkeypatch.setenv("KASSEBRO_JOURNAL_URL", f"sqlite:///{tmp_path / 'journal.sqlite'}")
    with tripletex_home(tmp_path / "a", monkeypatch) as (home, app, client):
        from kassebro.config import load_vendor

        vendor, day = load_vendor("cafe_solsiden"), DAYS[0]
        assert pipeline.prepare(vendor, day, Journal())["state"] == "built"  # host A
        other = tmp_path / "b" / "data"
        other.mkdir(parents=True)
        monkeypatch.setenv("KASSEBRO_DATA", str(other))  # host B: its own disk, none of A's files
        result = pipeline.post(vendor, day, client(), Journal())
        assert result["state"] == "posted"
        assert len([v for v in app.state.store.list_vouchers() if v.external_voucher_number]) == 1
    assert (shared / "cafe_solsiden" / day.isoformat() / "voucher.json").is_file()
    assert not (home / "data" / "work").exists() and not (other / "work").exists()


def test_an_object_store_holds_the_frames_the_report_and_the_voucher(tmp_path, monkeypatch) -> None:
    from kassebro.core.frames import SalesDay

    monkeypatch.setenv(WORK_URL_ENV, f"memory://kassebro-{uuid.uuid4().hex}")
    with tripletex_home(tmp_path, monkeypatch) as (home, _app, client):
        from kassebro.config import load_vendor

        vendor, day = load_vendor("cafe_solsiden"), DAYS[0]
        journal = Journal()
        prepared = pipeline.prepare(vendor, day, journal)
        folder = pipeline.work_dir(vendor.id, day)
        assert folder.protocol == "memory" and prepared["report"][1].startswith("memory://")
        sales = SalesDay.load(folder / "frames")
        assert len(sales.receipts) == prepared["receipts"] > 0
        assert pipeline.post(vendor, day, client(), journal)["state"] == "posted"
        assert not (home / "data" / "work").exists()
        report = _report_client().get(f"/report/{vendor.id}/{day.isoformat()}")
        assert report.status_code == 200 and "all" in report.text and vendor.id in report.text


def _report_client() -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    from kassebro.airflow import journal_view

    app = journal_view.create_app(runs=lambda dag_ids, since: [])
    app.dependency_overrides[get_user] = lambda: object()
    return TestClient(app)


@pytest.mark.parametrize("url", ["file:///nonexistent-root/kassebro-work"])
def test_a_report_the_store_does_not_hold_is_a_404_that_says_so(url, monkeypatch) -> None:
    monkeypatch.setenv(WORK_URL_ENV, url)
    response = _report_client().get(f"/report/cafe_solsiden/{DAYS[0].isoformat()}")
    assert response.status_code == 404 and "work store" in response.text


def test_the_path_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = "import kassebro.core.workfiles, sys; print('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert out.stdout.strip() == "False"
