"""Write the corpus of bad SAF-T inputs (and the controls that must pass) from demo generator files.

    python -m tests.corpus.make_corpus        # rewrites tests/corpus/{bad,good}/ and cases.json

Every case starts from a file the demo POS writes for a project vendor (its own organisation
number), then breaks one thing the way a real export goes wrong: hostile XML, malformed XML,
schema-invalid content, numbers out of range, accounting that does not add up, another company's
file. Where a defect would also throw other totals off, the Z report is adjusted so the case
names the rule it is about (the receipts a case touches are plain ones: no bill discount or tip).
The output is deterministic: the committed corpus must equal what this script writes (a test
checks it), so a change to the demo generator shows here.

`CASES` is also used directly: the e2e test applies cases to other days to run them through the DAG.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from lxml import etree

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
DAY = dt.date(2026, 11, 10)  # a Tuesday: every demo shop is open
NS = "urn:StandardAuditFile-Taxation-CashRegister:NO"
N = {"s": NS}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False)


@dataclass(frozen=True)
class Base:
    """A demo POS file a case starts from."""

    vendor: str  # a project vendor (config/vendors/<vendor>.yaml)
    receipts: int = 10
    z_amounts: str = "gross"
    days: int = 1  # more than one: a period file of consecutive days from DAY

    def write(self, day: dt.date, folder: Path) -> Path:
        from kassebro.demo import data as demo_data
        from kassebro.demo import home as demo

        vendor_file = yaml.safe_load((PROJECT / "config" / "vendors" / f"{self.vendor}.yaml").read_text("utf-8"))
        who = demo.demo_vendor(self.vendor)
        orgnr = str(vendor_file["organisation_number"])
        if self.days > 1:
            last = day + dt.timedelta(days=self.days - 1)
            path = folder / f"period-{day}.xml"
            return demo_data.write_period(
                who.profile, orgnr, who.company, day, last, path, receipts=self.receipts, z_amounts=self.z_amounts
            )
        return demo_data.write_day(
            who.profile, orgnr, who.company, day, folder, receipts=self.receipts, z_amounts=self.z_amounts
        )


SHOP = Base("butikk_fjord")
SHOP_NET = Base("jernvare_sentrum", z_amounts="net")
BAR = Base("vinbar_kaia", receipts=8)
CAFE = Base("cafe_solsiden")
SHOP_BIG = Base("butikk_fjord", receipts=44)  # every forced kind: bill discount, credit sale ...
PERIOD = Base("butikk_fjord", receipts=6, days=2)


@dataclass(frozen=True)
class Case:
    """One corpus file: how it is made and what must refuse it (any one of `rules`; none for a control)."""

    name: str
    category: str  # hostile, malformed, schema, range, accounting, company, control
    about: str
    base: Base
    mutate: Callable[[bytes], bytes]
    rules: tuple[str, ...] = ()
    days_after: int = 0  # the business day asked: DAY + this
    tags: tuple[str, ...] = field(default=())

    @property
    def path(self) -> str:
        folder = "good" if self.category == "control" else f"bad/{self.category}"
        return f"{folder}/{self.name}.xml"

    def build(self, day: dt.date, work: Path) -> bytes:
        return self.mutate(self.base.write(day, work).read_bytes())


# ---------------------------------------------------------------------------------------------
# Editing helpers


def _tree(data: bytes) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(data, _PARSER))


def _bytes(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _edit(fn: Callable[[etree._ElementTree], None]) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        tree = _tree(data)
        fn(tree)
        return _bytes(tree)

    return mutate


def _q(path: str) -> str:
    return "/".join(f"s:{part}" if part and part[0].isalpha() else part for part in path.split("/"))


def _all(tree: etree._ElementTree | etree._Element, path: str) -> list[etree._Element]:
    return tree.xpath(_q(path), namespaces=N)


def _one(tree: etree._ElementTree | etree._Element, path: str) -> etree._Element:
    found = _all(tree, path)
    assert found, path
    return found[0]


def _ore(text: str | None) -> int:
    return int(Decimal(text or "0") * 100)


def _kr(ore: int) -> str:
    return f"{'-' if ore < 0 else ''}{abs(ore) // 100}.{abs(ore) % 100:02d}"


def _add(elem: etree._Element, ore: int) -> None:
    elem.text = _kr(_ore(elem.text) + ore)


def _plain_receipts(tree: etree._ElementTree) -> list[etree._Element]:
    """Sales receipts without bill discount, tip, rounding or cash: safe to copy or drop."""
    found = []
    for txn in _all(tree, "//cashtransaction"):
        kind = txn.findtext(f"{{{NS}}}transType")
        if kind != "CASHSAL" or _all(txn, "discount") or _all(txn, "ctLine/raise") or _all(txn, "rounding"):
            continue
        if txn.findtext(f"{{{NS}}}payment/{{{NS}}}paymentType") == "CASH":
            continue
        found.append(txn)
    assert found, "the base file has a plain card receipt"
    return found


def _z_of(txn: etree._Element) -> etree._Element:
    register = txn.getparent()
    return _one(register, "event/eventReport")


def _shift_z(report: etree._Element, txn: etree._Element, sign: int) -> None:
    """Add (sign 1) or take away (-1) a plain receipt's figures to its Z report's totals."""
    z_amounts = "net" if _net(report) else "gross"
    total = 0
    for line in _all(txn, "ctLine"):
        gross, vat = _ore(line.findtext(f"{{{NS}}}lineAmntIn")), _ore(_one(line, "vat/vatAmnt").text)
        code = _one(line, "vat/vatCode").text
        for row in _all(report, "reportCashSalesVat/reportCashSaleVat"):
            if row.findtext(f"{{{NS}}}vatCode") == code:
                _add(_one(row, "cashSaleAmnt"), sign * (gross - vat if z_amounts == "net" else gross))
                _add(_one(row, "vatAmnt"), sign * vat)
        group = line.findtext(f"{{{NS}}}artGroupID")
        for row in _all(report, "reportArtGroups/reportArtGroup"):
            if row.findtext(f"{{{NS}}}artGroupID") == group:
                _add(_one(row, "artGroupAmnt"), sign * gross)
        total += gross
    for payment in _all(txn, "payment"):
        kind = payment.findtext(f"{{{NS}}}paymentType")
        for row in _all(report, "reportPayments/reportPayment"):
            if row.findtext(f"{{{NS}}}paymentType") == kind:
                _add(_one(row, "paymentAmnt"), sign * _ore(payment.findtext(f"{{{NS}}}paidAmnt")))
    _add(_one(report, "reportTotalCashSales/totalCashSaleAmnt"), sign * total)


def _net(report: etree._Element) -> bool:
    rows = _all(report, "reportCashSalesVat/reportCashSaleVat")
    total = _ore(_one(report, "reportTotalCashSales/totalCashSaleAmnt").text)
    gross = sum(_ore(r.findtext(f"{{{NS}}}cashSaleAmnt")) for r in rows)
    return gross != total


def _text_replace(old: bytes, new: bytes, count: int = 1) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        assert old in data, old
        return data.replace(old, new, count)

    return mutate


def _regex(pattern: bytes, repl: bytes | Callable, count: int = 1) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        out, n = re.subn(pattern, repl, data, count=count)
        assert n, pattern
        return out

    return mutate


def _prolog(doctype: bytes) -> Callable[[bytes], bytes]:
    """Put a DOCTYPE between the XML declaration and the root element."""
    return _text_replace(b"\n<auditfile", b"\n" + doctype + b"\n<auditfile")


def _set(path: str, value: str, index: int = 0) -> Callable[[bytes], bytes]:
    def fn(tree: etree._ElementTree) -> None:
        _all(tree, path)[index].text = value

    return _edit(fn)


# ---------------------------------------------------------------------------------------------
# Accounting defects (tree edits)


def _duplicate_receipt(new_id: bool, new_nr: bool = False) -> Callable[[bytes], bytes]:
    def fn(tree: etree._ElementTree) -> None:
        txn = _plain_receipts(tree)[0]
        copy = etree.fromstring(etree.tostring(txn), _PARSER)
        if new_id:
            _one(copy, "transID").text += "b"
        if new_nr:
            _one(copy, "nr").text = str(int(_one(copy, "nr").text) + 1000)
        txn.addnext(copy)
        _shift_z(_z_of(txn), txn, 1)

    return _edit(fn)


def _drop_receipt(which: Callable[[list[etree._Element]], etree._Element]) -> Callable[[bytes], bytes]:
    def fn(tree: etree._ElementTree) -> None:
        txn = which(_plain_receipts(tree))
        _shift_z(_z_of(txn), txn, -1)
        txn.getparent().remove(txn)

    return _edit(fn)


def _simple(txn: etree._Element) -> bool:
    """A sale or cash count without bill discount, tip or return: `_shift_z` can take it out."""
    kind = txn.findtext(f"{{{NS}}}transType")
    return kind in ("CASHSAL", "CASHDIFF") and not _all(txn, "discount") and not _all(txn, "ctLine/raise")


def _drop_last_of_first_day(tree: etree._ElementTree) -> None:
    """In a two-day period file: the first day's last transaction on a register goes (and from its Z report)."""
    for register in _all(tree, "//cashregister"):
        reports = _all(register, "event/eventReport")
        first_day = reports[0].findtext(f"{{{NS}}}reportDate")
        txns = [t for t in _all(register, "cashtransaction") if t.findtext(f"{{{NS}}}transDate") == first_day]
        if txns and _simple(txns[-1]):
            _shift_z(reports[0], txns[-1], -1)
            register.remove(txns[-1])
            return
    raise AssertionError("no register ends its first day with a simple transaction")


def _middle(txns: list[etree._Element]) -> etree._Element:
    """A plain receipt with numbers on both sides of it in its register (its loss is a gap)."""
    for txn in txns:
        before, after = txn.getprevious(), txn.getnext()
        if before is not None and before.tag == f"{{{NS}}}cashtransaction" and after is not None:
            return txn
    raise AssertionError("a plain receipt inside its register's day")


def _receipt_amount(tree: etree._ElementTree) -> None:
    _add(_one(_plain_receipts(tree)[0], "transAmntIn"), 500)


def _unbalanced_payment(tree: etree._ElementTree) -> None:
    txn = _plain_receipts(tree)[0]
    _add(_one(txn, "payment/paidAmnt"), 100)
    kind = _one(txn, "payment/paymentType").text
    for row in _all(_z_of(txn), "reportPayments/reportPayment"):
        if row.findtext(f"{{{NS}}}paymentType") == kind:
            _add(_one(row, "paymentAmnt"), 100)


def _z_field(path: str, delta: int) -> Callable[[bytes], bytes]:
    """Move the last figure at `path` in the first Z report by `delta` øre."""

    def fn(tree: etree._ElementTree) -> None:
        _add(_all(_one(tree, "//eventReport"), path)[-1], delta)

    return _edit(fn)


def _z_contradiction(tree: etree._ElementTree) -> None:
    """The VAT amounts fit neither reading and the total matches neither sum."""
    report = _one(tree, "//eventReport")
    for row in _all(report, "reportCashSalesVat/reportCashSaleVat"):
        amount = _ore(row.findtext(f"{{{NS}}}cashSaleAmnt"))
        if amount:
            _one(row, "vatAmnt").text = _kr(amount // 2)
    _add(_one(report, "reportTotalCashSales/totalCashSaleAmnt"), 12345)


def _drop_z_report(tree: etree._ElementTree) -> None:
    event = _one(tree, "//cashregister[2]/event")
    event.getparent().remove(event)


def _line_vat(tree: etree._ElementTree) -> None:
    txn = _plain_receipts(tree)[0]
    line = _one(txn, "ctLine")
    _add(_one(line, "vat/vatAmnt"), 300)
    _add(_one(line, "lineAmntEx"), -300)
    report = _z_of(txn)
    code = _one(line, "vat/vatCode").text
    for row in _all(report, "reportCashSalesVat/reportCashSaleVat"):
        if row.findtext(f"{{{NS}}}vatCode") == code:
            _add(_one(row, "vatAmnt"), 300)


def _vat_drift(tree: etree._ElementTree) -> None:
    """Every sale line's VAT one øre high (inside 1 øre a line, but the day's sum is over the tolerance)."""
    per_code: dict[str, int] = {}
    for line in _all(tree, "//cashtransaction/ctLine[s:vat]"):
        if _ore(line.findtext(f"{{{NS}}}lineAmntIn")) <= 0:
            continue
        _add(_one(line, "vat/vatAmnt"), 1)
        _add(_one(line, "lineAmntEx"), -1)
        code = _one(line, "vat/vatCode").text
        per_code[code] = per_code.get(code, 0) + 1
    for report in _all(tree, "//eventReport"):
        for row in _all(report, "reportCashSalesVat/reportCashSaleVat"):
            # the lines were spread over two registers' reports: put each code's drift on the first
            code = row.findtext(f"{{{NS}}}vatCode")
            if code in per_code:
                _add(_one(row, "vatAmnt"), per_code.pop(code))


def _outside_day(tree: etree._ElementTree) -> None:
    txn = _plain_receipts(tree)[0]
    earlier = dt.date.fromisoformat(txn.findtext(f"{{{NS}}}transDate")) - dt.timedelta(days=2)
    # still claimed by the day's Z report (none before it), but two days early: a wrong clock
    for element in _all(txn, "transDate") + _all(txn, "ctLine/lineDate"):
        element.text = earlier.isoformat()


def _foreign_payment(rate: str | None) -> Callable[[bytes], bytes]:
    def fn(tree: etree._ElementTree) -> None:
        payment = _one(_plain_receipts(tree)[0], "payment")
        paid = _ore(_one(payment, "paidAmnt").text)
        _one(payment, "curCode").text = "EUR"
        if rate is None:
            return
        euros = Decimal(paid) / 100 / Decimal(rate)
        _one(payment, "paidAmnt").text = f"{euros:.2f}"
        # a rate that turns the euros back into the NOK amount to the øre
        exact = (Decimal(paid) / 100 / Decimal(f"{euros:.2f}")).quantize(Decimal("0.000001"))
        assert (Decimal(f"{euros:.2f}") * exact * 100).quantize(Decimal(1)) == paid
        payment.append(etree.fromstring(f'<exchRt xmlns="{NS}">{exact}</exchRt>'))

    return _edit(fn)


def _rename_code(path: str, old: str | None, new: str, *, in_master: bool) -> Callable[[bytes], bytes]:
    """Rename a code where it is used (every occurrence at `path` with text `old`, or the first)."""

    def fn(tree: etree._ElementTree) -> None:
        used = [e for e in _all(tree, path) if old is None or e.text == old]
        assert used, path
        for element in used:
            element.text = new
        if in_master and old is not None:
            for element in _all(tree, "//basics/basic/basicID") + _all(tree, "//vatCodeDetail/vatCode"):
                if element.text == old:
                    element.text = new

    return _edit(fn)


def _vat_code_unknown_standard(tree: etree._ElementTree) -> None:
    _one(tree, "//vatCodeDetail/standardVatCode").text = "99"


def _declare_and_use_group(group: str, mapped: bool) -> Callable[[bytes], bytes]:
    """Lines of one plain receipt move to a new article group, declared in the basics (but unmapped)."""

    def fn(tree: etree._ElementTree) -> None:
        txn = _plain_receipts(tree)[0]
        report = _z_of(txn)
        for line in _all(txn, "ctLine"):
            old = _one(line, "artGroupID")
            gross = _ore(line.findtext(f"{{{NS}}}lineAmntIn"))
            for row in _all(report, "reportArtGroups/reportArtGroup"):
                if row.findtext(f"{{{NS}}}artGroupID") == old.text:
                    _add(_one(row, "artGroupAmnt"), -gross)
            old.text = group
            groups = _one(report, "reportArtGroups")
            existing = [r for r in _all(groups, "reportArtGroup") if r.findtext(f"{{{NS}}}artGroupID") == group]
            if existing:
                _add(_one(existing[0], "artGroupAmnt"), gross)
            else:
                groups.append(
                    etree.fromstring(
                        f'<reportArtGroup xmlns="{NS}"><artGroupID>{group}</artGroupID><artGroupNum>1</artGroupNum>'
                        f"<artGroupAmnt>{_kr(gross)}</artGroupAmnt></reportArtGroup>"
                    )
                )
        basics = _one(tree, "//basics")
        predefined = "<predefinedBasicID>04999</predefinedBasicID>" if mapped else ""
        basics.insert(
            0,
            etree.fromstring(
                f'<basic xmlns="{NS}"><basicType>04</basicType><basicID>{group}</basicID>{predefined}'
                f"<basicDesc>Ny varegruppe</basicDesc></basic>"
            ),
        )

    return _edit(fn)


def _payment_type_unmapped(tree: etree._ElementTree) -> None:
    """One card payment becomes a declared payment type no mapping knows (no predefined code)."""
    txn = _plain_receipts(tree)[0]
    payment = _one(txn, "payment")
    kind = _one(payment, "paymentType")
    paid = _ore(_one(payment, "paidAmnt").text)
    report = _z_of(txn)
    for row in _all(report, "reportPayments/reportPayment"):
        if row.findtext(f"{{{NS}}}paymentType") == kind.text:
            _add(_one(row, "paymentAmnt"), -paid)
    kind.text = "BONUSKORT"
    _one(report, "reportPayments").append(
        etree.fromstring(
            f'<reportPayment xmlns="{NS}"><paymentType>BONUSKORT</paymentType><paymentNum>1</paymentNum>'
            f"<paymentAmnt>{_kr(paid)}</paymentAmnt></reportPayment>"
        )
    )
    _one(tree, "//basics").insert(
        0,
        etree.fromstring(
            f'<basic xmlns="{NS}"><basicType>12</basicType><basicID>BONUSKORT</basicID>'
            "<basicDesc>Bonuskort</basicDesc></basic>"
        ),
    )


def _rounding(ore: int) -> Callable[[bytes], bytes]:
    """A cash receipt rounded by `ore` (paid that much more; Z report's cash total with it)."""

    def fn(tree: etree._ElementTree) -> None:
        for txn in _all(tree, "//cashtransaction"):
            if _all(txn, "rounding") and txn.findtext(f"{{{NS}}}payment/{{{NS}}}paymentType") == "CASH":
                _add(_one(txn, "rounding/roundingAmnt"), ore)
                _add(_one(txn, "payment/paidAmnt"), ore)
                for row in _all(_z_of(txn), "reportPayments/reportPayment"):
                    if row.findtext(f"{{{NS}}}paymentType") == "CASH":
                        _add(_one(row, "paymentAmnt"), ore)
                return
        raise AssertionError("a cash receipt with rounding")

    return _edit(fn)


def _cash_count(difference: int) -> Callable[[bytes], bytes]:
    """A cash count (11008) at the end of register 1 showing `difference` (Z cash total with it)."""

    def fn(tree: etree._ElementTree) -> None:
        register = _all(tree, "//cashregister")[0]
        txns = _all(register, "cashtransaction")
        last = txns[-1]
        nr = int(last.findtext(f"{{{NS}}}nr")) + 1
        date, time = last.findtext(f"{{{NS}}}transDate"), last.findtext(f"{{{NS}}}transTime")
        tp = "D" if difference < 0 else "C"
        last.addnext(
            etree.fromstring(
                f'<cashtransaction xmlns="{NS}"><nr>{nr}</nr><transID>COUNT-{nr}</transID>'
                f"<transType>CASHDIFF</transType><transAmntIn>{_kr(difference)}</transAmntIn>"
                f"<transAmntEx>{_kr(difference)}</transAmntEx><amntTp>{tp}</amntTp>"
                f"<transDate>{date}</transDate><transTime>{time}</transTime>"
                f"<payment><paymentType>CASH</paymentType><paidAmnt>{_kr(difference)}</paidAmnt>"
                "<curCode>NOK</curCode></payment><signature>count</signature><keyVersion>1</keyVersion>"
                "</cashtransaction>"
            )
        )
        rows = [r for r in _all(register, "event/eventReport/reportPayments/reportPayment")]
        cash = [r for r in rows if r.findtext(f"{{{NS}}}paymentType") == "CASH"]
        _add(_one(cash[0], "paymentAmnt"), difference)

    return _edit(fn)


def _company(where: str, value: str) -> Callable[[bytes], bytes]:
    def fn(tree: etree._ElementTree) -> None:
        paths = {"header": ["/s:auditfile/s:company/s:companyIdent"], "z": ["//s:eventReport/s:companyIdent"]}
        for path in paths.get(where, []) or paths["header"] + paths["z"]:
            for element in tree.xpath(path, namespaces=N):
                element.text = value

    return _edit(fn)


# ---------------------------------------------------------------------------------------------
# The cases

_BILLION_LAUGHS = (
    b'<!DOCTYPE auditfile [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def _utf16(data: bytes) -> bytes:
    return data.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


CASES: tuple[Case, ...] = (
    # --- hostile XML: refused before any parser reads it, naming file, line and element
    Case(
        "doctype-system-http",
        "hostile",
        "a DOCTYPE naming an external DTD over HTTP",
        SHOP,
        _prolog(b'<!DOCTYPE auditfile SYSTEM "http://example.invalid/saft.dtd">'),
        ("xml_external_dtd",),
    ),
    Case(
        "doctype-public-http",
        "hostile",
        "a DOCTYPE with a PUBLIC identifier and a URL",
        SHOP,
        _prolog(b'<!DOCTYPE auditfile PUBLIC "-//Evil//DTD SAF-T//EN" "http://example.invalid/x.dtd">'),
        ("xml_external_dtd",),
    ),
    Case(
        "doctype-system-file",
        "hostile",
        "a DOCTYPE naming a local DTD file",
        SHOP,
        _prolog(b'<!DOCTYPE auditfile SYSTEM "file:///etc/passwd">'),
        ("xml_external_dtd",),
    ),
    Case(
        "xxe-file-entity",
        "hostile",
        "an external entity reading /etc/passwd (XXE)",
        SHOP,
        _prolog(b'<!DOCTYPE auditfile [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
        ("xml_entities",),
    ),
    Case(
        "xxe-parameter-entity",
        "hostile",
        "a parameter entity fetching a DTD over HTTP",
        SHOP,
        _prolog(b'<!DOCTYPE auditfile [<!ENTITY % remote SYSTEM "http://example.invalid/x.dtd"> %remote;]>'),
        ("xml_entities",),
    ),
    Case(
        "billion-laughs",
        "hostile",
        "nested entities that expand a billion-fold",
        SHOP,
        _prolog(_BILLION_LAUGHS),
        ("xml_entities",),
    ),
    Case(
        "internal-entity-used",
        "hostile",
        "an internal entity used in a company name",
        SHOP,
        lambda d: _prolog(b'<!DOCTYPE auditfile [<!ENTITY co "Evil AS">]>')(d).replace(
            b"<companyName>", b"<companyName>&co;", 1
        ),
        ("xml_entities",),
    ),
    Case(
        "latin1-byte-in-name",
        "hostile",
        "a Latin-1 byte (0xF8) in the company name",
        SHOP,
        _text_replace("Interiør".encode(), "Interiør".encode("latin-1")),
        ("not_utf8",),
    ),
    Case(
        "latin1-byte-in-amount",
        "hostile",
        "a 0xFF byte inside an amount",
        SHOP,
        _text_replace(b"<transAmntIn>", b"<transAmntIn>\xff"),
        ("not_utf8",),
    ),
    Case(
        "bad-utf8-in-tag",
        "hostile",
        "a broken UTF-8 sequence inside an element name",
        SHOP,
        _text_replace(b"<transID>", b"<trans\xc3ID>"),
        ("not_utf8",),
    ),
    Case(
        "windows-1252-quote",
        "hostile",
        "a Windows-1252 curly quote (0x92) in an article",
        SHOP,
        _text_replace(b"<artDesc>", b"<artDesc>Ola\x92s "),
        ("not_utf8",),
    ),
    Case(
        "declared-latin1",
        "hostile",
        "the XML declaration says ISO-8859-1",
        SHOP,
        _text_replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'),
        ("not_utf8",),
    ),
    Case("utf16-bom", "hostile", "the whole file in UTF-16 with a byte order mark", SHOP, _utf16, ("not_utf8",)),
    Case("utf16-no-bom", "hostile", "UTF-16 without a byte order mark", SHOP, lambda d: _utf16(d)[2:], ("not_utf8",)),
    Case(
        "truncated-utf8-at-end",
        "hostile",
        "the file ends in the middle of a UTF-8 character",
        SHOP,
        lambda d: d + b"<!-- \xc3",
        ("not_utf8",),
    ),
    # --- malformed XML
    Case(
        "truncated-half",
        "malformed",
        "the file cut off half-way (an interrupted export)",
        SHOP,
        _truncate(0.5),
        ("xml_malformed",),
    ),
    Case("truncated-before-end", "malformed", "the last 20 bytes missing", SHOP, lambda d: d[:-20], ("xml_malformed",)),
    Case(
        "unclosed-element",
        "malformed",
        "a transaction's <nr> never closed",
        SHOP,
        _regex(rb"<nr>(\d+)</nr>", rb"<nr>\1"),
        ("xml_malformed",),
    ),
    Case(
        "mismatched-end-tag",
        "malformed",
        "</transID> closed as </transId>",
        SHOP,
        _text_replace(b"</transID>", b"</transId>"),
        ("xml_malformed",),
    ),
    Case(
        "not-xml",
        "malformed",
        "a CSV export saved as .xml",
        SHOP,
        lambda d: b"nr;transID;amount\n1;1;100.00\n",
        ("xml_malformed",),
    ),
    Case("empty-file", "malformed", "an empty file", SHOP, lambda d: b"", ("xml_malformed",)),
    Case(
        "junk-after-root",
        "malformed",
        "a second document after </auditfile>",
        SHOP,
        lambda d: d + b"<auditfile/>\n",
        ("xml_malformed",),
    ),
    Case(
        "bare-ampersand",
        "malformed",
        "an unescaped & in a description",
        SHOP,
        _text_replace(b"<artDesc>", b"<artDesc>Bord & stol "),
        ("xml_malformed",),
    ),
    Case(
        "control-character",
        "malformed",
        "a character reference to U+0001",
        SHOP,
        _text_replace(b"<artDesc>", b"<artDesc>&#1;"),
        ("xml_malformed",),
    ),
    Case(
        "wrong-root",
        "malformed",
        "a well-formed document that is not SAF-T",
        SHOP,
        lambda d: b'<?xml version="1.0" encoding="UTF-8"?>\n<invoice><total>1</total></invoice>\n',
        ("not_saft", "xsd"),
    ),
    # --- valid XML, invalid SAF-T (the XSD names the element)
    Case(
        "wrong-namespace",
        "schema",
        "the SAF-T Financial namespace instead of Cash Register",
        SHOP,
        _text_replace(NS.encode(), b"urn:StandardAuditFile-Taxation-Financial:NO"),
        ("xsd", "not_saft"),
    ),
    Case(
        "missing-transid",
        "schema",
        "a transaction without transID",
        SHOP,
        _regex(rb"<transID>[^<]*</transID>", b""),
        ("xsd",),
    ),
    Case(
        "amount-not-a-number",
        "schema",
        "transAmntIn 'abc'",
        SHOP,
        _regex(rb"<transAmntIn>[^<]*</transAmntIn>", b"<transAmntIn>abc</transAmntIn>"),
        ("xsd",),
    ),
    Case(
        "amount-three-decimals",
        "schema",
        "lineAmntIn with three decimals",
        SHOP,
        _regex(rb"<lineAmntIn>(\d+)\.(\d\d)</lineAmntIn>", rb"<lineAmntIn>\1.\g<2>5</lineAmntIn>"),
        ("xsd",),
    ),
    Case(
        "amount-type-x",
        "schema",
        "amntTp 'X' (only C or D)",
        SHOP,
        _text_replace(b"<amntTp>C</amntTp>", b"<amntTp>X</amntTp>"),
        ("xsd",),
    ),
    Case(
        "impossible-date",
        "schema",
        "transDate 2026-13-45",
        SHOP,
        _regex(rb"<transDate>[^<]*</transDate>", b"<transDate>2026-13-45</transDate>"),
        ("xsd",),
    ),
    Case(
        "elements-out-of-order",
        "schema",
        "transType before transID",
        SHOP,
        _regex(rb"(<transID>[^<]*</transID>)(<transType>[^<]*</transType>)", rb"\2\1"),
        ("xsd",),
    ),
    Case(
        "unknown-element",
        "schema",
        "an element the schema does not know",
        SHOP,
        _text_replace(b"<transType>", b"<discountCode>X</discountCode><transType>"),
        ("xsd",),
    ),
    Case(
        "negative-vat-rate",
        "schema",
        "vatPerc -25.00",
        SHOP,
        _regex(rb"<vatPerc>25\.00</vatPerc>", b"<vatPerc>-25.00</vatPerc>"),
        ("xsd",),
    ),
    Case(
        "z-without-company",
        "schema",
        "a Z report without its companyIdent",
        SHOP,
        _regex(rb"(<reportType>Z report</reportType>)<companyIdent>[^<]*</companyIdent>", rb"\1"),
        ("xsd",),
    ),
    Case(
        "nr-not-a-number",
        "schema",
        "a transaction nr 'A-17' (the series must be numbers)",
        SHOP,
        _regex(rb"<cashtransaction><nr>\d+</nr>", b"<cashtransaction><nr>A-17</nr>"),
        ("bad_value",),
    ),
    # --- numbers out of range: refused with the element named, never an overflow
    Case(
        "amount-20-digits",
        "range",
        "transAmntIn of 20 digits",
        SHOP,
        _regex(rb"<transAmntIn>[^<]*</transAmntIn>", b"<transAmntIn>99999999999999999999</transAmntIn>"),
        ("number_out_of_range",),
    ),
    Case(
        "line-amount-huge",
        "range",
        "a line of 10^15 kroner",
        SHOP,
        _regex(rb"<lineAmntIn>[^<]*</lineAmntIn>", b"<lineAmntIn>1000000000000000.00</lineAmntIn>"),
        ("number_out_of_range",),
    ),
    Case(
        "payment-huge",
        "range",
        "a payment of 10^12 kroner",
        SHOP,
        _regex(rb"<paidAmnt>[^<]*</paidAmnt>", b"<paidAmnt>1000000000000.00</paidAmnt>"),
        ("number_out_of_range",),
    ),
    Case(
        "nr-beyond-63-bits",
        "range",
        "a transaction nr of 2^64",
        SHOP,
        _regex(rb"<cashtransaction><nr>\d+</nr>", b"<cashtransaction><nr>18446744073709551616</nr>"),
        ("number_out_of_range",),
    ),
    Case(
        "z-total-huge",
        "range",
        "totalCashSaleAmnt of 10^13 kroner",
        SHOP,
        _regex(
            rb"<totalCashSaleAmnt>[^<]*</totalCashSaleAmnt>",
            b"<totalCashSaleAmnt>10000000000000.00</totalCashSaleAmnt>",
        ),
        ("number_out_of_range",),
    ),
    # --- the accounting does not add up
    Case(
        "receipt-paid-wrong",
        "accounting",
        "a card payment 1.00 above the receipt",
        SHOP,
        _edit(_unbalanced_payment),
        ("receipt_balances",),
    ),
    Case(
        "receipt-amount-wrong",
        "accounting",
        "transAmntIn 5.00 above its lines",
        SHOP,
        _edit(_receipt_amount),
        ("receipt_amount",),
    ),
    Case(
        "receipt-twice",
        "accounting",
        "the same receipt exported twice (Z report counting both)",
        SHOP,
        _duplicate_receipt(new_id=False),
        ("unique_transactions", "receipt_numbering"),
    ),
    Case(
        "receipt-number-twice",
        "accounting",
        "two receipts with one number",
        SHOP,
        _duplicate_receipt(new_id=True),
        ("receipt_numbering",),
    ),
    Case(
        "receipt-missing",
        "accounting",
        "a receipt missing from the day (Z report without it too)",
        SHOP,
        _drop_receipt(_middle),
        ("receipt_numbering",),
    ),
    Case(
        "receipt-missing-at-day-edge",
        "accounting",
        "the first day's last receipt missing from a period file: the day alone looks complete",
        PERIOD,
        _edit(_drop_last_of_first_day),
        ("receipt_numbering",),
    ),
    Case(
        "receipt-number-jump",
        "accounting",
        "a receipt numbered 1000 on (a gap in the series)",
        SHOP,
        _duplicate_receipt(new_id=True, new_nr=True),
        ("receipt_numbering",),
    ),
    Case(
        "z-grand-total-off",
        "accounting",
        "totalCashSaleAmnt 100.00 above the sales",
        SHOP,
        _z_field("reportTotalCashSales/totalCashSaleAmnt", 10000),
        ("z_grand_total",),
    ),
    Case(
        "z-vat-sales-off",
        "accounting",
        "a VAT code's cashSaleAmnt 10.00 off",
        SHOP,
        _z_field("reportCashSalesVat/reportCashSaleVat/cashSaleAmnt", 1000),
        ("z_vat_totals", "z_grand_total", "z_report_amounts"),
    ),
    Case(
        "z-vat-amount-off",
        "accounting",
        "a VAT code's vatAmnt 2.50 off",
        SHOP,
        _z_field("reportCashSalesVat/reportCashSaleVat/vatAmnt", 250),
        ("z_vat_amounts",),
    ),
    Case(
        "z-payment-off",
        "accounting",
        "the Z report's card total 1.00 off",
        SHOP,
        _z_field("reportPayments/reportPayment/paymentAmnt", 100),
        ("z_payment_totals",),
    ),
    Case(
        "z-art-group-off",
        "accounting",
        "an article group's total 7.00 off",
        SHOP,
        _z_field("reportArtGroups/reportArtGroup/artGroupAmnt", 700),
        ("z_art_group_totals",),
    ),
    Case(
        "z-tips-off",
        "accounting",
        "the bar's reportTip 10.00 off",
        BAR,
        _z_field("reportTip/tipAmnt", 1000),
        ("z_tip_total",),
    ),
    Case(
        "z-returns-off",
        "accounting",
        "reportReturnAmnt 3.00 off",
        SHOP,
        _z_field("reportReturnAmnt", 300),
        ("z_return_total",),
    ),
    Case(
        "z-report-missing",
        "accounting",
        "register 2 sold all day but has no Z report",
        SHOP,
        _edit(_drop_z_report),
        ("z_report_present",),
    ),
    Case(
        "z-report-contradicts-itself",
        "accounting",
        "VAT amounts that fit neither gross nor net, and a total that sums to neither",
        SHOP,
        _edit(_z_contradiction),
        ("z_report_amounts",),
    ),
    Case(
        "line-vat-wrong",
        "accounting",
        "a line's VAT 3.00 above what its gross holds",
        SHOP,
        _edit(_line_vat),
        ("line_vat_matches_rate",),
    ),
    Case(
        "vat-drift",
        "accounting",
        "every line's VAT an øre high: each within 1 øre, the day over tolerance",
        Base("butikk_fjord", receipts=90),
        _edit(_vat_drift),
        ("vat_difference",),
    ),
    Case(
        "receipt-two-days-early",
        "accounting",
        "a receipt stamped two days before the day",
        SHOP,
        _edit(_outside_day),
        ("sales_inside_business_day",),
    ),
    Case(
        "foreign-payment-without-rate",
        "accounting",
        "a payment in EUR with no exchange rate",
        SHOP,
        _foreign_payment(None),
        ("currency_known",),
    ),
    Case(
        "header-currency-eur",
        "accounting",
        "the file's curCode is EUR",
        SHOP,
        _regex(rb"(<header>.*?<curCode>)NOK(</curCode>)", rb"\1EUR\2"),
        ("file_currency",),
    ),
    Case(
        "vat-code-undeclared",
        "accounting",
        "VAT code 1 used, its declaration renamed to 9",
        SHOP,
        _rename_code("//vatCodeDetail/vatCode", "1", "9", in_master=False),
        ("codes_declared",),
    ),
    Case(
        "vat-code-nonstandard",
        "accounting",
        "a VAT code declared as standard code 99",
        SHOP,
        _edit(_vat_code_unknown_standard),
        ("codes_declared",),
    ),
    Case(
        "transaction-type-undeclared",
        "accounting",
        "transType CASHSAL renamed to KONTANT everywhere it is used",
        SHOP,
        _rename_code("//cashtransaction/transType", "CASHSAL", "KONTANT", in_master=False),
        ("codes_declared",),
    ),
    Case(
        "line-type-undeclared",
        "accounting",
        "lineType SAL renamed to VARE",
        SHOP,
        _rename_code("//ctLine/lineType", "SAL", "VARE", in_master=False),
        ("codes_declared",),
    ),
    Case(
        "payment-type-undeclared",
        "accounting",
        "paymentType BANK declared as KORT",
        SHOP,
        _rename_code("//basics/basic/basicID", "BANK", "KORT", in_master=False),
        ("codes_declared",),
    ),
    Case(
        "article-group-undeclared",
        "accounting",
        "article group VARER's declaration renamed",
        SHOP,
        _rename_code("//basics/basic/basicID", "VARER", "VARER2", in_master=False),
        ("codes_declared",),
    ),
    Case(
        "rounding-five-kroner",
        "accounting",
        "a cash receipt rounded by 5.00",
        SHOP,
        _rounding(500),
        ("rounding_limit",),
    ),
    Case(
        "cash-count-off-1000",
        "accounting",
        "a cash count 1,000.00 short",
        SHOP,
        _cash_count(-100000),
        ("cash_difference_limit",),
    ),
    Case(
        "article-group-unmapped",
        "accounting",
        "a new article group, declared but mapped to no account",
        SHOP,
        _declare_and_use_group("SKO", mapped=False),
        ("key_mapped",),
    ),
    Case(
        "payment-type-unmapped",
        "accounting",
        "a new payment type, declared but mapped to no account",
        SHOP,
        _edit(_payment_type_unmapped),
        ("payment_mapped",),
    ),
    # --- another company's file
    Case(
        "other-company-everywhere",
        "company",
        "a file of organisation number 999999999",
        SHOP,
        _company("both", "999999999"),
        ("file_belongs_to_vendor",),
    ),
    Case(
        "other-company-in-header",
        "company",
        "the header names another company",
        SHOP,
        _company("header", "974760673"),
        ("file_belongs_to_vendor",),
    ),
    Case(
        "other-company-in-z-report",
        "company",
        "the Z reports name another company",
        SHOP,
        _company("z", "974760673"),
        ("file_belongs_to_vendor",),
    ),
    Case(
        "no-company",
        "company",
        "companyIdent left empty",
        SHOP,
        _company("both", ""),
        ("file_belongs_to_vendor", "xsd"),
    ),
    Case(
        "other-vendor-file",
        "company",
        "another demo shop's file in this shop's folder",
        SHOP_NET,
        lambda d: d,
        ("file_belongs_to_vendor",),
    ),
    # --- controls: must pass
    Case("shop", "control", "the shop's day as its POS writes it", SHOP, lambda d: d),
    Case(
        "shop-44-receipts",
        "control",
        "a shop day with a bill discount, a credit sale and a gift card",
        SHOP_BIG,
        lambda d: d,
    ),
    Case(
        "shop-net-2021-way",
        "control",
        "the shop's day with Z reports written net of VAT (2021 way)",
        Base("butikk_fjord", z_amounts="net"),
        lambda d: d,
    ),
    Case("cafe", "control", "the café: one article group at two VAT rates", CAFE, lambda d: d, tags=("cafe",)),
    Case("bar-with-tips", "control", "the bar: tips on card payments, reportTip", BAR, lambda d: d),
    Case("period-two-days", "control", "a period file of two days, the first asked", PERIOD, lambda d: d),
    Case(
        "period-second-day", "control", "the same period file, the second day asked", PERIOD, lambda d: d, days_after=1
    ),
    Case(
        "company-formatted",
        "control",
        "companyIdent written 'NO 910 000 039 MVA'",
        SHOP,
        _company("both", "NO 910 000 039 MVA"),
    ),
    Case(
        "foreign-payment-with-rate",
        "control",
        "a card payment in EUR with its exchange rate",
        SHOP,
        _foreign_payment("11.500000"),
    ),
    Case("cash-count-small", "control", "a cash count 20.00 short", SHOP, _cash_count(-2000)),
)


def vendor_of(case: Case) -> str:
    return case.base.vendor if case.name != "other-vendor-file" else SHOP.vendor


def write(root: Path = HERE) -> list[dict]:
    """Write every case under `root` (bad/, good/) and cases.json; return the case list."""
    import tempfile

    for folder in ("bad", "good"):
        shutil.rmtree(root / folder, ignore_errors=True)
    listing = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, case in enumerate(CASES):
            data = case.build(DAY, Path(tmp) / str(index))
            target = root / case.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            listing.append(
                {
                    "name": case.name,
                    "category": case.category,
                    "about": case.about,
                    "file": case.path,
                    "vendor": vendor_of(case),
                    "business_day": (DAY + dt.timedelta(days=case.days_after)).isoformat(),
                    "rules": list(case.rules),
                }
            )
    (root / "cases.json").write_text(json.dumps(listing, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return listing


if __name__ == "__main__":
    cases = write()
    bad = sum(1 for c in cases if c["category"] != "control")
    print(f"{bad} bad inputs and {len(cases) - bad} controls written to {HERE}")
