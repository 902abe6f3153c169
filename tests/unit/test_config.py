"""Vendor configuration: layering, validation errors that name file and field, isolation of bad files."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kassebro.config import load_vendor, load_vendors
from kassebro.errors import ConfigError


@pytest.fixture
def config_copy(tmp_path: Path, project_dir: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(project_dir / "config", root)
    return root


def test_repository_vendors_load(project_dir: Path) -> None:
    configs = load_vendors(project_dir / "config")
    assert configs.issues == ()
    assert [v.id for v in configs.vendors] == ["bar_nattugla", "butikk_fjord", "cafe_solsiden"]


def test_layers_defaults_template_and_overrides(config_copy: Path) -> None:
    cafe = load_vendor("cafe_solsiden", config_copy)
    assert cafe.timezone == "Europe/Oslo" and cafe.owner == "data-team"  # from defaults.yaml
    assert cafe.mapping.payment_account("CASH", "12001") == "1900"  # from the Default ledger
    kaffe = cafe.mapping.key_for("KAFFE")
    assert kaffe is not None
    assert kaffe.account_for(2500) == "3000" and kaffe.account_for(1500) == "3030"  # alternative account
    assert cafe.mapping.key_for("unknown", "04006").account == "3030"  # falls back to the SAF-T code
    assert cafe.schedule.cron == "30 2 * * *"
    bar = load_vendor("bar_nattugla", config_copy)
    assert bar.schedule.cron == "15 6 * * tue,wed,thu,fri,sat,sun"


def test_vendor_override_beats_template(config_copy: Path) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text() + "  payment_types: {'12001': '1901'}\n")
    assert load_vendor("cafe_solsiden", config_copy).mapping.payment_account("X", "12001") == "1901"


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (('time: "02:30"', 'time: "25:00"'), "schedule.time", "pattern"),
        (("enabled_since: 2026-11-01", "enabled_since: yesterday"), "enabled_since", "date"),
        (
            ("connection: tripletex_demo", "connection: tripletex_demo\n  colour: red"),
            "ledger.colour",
            "Extra",
        ),
        (
            ('KAFFE: {account: "3000"', 'KAFFE: {account: "30x0"'),
            "mapping.accounting_keys.KAFFE.account",
            "pattern",
        ),
    ],
)
def test_bad_file_names_file_field_and_reason(
    config_copy: Path, edit: tuple[str, str], field: str, reason: str
) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]))
    configs = load_vendors(config_copy)
    assert [v.id for v in configs.vendors] == ["bar_nattugla", "butikk_fjord"]  # the others still load
    assert configs.broken_files == (path,)
    (issue,) = configs.issues
    assert issue.source == str(path)
    assert f"field {field}" in issue.message and reason in issue.message


def test_yaml_syntax_error_names_line(config_copy: Path) -> None:
    path = config_copy / "vendors" / "bar_nattugla.yaml"
    path.write_text("id: bar_nattugla\nname: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_vendor("bar_nattugla", config_copy)
    assert f"{path}:" in str(err.value) and "not valid YAML" in str(err.value)


def test_file_name_must_match_id(config_copy: Path) -> None:
    src = config_copy / "vendors" / "cafe_solsiden.yaml"
    shutil.copy(src, config_copy / "vendors" / "cafe_copy.yaml")
    configs = load_vendors(config_copy)
    assert any("must equal the file name" in i.message for i in configs.issues)


def test_broken_template_is_named(config_copy: Path) -> None:
    template = config_copy / "ledgers" / "default.yaml"
    template.write_text(template.read_text().replace('"12001": "1900"', '"12001": "nineteen"'))
    configs = load_vendors(config_copy)
    assert configs.vendors == ()
    assert all(i.source == str(template) for i in configs.issues)


def test_unknown_time_zone(config_copy: Path) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text() + "timezone: Europe/Atlantis\n")
    (issue,) = load_vendors(config_copy).issues
    assert "unknown time zone" in issue.message


def test_cli_config_check(config_copy: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "kassebro.cli", "config", "check", "--config", str(config_copy)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 vendor(s) ok" in ok.stdout
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace("enabled_since: 2026-11-01", "enabled_since: soon"))
    bad = subprocess.run(
        [sys.executable, "-m", "kassebro.cli", "config", "check", "--config", str(config_copy)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "cafe_solsiden.yaml" in bad.stdout and "enabled_since" in bad.stdout
    assert "2 vendor(s) ok, 1 file(s) with errors" in bad.stdout


def test_enabled_since_is_a_date(config_copy: Path) -> None:
    assert load_vendor("cafe_solsiden", config_copy).enabled_since == dt.date(2026, 11, 1)
