"""`kassebro voucher preview`: a demo SAF-T day through the real vendor files, table and JSON."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from kassebro.cli import main
from kassebro.demo.home import write_sales

DAY = dt.date(2026, 11, 10)  # a Tuesday: the shop is open
SUNDAY = dt.date(2026, 11, 15)  # the shop is closed: an empty day


@pytest.fixture
def shop_day(tmp_path: Path, project_dir: Path) -> Path:
    """The shop's POS export of DAY and of a closed Sunday, as its POS writes them."""
    vendor_file = yaml.safe_load((project_dir / "config" / "vendors" / "butikk_fjord.yaml").read_text(encoding="utf-8"))
    (first, _sunday) = write_sales(vendor_file, [DAY, SUNDAY], tmp_path)
    return first.parent


@pytest.fixture
def shop_file(project_dir: Path) -> str:
    return str(project_dir / "config" / "vendors" / "butikk_fjord.yaml")


def preview(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["voucher", "preview", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_preview_is_the_documented_schema_and_balances(capsys, shop_day: Path, shop_file: str) -> None:
    code, out, err = preview(capsys, "--vendor", shop_file, "--source", str(shop_day), "--date", "2026-11-10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {
        "schema_version",
        "vendor",
        "business_day",
        "external_ref",
        "description",
        "state",
        "lines",
        "total_debit",
        "total_debit_ore",
        "vat_difference_ore",
        "vat_by_code",
        "digest",
        "verdict",
    }
    verdict = doc["verdict"]
    assert verdict["held_back"] is False and verdict["failed"] == []
    rules = {rule["rule"]: rule["status"] for rule in verdict["rules"]}
    assert rules["file_belongs_to_vendor"] == rules["z_grand_total"] == rules["rounding_limit"] == "pass"
    assert len(rules) >= 25
    assert (doc["vendor"], doc["business_day"], doc["state"]) == ("butikk_fjord", "2026-11-10", "built")
    assert doc["external_ref"] == "kassebro:butikk_fjord:2026-11-10"
    lines = doc["lines"]
    assert lines and all(
        set(ln) == {"account", "vat_code", "amount", "amount_ore", "description", "department", "project"}
        for ln in lines
    )
    assert sum(ln["amount_ore"] for ln in lines) == 0
    assert all(ln["amount_ore"] != 0 for ln in lines)
    assert doc["total_debit_ore"] == sum(ln["amount_ore"] for ln in lines if ln["amount_ore"] > 0)
    assert doc["total_debit"] == f"{doc['total_debit_ore'] / 100:.2f}"
    assert all(ln["amount"] == f"{ln['amount_ore'] / 100:.2f}" for ln in lines)
    assert [ln["account"] for ln in lines] == sorted(ln["account"] for ln in lines)
    assert {ln["department"] for ln in lines} == {"3"}
    assert {"3000", "3030", "2900"} <= {ln["account"] for ln in lines}
    assert doc["vat_difference_ore"] == sum(f["difference_ore"] for f in doc["vat_by_code"].values())
    # stable: the same day previewed twice prints the same bytes
    assert preview(capsys, "--vendor", shop_file, "--source", str(shop_day), "--date", "2026-11-10", "--json")[1] == out


def test_table_preview_shows_lines_totals_and_vat_difference(capsys, shop_day: Path, shop_file: str) -> None:
    code, out, _ = preview(capsys, "--vendor", shop_file, "--source", str(shop_day), "--date", "2026-11-10")
    assert code == 0
    assert "POS dagsoppgjør Fjord Interiør 2026-11-10" in out
    assert "Salg 25 % mva (3000)" in out and "Betaling CASH" in out
    assert "total" in out and "VAT difference (POS - recomputed from gross)" in out
    assert "vendor butikk_fjord, business day 2026-11-10: all" in out and "rules passed" in out


def test_an_empty_day_previews_as_empty(capsys, shop_day: Path, shop_file: str) -> None:
    code, out, _ = preview(capsys, "--vendor", shop_file, "--source", str(shop_day), "--date", "2026-11-15", "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["state"], doc["lines"], doc["total_debit_ore"]) == ("empty", [], 0)
    code, out, _ = preview(capsys, "--vendor", shop_file, "--source", str(shop_day), "--date", "2026-11-15")
    assert code == 0 and "no sales this business day" in out


def test_a_day_that_cannot_be_booked_exits_1_naming_vendor_day_rule_and_data(
    capsys, shop_day: Path, project_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    (config / "vendors").mkdir(parents=True)
    (config / "ledgers").mkdir()
    (config / "ledgers" / "default.yaml").write_text(
        (project_dir / "config" / "ledgers" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    # the shop's file with no cash rounding allowed: its day has some
    text = (project_dir / "config" / "vendors" / "butikk_fjord.yaml").read_text(encoding="utf-8")
    (config / "vendors" / "butikk_fjord.yaml").write_text(
        text.split("mapping:")[0] + "mapping: {max_rounding_per_receipt_ore: 0}\n", encoding="utf-8"
    )
    vendor = str(config / "vendors" / "butikk_fjord.yaml")
    code, out, err = preview(capsys, "--vendor", vendor, "--source", str(shop_day), "--date", "2026-11-10")
    assert code == 1 and out == ""
    assert (
        "butikk_fjord" in err
        and "2026-11-10" in err
        and "[rounding_limit] FAILED" in err
        and "round by more than 0.00" in err
        and "Traceback" not in err
    )
    code, out, err = preview(capsys, "--vendor", vendor, "--source", str(shop_day), "--date", "2026-11-10", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["state"] == "failed" and doc["issues"][0]["rule"] == "rounding_limit"
    assert doc["verdict"]["held_back"] is True
    assert [f["rule"] for f in doc["verdict"]["failed"]] == ["rounding_limit"]


def test_unreadable_sources_exit_1_with_a_clear_message(capsys, tmp_path: Path, shop_file: str) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-saft>", encoding="utf-8")
    code, _, err = preview(capsys, "--vendor", shop_file, "--source", str(bad), "--date", "2026-11-10")
    assert code == 1 and "bad.xml" in err and "[xml_malformed] FAILED" in err and "could not be read" in err
    code, _, err = preview(
        capsys, "--vendor", shop_file, "--source", "postgresql://kasse:hemmelig@127.0.0.1:1/pos", "--date", "2026-11-10"
    )
    assert code == 1 and "hemmelig" not in err and "127.0.0.1" in err
