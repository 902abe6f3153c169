"""The year-end export (`kassebro.readback.yearend`, `kassebro export`).

Proof on three things that are not kassebro's own code:
- Skatteetaten's 1.30 example file (tests/data/saft-financial, see SOURCE.md there) validates against
  the schema kassebro ships, the schema refuses it without a 1.30-only mandatory element, and
  kassebro's account grouping gives the example's GroupingCategory/GroupingCode;
- the Tripletex sandbox, over real HTTP, holds the books: vouchers are posted to it, the year is
  exported, and every figure in the files is compared with what the sandbox reports itself
  (`balances`, computed by the sandbox from what it holds) and with literals summed by hand;
- the schema validates every file written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from lxml import etree

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.demo.sandboxes import client, connection, create_app
from kassebro.ledgers.base import AccountBalance, LedgerAccount, LedgerPosting, LedgerVatCode
from kassebro.readback import yearend
from kassebro.readback.yearend import CompanyInfo, LedgerYear, YearEndError
from kassebro.sandbox.server import running

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT / "tests" / "data" / "saft-financial" / "generated_auditfile_formatted_v_1.30.xml"
NS = {"s": yearend.NAMESPACE}
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
COMPANY = CompanyInfo("999999999", "Selskapet ASA", "Kari", "Nordmann", telephone="22334455")
CREATED = dt.datetime(2027, 1, 15, 10, 30, 5, tzinfo=yearend.ZONE)


# ---- the official example and the shipped schema ----------------------------------------------


def test_the_official_example_validates_against_the_shipped_schema() -> None:
    assert yearend.validate_file(EXAMPLE) == []


@pytest.mark.parametrize(
    "removed",
    ["s:MasterFiles/s:GeneralLedgerAccounts/s:Account/s:GroupingCategory", "s:Header/s:SelectionCriteria"],
)
def test_the_shipped_schema_is_1_30(tmp_path: Path, removed: str) -> None:
    """GroupingCategory and SelectionCriteria became mandatory in 1.30 (About_SAF-T_Financial_v.1.3):
    the example without one of them is refused, so the schema shipped is not 1.10 or 1.20."""
    tree = etree.parse(str(EXAMPLE), SAFE)
    element = tree.getroot().find(removed, NS)
    element.getparent().remove(element)
    broken = tmp_path / "broken.xml"
    tree.write(str(broken), xml_declaration=True, encoding="UTF-8")
    errors = yearend.validate_file(broken)
    assert errors and any(removed.rsplit(":", 1)[1] in e for e in errors), errors


def test_the_grouping_rule_gives_the_official_examples_codes() -> None:
    tree = etree.parse(str(EXAMPLE), SAFE)
    accounts = tree.getroot().findall("s:MasterFiles/s:GeneralLedgerAccounts/s:Account", NS)
    example = {
        a.findtext("s:AccountID", namespaces=NS): (
            a.findtext("s:GroupingCategory", namespaces=NS),
            a.findtext("s:GroupingCode", namespaces=NS),
        )
        for a in accounts
    }
    assert example == {  # as written in the file
        "1500": ("balanseverdiForOmloepsmiddel", "1500"),
        "1920": ("balanseverdiForOmloepsmiddel", "1920"),
        "2400": ("kortsiktigGjeld", "2400"),
        "2700": ("kortsiktigGjeld", "2740"),
        "2710": ("kortsiktigGjeld", "2740"),
        "3000": ("salgsinntekt", "3000"),
        "4000": ("varekostnad", "4005"),
    }
    ours = {number: (g.category, g.code) for number in example for g in [yearend.grouping_for(number)]}
    assert ours == example


def test_the_grouping_rule_names_only_listed_codes_and_refuses_what_it_cannot_place() -> None:
    codes = yearend.grouping_codes()
    assert len(codes) == 527  # the rows of naeringsspesifikasjon.csv, its header left out
    assert all(code in codes for _, code in yearend.NS4102_GROUPING if code is not None)
    assert (yearend.grouping_for("3040").code, yearend.grouping_for("19201").code) == ("3000", "1920")
    assert yearend.grouping_for("1901:10002") == yearend.grouping_for("1901")  # a Fiken sub-account
    for account in ("1540", "8320", "9100", "999", "19xx"):
        with pytest.raises(KeyError, match=account):
            yearend.grouping_for(account)
    assert yearend.grouping_for("1540", {"1540": "1570"}).category == "balanseverdiForOmloepsmiddel"
    with pytest.raises(KeyError, match="not in the"):
        yearend.grouping_for("1540", {"1540": "1571"})


# ---- a year in the Tripletex sandbox, exported ------------------------------------------------


def _client(url: str) -> Any:
    return client("tripletex", url)


@pytest.fixture
def tripletex() -> Iterator[tuple[Any, str]]:
    with running(create_app("tripletex")) as server, _client(server.url) as client:
        yield client, server.url


def _voucher(day: dt.date, text: str, *lines: VoucherLine) -> Voucher:
    return Voucher("shop12", day, external_ref("shop12", day), text, lines)


def _book_the_years(client: Any) -> None:
    """Last year (openings), four vouchers in 2026 on four days (25, 15 and 12 % sales, a purchase
    at 25 % input VAT) and one in 2027 that the export must leave out."""
    client.post(
        _voucher(
            dt.date(2025, 11, 15),
            "sales last year",
            VoucherLine("1920", 10_000_00, None, "Bankkort"),
            VoucherLine("3000", -8_000_00, "3", "Salg 25 %"),
            VoucherLine("3030", -2_000_00, "31", "Salg 15 %"),
        )
    )
    client.post(
        _voucher(
            dt.date(2025, 12, 20),
            "goods last year",
            VoucherLine("4300", 2_500_00, "1", "Varekjøp"),
            VoucherLine("1920", -2_500_00, None, "Betalt fra bank"),
        )
    )
    client.post(
        _voucher(
            dt.date(2026, 1, 15),
            "POS 2026-01-15",
            VoucherLine("1900", 1_200_00, None, "Kontant"),
            VoucherLine("1920", 1_000_02, None, "Bankkort"),
            VoucherLine("3000", -1_000_00, "3", "Salg 25 %"),
            VoucherLine("3040", -1_000_02, "33", "Salg 12 %"),  # VAT 107.145 -> 107.15: the one-øre rounding
            VoucherLine("3030", -200_00, "31", "Salg 15 %"),
        )
    )
    client.post(
        _voucher(
            dt.date(2026, 3, 2),
            "POS 2026-03-02",
            VoucherLine("1920", 2_500_00, None, "Bankkort"),
            VoucherLine("3000", -2_000_00, "3", "Salg 25 %"),
            VoucherLine("3030", -500_00, "31", "Salg 15 %"),
        )
    )
    client.post(
        _voucher(
            dt.date(2026, 6, 30),
            "goods",
            VoucherLine("4300", 1_250_00, "1", "Varekjøp"),
            VoucherLine("1920", -1_250_00, None, "Betalt fra bank"),
        )
    )
    client.post(
        _voucher(
            dt.date(2026, 12, 31),
            "POS 2026-12-31",
            VoucherLine("1920", 560_00, None, "Bankkort"),
            VoucherLine("3040", -560_00, "33", "Salg 12 %"),
        )
    )
    client.post(
        _voucher(
            dt.date(2027, 1, 2),
            "POS next year",
            VoucherLine("1920", 125_00, None, "Bankkort"),
            VoucherLine("3000", -125_00, "3", "Salg 25 %"),
        )
    )


def _ore(text: str | None) -> int:
    assert text is not None
    return int(Decimal(text) * 100)


def _signed_balance(account: Any, when: str) -> int:
    debit = account.findtext(f"s:{when}DebitBalance", namespaces=NS)
    credit = account.findtext(f"s:{when}CreditBalance", namespaces=NS)
    assert (debit is None) != (credit is None)
    return _ore(debit) if debit is not None else -_ore(credit)


def _line_amount(line: Any) -> int:
    debit = line.findtext("s:DebitAmount/s:Amount", namespaces=NS)
    credit = line.findtext("s:CreditAmount/s:Amount", namespaces=NS)
    assert (debit is None) != (credit is None)
    return _ore(debit) if debit is not None else -_ore(credit)


def test_a_year_from_the_tripletex_sandbox(tmp_path: Path, tripletex: tuple[Any, str]) -> None:
    client, _ = tripletex
    _book_the_years(client)
    result = yearend.export_year(client, 2026, tmp_path / "out", COMPANY, created=CREATED)

    assert result.saft_file.name == "SAF-T Financial_999999999_20270115103005_1_1.xml"
    assert yearend.validate_file(result.saft_file) == []
    root = etree.parse(str(result.saft_file), SAFE).getroot()

    # the header: the company, periods 1-12 of the year, NOK, basis A
    header = root.find("s:Header", NS)
    assert header.findtext("s:Company/s:RegistrationNumber", namespaces=NS) == "999999999"
    assert header.findtext("s:Company/s:Name", namespaces=NS) == "Selskapet ASA"
    assert header.findtext("s:Company/s:Contact/s:ContactPerson/s:LastName", namespaces=NS) == "Nordmann"
    selection = [
        header.findtext(f"s:SelectionCriteria/s:{t}", namespaces=NS)
        for t in ("PeriodStart", "PeriodStartYear", "PeriodEnd", "PeriodEndYear")
    ]
    assert selection == ["1", "2026", "12", "2026"]
    assert (
        header.findtext("s:DefaultCurrencyCode", namespaces=NS),
        header.findtext("s:TaxAccountingBasis", namespaces=NS),
    ) == ("NOK", "A")

    # the entries: the four 2026 vouchers, balanced, the 2027 one left out
    entries = root.find("s:GeneralLedgerEntries", NS)
    transactions = entries.findall("s:Journal/s:Transaction", NS)
    assert entries.findtext("s:NumberOfEntries", namespaces=NS) == "4" and len(transactions) == 4
    assert sorted(t.findtext("s:TransactionDate", namespaces=NS) for t in transactions) == [
        "2026-01-15",
        "2026-03-02",
        "2026-06-30",
        "2026-12-31",
    ]
    lines = [line for t in transactions for line in t.findall("s:Line", NS)]
    debit = sum(_line_amount(line) for line in lines if _line_amount(line) > 0)
    credit = -sum(_line_amount(line) for line in lines if _line_amount(line) < 0)
    # by hand: 2200.02 + 2500.00 + (1000.00 + 250.00 input VAT) + 560.00 debited
    assert debit == credit == 2_200_02 + 2_500_00 + 1_250_00 + 560_00 == result.total_debit == result.total_credit
    assert (
        _ore(entries.findtext("s:TotalDebit", namespaces=NS)),
        _ore(entries.findtext("s:TotalCredit", namespaces=NS)),
    ) == (debit, credit)
    for transaction in transactions:
        assert sum(_line_amount(line) for line in transaction.findall("s:Line", NS)) == 0

    # the 12 % line of 1000.02 gross: net 892.87 and VAT 107.15 (107.145 rounded half up), the
    # ledger's own VAT row on 2702 without TaxInformation
    (low,) = [
        line
        for line in lines
        if line.findtext("s:AccountID", namespaces=NS) == "3040" and _line_amount(line) == -892_87
    ]
    tax = low.find("s:TaxInformation", NS)
    assert [tax.findtext(f"s:{t}", namespaces=NS) for t in ("TaxCode", "TaxPercentage", "TaxBase")] == [
        "33",
        "12",
        "892.87",
    ]
    assert tax.findtext("s:CreditTaxAmount/s:Amount", namespaces=NS) == "107.15"
    vat_rows = [line for line in lines if line.findtext("s:AccountID", namespaces=NS) == "2702"]
    assert sorted(_line_amount(v) for v in vat_rows) == [-107_15, -60_00] and all(
        v.find("s:TaxInformation", NS) is None for v in vat_rows
    )
    purchase = next(line for line in lines if line.findtext("s:AccountID", namespaces=NS) == "4300")
    assert purchase.findtext("s:TaxInformation/s:DebitTaxAmount/s:Amount", namespaces=NS) == "250.00"
    codes = root.findall("s:MasterFiles/s:TaxTable/s:TaxTableEntry/s:TaxCodeDetails", NS)
    assert {
        (
            c.findtext("s:TaxCode", namespaces=NS),
            c.findtext("s:StandardTaxCode", namespaces=NS),
            c.findtext("s:TaxPercentage", namespaces=NS),
        )
        for c in codes
    } == {
        ("1", "1", "25"),
        ("3", "3", "25"),
        ("31", "31", "15"),
        ("33", "33", "12"),
    }

    # the accounts: closing = opening + the year's lines, and both as the sandbox reports them
    ledger = {b.account: b for b in client.balances(dt.date(2026, 1, 1), dt.date(2027, 1, 1))}
    moved: dict[str, int] = defaultdict(int)
    for line in lines:
        moved[line.findtext("s:AccountID", namespaces=NS)] += _line_amount(line)
    accounts = root.findall("s:MasterFiles/s:GeneralLedgerAccounts/s:Account", NS)
    seen = {}
    for account in accounts:
        number = account.findtext("s:AccountID", namespaces=NS)
        opening, closing = _signed_balance(account, "Opening"), _signed_balance(account, "Closing")
        assert closing == opening + moved[number], number
        assert (opening, closing) == (ledger[number].opening, ledger[number].closing), number
        seen[number] = (opening, closing, account.findtext("s:GroupingCode", namespaces=NS))
    assert set(seen) == set(ledger)
    # openings by hand from 2025: bank 10000.00 - 2500.00, output VAT 1600.00 (25 %) and 260.87
    # (15 %), input VAT 500.00; result accounts start at zero
    assert {a: s[0] for a, s in seen.items() if s[0]} == {
        "1920": 7_500_00,
        "2700": -1_600_00,
        "2701": -260_87,
        "2710": 500_00,
    }
    assert seen["1920"][1] == 7_500_00 + 1_000_02 + 2_500_00 - 1_250_00 + 560_00
    assert {a: s[2] for a, s in seen.items()} == {
        "1900": "1900", "1920": "1920", "2700": "2740", "2701": "2740", "2702": "2740",
        "2710": "2740", "3000": "3000", "3030": "3000", "3040": "3000", "4300": "4005",
    }  # fmt: skip

    # the trial balance and the transactions: CSV and Parquet hold the same, and what the sandbox says
    csv_tb = yearend.read_csv(result.trial_balance_csv)
    assert csv_tb == pq.read_table(result.trial_balance_parquet).to_pylist()
    assert {r["account"]: (r["opening"], r["movement"], r["closing"]) for r in csv_tb} == {
        a: tuple(Decimal(x) / 100 for x in (b.opening, b.movement, b.closing)) for a, b in ledger.items()
    }
    assert next(r["name"] for r in csv_tb if r["account"] == "2702") == "Utgående merverdiavgift, lav sats"
    csv_gl = yearend.read_csv(result.transactions_csv)
    assert csv_gl == pq.read_table(result.transactions_parquet).to_pylist()
    postings = client.postings(dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    assert len(csv_gl) == len(postings) == len(lines) == result.lines
    per_account: dict[str, Decimal] = defaultdict(Decimal)
    for row in csv_gl:
        per_account[row["account"]] += row["amount"]
    assert dict(per_account) == {a: Decimal(b.movement) / 100 for a, b in ledger.items()}
    assert sum(r["amount"] for r in csv_gl) == 0 and {r["date"].year for r in csv_gl} == {2026}
    assert sum(r["system_generated"] for r in csv_gl) == 3 + 2 + 1 + 1  # one VAT row per taxed line
    assert sorted(p.name for p in result.saft_file.parent.iterdir()) == sorted(
        [result.saft_file.name]
        + [
            f"999999999_2026_{k}"
            for k in ("trial_balance.csv", "trial_balance.parquet", "transactions.csv", "transactions.parquet")
        ]
    )


# ---- what is refused --------------------------------------------------------------------------


def test_a_year_exported_to_an_object_store_is_the_same_files(tmp_path: Path, tripletex: tuple[Any, str]) -> None:
    """With Celery workers on several hosts the export goes to a shared store (config.export_url):
    fsspec's memory:// store, which has no local path, gets the very bytes a local folder gets."""
    import uuid

    from kassebro.core.workfiles import storage_path

    client, _ = tripletex
    _book_the_years(client)
    local = yearend.export_year(client, 2026, tmp_path / "out", COMPANY, created=CREATED)
    store = storage_path(f"memory://exports-{uuid.uuid4().hex}") / "tripletex_demo" / "999999999" / "2026"
    shared = yearend.export_year(client, 2026, store, COMPANY, created=CREATED)
    for field in (
        "saft_file",
        "trial_balance_csv",
        "trial_balance_parquet",
        "transactions_csv",
        "transactions_parquet",
    ):
        there, here = getattr(shared, field), getattr(local, field)
        assert there.protocol == "memory" and there.name == here.name, field
        assert there.read_bytes() == here.read_bytes(), field
    assert yearend.read_csv(shared.trial_balance_csv) == yearend.read_csv(local.trial_balance_csv)
    assert sorted(p.name for p in store.iterdir()) == sorted(p.name for p in local.saft_file.parent.iterdir())


def _posting(
    voucher: str, account: str, amount: int, vat: str | None = None, gross: int | None = None
) -> LedgerPosting:
    return LedgerPosting(
        voucher,
        f"{voucher}-2026",
        dt.date(2026, 5, 5),
        account,
        amount,
        amount if gross is None else gross,
        vat,
        "",
        "",
    )


def _year(postings: list[LedgerPosting], balances: list[AccountBalance] | None = None) -> LedgerYear:
    if balances is None:
        moved: dict[str, int] = defaultdict(int)
        for p in postings:
            moved[p.account] += p.amount
        balances = [AccountBalance(a, "", 0, m, m) for a, m in moved.items()]
    accounts = tuple(LedgerAccount(a, f"Konto {a}") for a in {p.account for p in postings})
    return LedgerYear(
        "Tripletex",
        2026,
        tuple(balances),
        tuple(postings),
        accounts,
        (LedgerVatCode("3", "6004", "Utgående", Decimal(25)),),
    )


def test_an_unbalanced_year_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    data = _year(
        [_posting("1", "1920", 100_00), _posting("1", "3000", -79_99, "3", -99_99), _posting("1", "2700", -20_00)]
    )
    with pytest.raises(YearEndError) as refused:
        yearend.write_export(data, tmp_path / "out", COMPANY, created=CREATED)
    message = str(refused.value)
    assert "Selskapet ASA" in message and "999999999" in message and "2026" in message
    assert "total debit 100.00, total credit 99.99, difference 0.01" in message and "1-2026 (0.01)" in message
    assert not (tmp_path / "out").exists()


def test_a_balance_that_is_not_its_postings_is_refused(tmp_path: Path) -> None:
    postings = [
        _posting("1", "1920", 125_00),
        _posting("1", "3000", -100_00, "3", -125_00),
        _posting("1", "2700", -25_00),
    ]
    balances = [
        AccountBalance("1920", "", 0, 125_00, 125_00),
        AccountBalance("3000", "", 0, -100_00, -100_00),
        AccountBalance("2700", "", 0, -24_00, -24_00),
    ]
    with pytest.raises(
        YearEndError, match=r"account 2700: the ledger's movement -24\.00 is not the sum of its postings -25\.00"
    ):
        yearend.write_export(_year(postings, balances), tmp_path / "out", COMPANY, created=CREATED)
    assert not (tmp_path / "out").exists()


def test_an_account_without_a_grouping_code_is_refused_until_named(tmp_path: Path) -> None:
    data = _year([_posting("1", "1540", 50_00), _posting("1", "1920", -50_00)])
    with pytest.raises(YearEndError, match="account 1540: no grouping code"):
        yearend.write_export(data, tmp_path / "out", COMPANY, created=CREATED)
    result = yearend.write_export(data, tmp_path / "out", COMPANY, grouping={"1540": "1570"}, created=CREATED)
    assert yearend.validate_file(result.saft_file) == []
    root = etree.parse(str(result.saft_file), SAFE).getroot()
    (account,) = [a for a in root.iterfind(".//s:Account", NS) if a.findtext("s:AccountID", namespaces=NS) == "1540"]
    assert account.findtext("s:GroupingCode", namespaces=NS) == "1570"


def test_vat_rows_a_client_does_not_flag_carry_no_tax_information(tmp_path: Path) -> None:
    """PowerOffice Go's read-back: the VAT row on 2700 carries its line's code "3" with gross = net
    and is not flagged system_generated; a zero-rated line (code 5) carries its base and 0.00."""
    data = _year(
        [
            _posting("7", "1920", 225_00),
            _posting("7", "3000", -100_00, "3", -125_00),
            _posting("7", "2700", -25_00, "3"),
            _posting("7", "3100", -100_00, "5"),
        ]
    )
    data = LedgerYear(
        data.system, data.year, data.balances, data.postings, data.accounts,
        (LedgerVatCode("3", "1", "Utgående", Decimal(25)), LedgerVatCode("5", "2", "Fritatt", Decimal(0))),
    )  # fmt: skip
    result = yearend.write_export(data, tmp_path, COMPANY, created=CREATED)
    root = etree.parse(str(result.saft_file), SAFE).getroot()
    taxed = {
        line.findtext("s:AccountID", namespaces=NS): [
            line.findtext(f"s:TaxInformation/s:{t}", namespaces=NS)
            for t in ("TaxCode", "TaxBase", "CreditTaxAmount/s:Amount")
        ]
        for line in root.iterfind(".//s:Line", NS)
    }
    assert taxed == {
        "1920": [None, None, None],
        "3000": ["3", "100.00", "25.00"],
        "2700": [None, None, None],
        "3100": ["5", "100.00", "0.00"],
    }


def test_a_company_is_checked() -> None:
    with pytest.raises(ValueError, match="check digit"):
        CompanyInfo("999999998", "Selskapet ASA", "Kari", "Nordmann")
    with pytest.raises(ValueError, match="contact_last_name"):
        CompanyInfo("999999999", "Selskapet ASA", "Kari", " ")


# ---- the command ------------------------------------------------------------------------------


def _vendor_files(root: Path, org: str | None) -> Path:
    """A config dir (the project's ledger templates and defaults) with one vendor on tx_year."""
    config = root / "config"
    (config / "vendors").mkdir(parents=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    org_line = f"organisation_number: '{org}'\n" if org else ""
    (config / "vendors" / "shop12.yaml").write_text(
        "id: shop12\nname: Kiosk Torget\n" + org_line + "enabled_since: 2025-01-01\n"
        "source: {kind: saft, path: saft/shop12}\n"
        "ledger: {system: tripletex, connection: tx_year}\n"
        "mapping: {payment_types: {'12001': '1900', '12002': '1920'}}\n",
        encoding="utf-8",
    )
    return config


def test_the_command_exports_the_year_of_a_connection(
    tmp_path: Path, tripletex: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kassebro.cli import main

    client, url = tripletex
    _book_the_years(client)
    monkeypatch.setenv("AIRFLOW_CONN_TX_YEAR", json.dumps(connection("tripletex", url)))
    monkeypatch.setenv("KASSEBRO_DATA", str(tmp_path / "data"))
    config = _vendor_files(tmp_path / "home", "999999999")
    out = tmp_path / "export"
    args = ["export", "--company", "tx_year", "--year", "2026", "--out", str(out), "--config", str(config)]
    assert main([*args, "--contact", "Kari Nordmann"]) == 0
    printed = capsys.readouterr().out
    (saft,) = out.glob("SAF-T Financial_999999999_*_1_1.xml")
    assert re.fullmatch(r"SAF-T Financial_999999999_\d{14}_1_1\.xml", saft.name)
    assert yearend.validate_file(saft) == []
    assert "Kiosk Torget (organisation number 999999999), 2026" in printed and "4 voucher(s)" in printed
    name = etree.parse(str(saft), SAFE).getroot().findtext("s:Header/s:Company/s:Name", namespaces=NS)
    assert name == "Kiosk Torget"  # the vendor file's name, as no --name was given

    # no organisation number configured for the connection: the command asks for one
    bare = _vendor_files(tmp_path / "bare", None)
    assert (
        main(
            [
                "export",
                "--company",
                "tx_year",
                "--year",
                "2026",
                "--out",
                str(out),
                "--config",
                str(bare),
                "--contact",
                "Kari Nordmann",
            ]
        )
        == 1
    )
    assert "--org-number" in capsys.readouterr().err
