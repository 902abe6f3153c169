"""Vendor configuration: layering, validation errors that name file and field, isolation of bad files."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kassebro.config import load_vendor, load_vendors
from kassebro.core.errors import ConfigError


@pytest.fixture
def config_copy(tmp_path: Path, project_dir: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(project_dir / "config", root)
    return root


def test_repository_vendors_load(project_dir: Path) -> None:
    configs = load_vendors(project_dir / "config")
    assert configs.issues == ()
    assert [v.id for v in configs.vendors] == [
        "bakeri_bryggen",
        "bar_nattugla",
        "butikk_fjord",
        "cafe_solsiden",
        "jernvare_sentrum",
        "kiosk_torget",
        "vinbar_kaia",
    ]
    # the demo has a vendor on every ledger system
    assert {v.ledger.system for v in configs.vendors} == {"tripletex", "fiken", "poweroffice", "xledger", "duett"}


def test_fiken_template_extends_default_with_1901_payment_accounts(config_copy: Path) -> None:
    kiosk = load_vendor("kiosk_torget", config_copy)
    assert kiosk.mapping.name == "Fiken"
    assert kiosk.mapping.payment_account("CASH", "12001") == "1901:10001"
    assert all(a.startswith("1901:") for a in kiosk.mapping.payment_types.values())
    assert kiosk.mapping.tips_account == "2910"  # inherited from the Default ledger
    assert kiosk.mapping.key_for("unknown", "04006").account == "3030"
    assert kiosk.pool == "ledger_fiken_demo-kiosk-as"


def test_a_template_extending_a_missing_one_is_named(config_copy: Path) -> None:
    fiken = config_copy / "ledgers" / "fiken.yaml"
    fiken.write_text(fiken.read_text().replace("extends: default", "extends: nowhere"))
    configs = load_vendors(config_copy)
    assert [i.source for i in configs.issues] == [str(config_copy / "vendors" / "kiosk_torget.yaml")]
    assert "nowhere" in configs.issues[0].message


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
    assert "cafe_solsiden" not in [v.id for v in configs.vendors]
    assert len(configs.vendors) == len(list((config_copy / "vendors").glob("*.yaml"))) - 1  # the others still load
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
    assert "7 vendor(s) ok" in ok.stdout
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace("enabled_since: 2026-11-01", "enabled_since: soon"))
    bad = subprocess.run(
        [sys.executable, "-m", "kassebro.cli", "config", "check", "--config", str(config_copy)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "cafe_solsiden.yaml" in bad.stdout and "enabled_since" in bad.stdout
    assert "6 vendor(s) ok, 0 warning(s), 1 file(s) with errors" in bad.stdout


def test_config_check_names_vendors_without_an_organisation_number(config_copy: Path) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace('organisation_number: "910000012"\n', ""))
    out = subprocess.run(
        [sys.executable, "-m", "kassebro.cli", "config", "check", "--config", str(config_copy)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr  # a warning, not an error: the vendor still runs
    assert "WARN   cafe_solsiden: no organisation_number" in out.stdout
    assert "7 vendor(s) ok, 1 warning(s), 0 file(s) with errors" in out.stdout


@pytest.mark.parametrize(
    ("value", "reason"),
    [("910000013", "check digit is wrong"), ("91000001", "nine digits"), ("abc", "nine digits")],
)
def test_organisation_number_is_checked_by_mod_11(config_copy: Path, value: str, reason: str) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace('"910000012"', f'"{value}"'))
    (issue,) = load_vendors(config_copy).issues
    assert "organisation_number" in issue.message and reason in issue.message


def test_organisation_number_with_spaces_and_the_official_examples_number(config_copy: Path) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    path.write_text(path.read_text().replace('"910000012"', '"999 999 999"'))
    vendor = load_vendor("cafe_solsiden", config_copy)
    assert vendor.organisation_number == vendor.org_number == "999999999"


def test_source_z_report_amounts_and_currency(config_copy: Path) -> None:
    vendor = load_vendor("jernvare_sentrum", config_copy)
    assert (vendor.source.z_report_amounts, vendor.currency) == ("auto", "NOK")
    path = config_copy / "vendors" / "jernvare_sentrum.yaml"
    path.write_text(
        path.read_text().replace("  path: saft/jernvare_sentrum\n", "  path: saft/j\n  z_report_amounts: net\n")
    )
    assert load_vendor("jernvare_sentrum", config_copy).source.z_report_amounts == "net"
    path.write_text(path.read_text().replace("z_report_amounts: net", "z_report_amounts: both"))
    (issue,) = load_vendors(config_copy).issues
    assert "z_report_amounts" in issue.message


def test_enabled_since_is_a_date(config_copy: Path) -> None:
    assert load_vendor("cafe_solsiden", config_copy).enabled_since == dt.date(2026, 11, 1)


def test_templates_extending_each_other_in_a_circle_are_named(config_copy: Path) -> None:
    default = config_copy / "ledgers" / "default.yaml"
    default.write_text("extends: fiken\n" + default.read_text())
    configs = load_vendors(config_copy)
    assert configs.vendors == ()
    assert all("circle" in i.message for i in configs.issues)


def test_client_org_number_is_for_tripletex_accounting_firms(config_copy: Path) -> None:
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    text = path.read_text().replace('organisation_number: "910000012"\n', "")  # the firm's client list names it
    path.write_text(
        text.replace("  connection: tripletex_demo\n", "  connection: firm\n  client_org_number: 998 877 665\n")
    )
    vendor = load_vendor("cafe_solsiden", config_copy)
    assert vendor.ledger.client_org_number == "998 877 665" and vendor.org_number == "998877665"
    path.write_text(
        path.read_text().replace("name: Café Solsiden\n", 'name: Café Solsiden\norganisation_number: "910000012"\n')
    )
    (issue,) = load_vendors(config_copy).issues
    assert "name two companies" in issue.message
    path.write_text(path.read_text().replace('organisation_number: "910000012"\n', ""))
    kiosk = config_copy / "vendors" / "kiosk_torget.yaml"
    kiosk.write_text(
        kiosk.read_text().replace(
            "  company: demo-kiosk-as\n", "  company: demo-kiosk-as\n  client_org_number: '998877665'\n"
        )
    )
    configs = load_vendors(config_copy)
    assert [i.source for i in configs.issues] == [str(kiosk)]
    assert "Tripletex accounting firms only" in configs.issues[0].message


def test_duett_cannot_post_for_approval(config_copy: Path) -> None:
    path = config_copy / "vendors" / "jernvare_sentrum.yaml"
    path.write_text(path.read_text().replace("send_to_ledger: true", "send_to_ledger: false"))
    configs = load_vendors(config_copy)
    assert [i.source for i in configs.issues] == [str(path)]
    assert "no approval path" in configs.issues[0].message


def test_fiken_vendors_cannot_have_a_department(config_copy: Path) -> None:
    path = config_copy / "vendors" / "kiosk_torget.yaml"
    path.write_text(path.read_text().replace("tags: [demo, kiosk]", 'department: "1"\ntags: [demo, kiosk]'))
    configs = load_vendors(config_copy)
    assert [i.source for i in configs.issues] == [str(path)]
    assert "Fiken vouchers cannot carry a department" in configs.issues[0].message


def test_retries_must_outlast_a_dead_holders_lease(config_copy: Path) -> None:
    from kassebro.config import retry_span_seconds

    assert retry_span_seconds(3, 60) == 420 and retry_span_seconds(12, 600) < 12 * 3600
    path = config_copy / "vendors" / "cafe_solsiden.yaml"
    original = path.read_text()
    ledger = load_vendor("cafe_solsiden", config_copy).ledger
    assert (ledger.lease, ledger.visibility) == (120, 60)  # the defaults, outlasted by 420 s of retries
    path.write_text(original + "retries: 1\nretry_delay_seconds: 60\n")
    (issue,) = load_vendors(config_copy).issues
    assert (
        "end 60 s after the first failure, before a dead holder's claim expires and its post may still show "
        "(120 + 60 s)" in issue.message
    )
    shorter = "connection: tripletex_demo\n  lease_seconds: 45\n  visibility_seconds: 10"
    path.write_text(original.replace("connection: tripletex_demo", shorter) + "retries: 1\nretry_delay_seconds: 60\n")
    assert load_vendor("cafe_solsiden", config_copy).ledger.lease == 45
