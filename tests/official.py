"""Skatteetaten's two official SAF-T Cash Register examples, shipped under tests/data/saft, and a
vendor whose files they could be (organisation number 999999999, "Selskapet ASA")."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from lxml import etree

PROJECT = Path(__file__).resolve().parents[1]
DATA = PROJECT / "tests" / "data" / "saft"
EXAMPLE_2016 = DATA / "ExampleFile SAF-T Cash Register_999999999_20161125210734.xml"
EXAMPLE_2021 = DATA / "ExampleFile SAF-T Cash Register_999999999_20210330104000.xml"
DAY_2016 = dt.date(2016, 1, 1)
DAY_2021 = dt.date(2020, 1, 1)
REGISTER = "11.222-33.44.567"
ORGNR = "999999999"
_NS = "urn:StandardAuditFile-Taxation-CashRegister:NO"


def write_config(root: Path, vendors: dict[str, Path], **fields: object) -> Path:
    """A config dir (the project's ledger templates and defaults) with one vendor per SAF-T source:
    id -> file or folder. Each is Selskapet ASA on the Default ledger, posting to tripletex_demo."""
    config = root / "config"
    (config / "vendors").mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers", dirs_exist_ok=True)
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    # a short test retry schedule needs a lease that ends before it (the config check asks so)
    lease = 1 if fields.get("retry_delay_seconds") == 1 else 120
    for vendor_id, source in vendors.items():
        extra = "".join(f"{key}: {value}\n" for key, value in fields.items())
        (config / "vendors" / f"{vendor_id}.yaml").write_text(
            f"id: {vendor_id}\nname: Selskapet ASA\norganisation_number: '{ORGNR}'\nenabled_since: 2016-01-01\n"
            f"source: {{kind: saft, path: '{source}'}}\n"
            "ledger: {system: tripletex, connection: tripletex_demo, "
            f"lease_seconds: {lease}, visibility_seconds: 0}}\n" + extra,
            encoding="utf-8",
        )
    return config


def corrected_2016(target: Path) -> Path:
    """The 2016 example with its two placeholders corrected as its accountant would: every
    `roundingAmnt` 1234.560 set to 0.00 (lines already equal payments), and every VAT figure set to
    what its gross holds at its rate (the file writes rate x gross): the lines' vatAmnt, lineAmntEx
    and vatBasAmnt, each transaction's vat block and the Z report's vatAmnt per code."""
    from kassebro.core.money import format_ore, parse_ore, vat_from_gross

    tree = etree.parse(str(EXAMPLE_2016), etree.XMLParser(resolve_entities=False, no_network=True))
    ns = {"n": _NS}
    for rounding in tree.iterfind(".//n:roundingAmnt", ns):
        rounding.text = "0.00"
    per_code: dict[str, int] = {}
    for transaction in tree.iterfind(".//n:cashtransaction", ns):
        own: dict[str, list[int]] = {}
        for line in transaction.iterfind("n:ctLine", ns):
            gross = parse_ore(line.findtext("n:lineAmntIn", namespaces=ns))
            vat = line.find("n:vat", ns)
            rate = parse_ore(vat.findtext("n:vatPerc", namespaces=ns))
            amount = vat_from_gross(gross, rate)
            code = vat.findtext("n:vatCode", namespaces=ns)
            vat.find("n:vatAmnt", ns).text = format_ore(amount)
            vat.find("n:vatBasAmnt", ns).text = format_ore(gross - amount)
            line.find("n:lineAmntEx", ns).text = format_ore(gross - amount)
            sums = own.setdefault(code, [0, 0])
            sums[0] += gross
            sums[1] += amount
            per_code[code] = per_code.get(code, 0) + amount
        for vat in transaction.iterfind("n:vat", ns):
            gross, amount = own[vat.findtext("n:vatCode", namespaces=ns)]
            vat.find("n:vatAmnt", ns).text = format_ore(amount)
            vat.find("n:vatBasAmnt", ns).text = format_ore(gross - amount)
        total = sum(amount for _gross, amount in own.values())
        transaction.find("n:transAmntEx", ns).text = format_ore(
            parse_ore(transaction.findtext("n:transAmntIn", namespaces=ns)) - total
        )
    for row in tree.iterfind(".//n:reportCashSaleVat", ns):
        row.find("n:vatAmnt", ns).text = format_ore(per_code.get(row.findtext("n:vatCode", namespaces=ns), 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    tree.write(str(target), xml_declaration=True, encoding="UTF-8")
    return target
