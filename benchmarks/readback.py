"""Read-back and reconciliation at scale (issue 11).

`readback`: a Tripletex company with `postings` postings in a year, in the Tripletex sandbox
(in-process, real HTTP). Its books are filled through the sandbox's store with bodies the real
client renders (`TripletexClient.render`, sent through the same JSON encoding); what is read back
is served by the sandbox's real endpoints. `TripletexClient.postings` and `balances` for the year,
from a fresh client built as a task builds it (registry + ConnectionParts), against a reference in
the same run: the same pages of `GET /ledger/posting` (same page size and fields, one session)
fetched with plain requests and decoded with `Response.json()`, no parsing into dataclasses. A
read-back that is wrong gives no figure: every posting must come back, the balances must be what
the postings read add up to, and the user rows must add up to what was booked.

`reconcile`: `reconcile_company` for `vendors` vendors (generated from the demo café's config,
loaded by `load_vendors`) sharing one Tripletex company, over `days` days, every vendor-day booked:
a real SQLite journal filled the way `kassebro journal rebuild` writes a day (`Journal.restore`:
the day's row and its voucher history, voucher meta as the booking rules write it) and the Z
reports kept (`ZReports.save`). The ledger is in memory (`MemoryLedger`: prebuilt PostedVoucher
and LedgerPosting lists, Tripletex's VAT rows included), so the figure is the reconciliation's own
cost; reading the ledger back is the first measurement's. Reference in the same run: the journal
reads the reconciliation makes for the same vendors (entries, booked_between, ZReports.read,
day_vouchers), without the rules. A reconciliation that is wrong gives no figure: zero findings on
the clean books, then exactly the planted four (changed, missing, duplicated, unbalanced).

`python -m benchmarks.run --only readback,reconcile` runs these two alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import math
import os
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
YEAR = 2026
FIRST_DAY = dt.date(2026, 11, 1)  # the demo café's enabled_since: every generated vendor is on from it


def _clock() -> float:
    """Now, for a timing that starts without the garbage of the one before."""
    gc.collect()
    return time.perf_counter()


def _require(ok: bool, message: str) -> None:
    """A benchmark whose result is wrong must not produce a figure (also under python -O)."""
    if not ok:
        raise AssertionError(message)


# ---------------------------------------------------------------------------------------------
# 1. Read-back of a year of postings from the Tripletex sandbox


def _session(replay: _Replay | None = None) -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False  # a local sandbox: no proxy from the environment
    if replay is not None:
        session.mount("http://", replay)
    return session


def _client(url: str, timeout: float = 120, replay: _Replay | None = None) -> Any:
    """A Tripletex client as a task gets one: the demo connection through the registry and
    `from_connection`, as `kassebro.demo.sandboxes.client` builds it, but with a session of ours
    (no proxy; with `replay`, its answers come from memory)."""
    from kassebro.demo.sandboxes import connection
    from kassebro.ledgers import registry
    from kassebro.ledgers.cache import LookupCache
    from kassebro.ledgers.registry import ConnectionParts

    conn = connection("tripletex", url)
    parts = ConnectionParts(
        base_url=conn["host"],
        token_url=None,
        login=conn.get("login") or "",
        password=conn.get("password") or "",
        extras=conn["extra"],
        session=_session(replay),
        timeout=timeout,
        cache=lambda company: LookupCache(),
    )
    system = registry.get("tripletex")
    options = {"company": system.sandbox_module.DEMO_COMPANY.slug} if system.company_required else {}
    return system.client_class.from_connection(parts, **options)


class _Replay:
    """A requests transport adapter that answers the recorded calls again, in order, from memory:
    the client's own cost without the server's. Each request must be the one recorded (method,
    path and page), so both sides read the same answers."""

    def __init__(self, answers: list[tuple[str, str, str, bytes]]) -> None:
        self.answers = answers
        self.at = 0

    def send(self, request: Any, **_: Any) -> Any:
        from urllib.parse import parse_qs, urlsplit

        import requests
        from requests.structures import CaseInsensitiveDict

        method, path, page, body = self.answers[self.at]
        url = urlsplit(request.url)
        asked = (request.method, url.path, (parse_qs(url.query).get("from") or [""])[0])
        _require(asked == (method, path, page), f"replay: asked for {asked}, recorded {(method, path, page)}")
        self.at += 1
        response = requests.Response()
        response.status_code = 201 if method == "POST" else 200
        response._content = body
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json; charset=utf-8"})
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None


def _shop_day(shop: str, day: dt.date, rng: random.Random) -> Any:
    """A shop's day: four payment lines and three sales lines at 25, 15 and 12 % (Tripletex adds
    a VAT row for each sales line: ten postings a voucher)."""
    from kassebro.booking.voucher import Voucher, VoucherLine, external_ref

    cash, card, vipps, gift = (rng.randint(1_00, 20_000_00) for _ in range(4))
    sales = cash + card + vipps + gift
    high = sales * rng.randint(40, 80) // 100
    middle = (sales - high) * rng.randint(20, 80) // 100
    low = sales - high - middle
    return Voucher(
        vendor_id=shop,
        business_day=day,
        external_ref=external_ref(shop, day),
        description=f"POS dagsoppgjør {day}",
        lines=(
            VoucherLine("1900", cash, None, "Kontant", "1"),
            VoucherLine("1920", card, None, "Bankkort", "1"),
            VoucherLine("1945", vipps, None, "Vipps", "1"),
            VoucherLine("2900", gift, None, "Gavekort innløst", "1"),
            VoucherLine("3000", -high, "3", "Salg 25 %", "1"),
            VoucherLine("3030", -middle, "31", "Salg 15 %", "1"),
            VoucherLine("3040", -low, "33", "Salg 12 %", "1"),
        ),
    )


POSTINGS_PER_VOUCHER = 10  # seven lines and three VAT rows (see _shop_day)


def fill_tripletex(app: Any, url: str, postings: int, year: int = YEAR) -> dict:
    """Book about `postings` postings dated over `year` into the sandbox's default company: bodies
    rendered by the real client, stored through the sandbox's own validation and VAT rows."""
    from kassebro.ledgers.http import encode_json

    store = app.state.store
    vouchers = max(1, math.ceil(postings / POSTINGS_PER_VOUCHER))
    first = dt.date(year, 1, 1)
    days = (dt.date(year + 1, 1, 1) - first).days
    shops = max(1, math.ceil(vouchers / days))
    rng = random.Random(11)
    booked: Counter[str] = Counter()  # gross per account of the rows we sent
    started = time.perf_counter()
    with _client(url) as renderer:
        for i in range(vouchers):
            day = first + dt.timedelta(days=i * days // vouchers)
            voucher = _shop_day(f"shop_{i % shops:03d}", day, rng)
            body = json.loads(encode_json(renderer.render(voucher)), parse_float=Decimal)  # as the sandbox reads it
            store.create_voucher(body, send_to_ledger=True)
            for line in voucher.lines:
                booked[line.account] += line.amount
    held = sum(len(v.postings) for v in store.list_vouchers())
    return {
        "vouchers": vouchers,
        "shops": shops,
        "postings": held,
        "booked_gross": dict(booked),
        "fill_s": time.perf_counter() - started,
    }


def _raw_postings(
    url: str, page_size: int, date_from: dt.date, date_to: dt.date, fields: str, replay: _Replay | None = None
) -> tuple[int, list[tuple[str, str, str, bytes]]]:
    """The reference: one session, then the same pages the client asks for, with plain requests
    and `Response.json()`; the values read and the answers (method, path, page, body) in order."""
    import base64
    from urllib.parse import urlsplit

    from kassebro.sandbox.tripletex import DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN

    api = url.rstrip("/") + "/v2"
    answers: list[tuple[str, str, str, bytes]] = []
    with _session(replay) as session:
        created = session.post(
            api + "/token/session/:create",
            json={
                "consumerToken": DEMO_CONSUMER_TOKEN,
                "employeeToken": DEMO_EMPLOYEE_TOKEN,
                "expirationDate": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
            },
            timeout=60,
        )
        created.raise_for_status()
        answers.append(("POST", urlsplit(created.url).path, "", created.content))
        token = created.json()["value"]["token"]
        basic = base64.b64encode(f"0:{token}".encode()).decode()
        auth = {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        start, read = 0, 0
        while True:
            params = {
                "dateFrom": date_from.isoformat(),
                "dateTo": date_to.isoformat(),
                "from": start,
                "count": page_size,
                "fields": fields,
            }
            answer = session.get(api + "/ledger/posting", params=params, headers=auth, timeout=120)
            answer.raise_for_status()
            answers.append(("GET", urlsplit(answer.url).path, str(start), answer.content))
            page = answer.json()["values"]
            read += len(page)
            start += len(page)
            if len(page) < page_size:
                return read, answers


POSTING_FIELDS = (
    "voucher(id,number,year,externalVoucherNumber),date,description,account(number),vatType(number),"
    "amount,amountGross,row,systemGenerated"
)
"""What TripletexClient.postings asks for (checked against its `calls` below)."""


def _check_readback(fill: dict, rows: list, balances: list) -> None:
    """The read-back is right: every posting came back, the balances are what they add up to,
    the rows we sent add up to what was booked, and every voucher balances."""
    _require(len(rows) == fill["postings"], f"read {len(rows)} postings, the sandbox holds {fill['postings']}")
    moved: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    for p in rows:
        moved[p.account] += p.amount
        if not p.system_generated:
            sent[p.account] += p.gross
    by_account = {b.account: b for b in balances}
    _require(
        {a: b.movement for a, b in by_account.items() if b.movement} == {a: n for a, n in moved.items() if n},
        "the balances' movements are not what the postings read add up to",
    )
    _require(all(b.closing == b.opening + b.movement for b in balances), "a closing is not opening + movement")
    _require(all(b.opening == 0 for b in balances), "fresh books opened the year with a balance")
    _require(
        {a: n for a, n in sent.items() if n} == {a: n for a, n in fill["booked_gross"].items() if n},
        "the rows read back do not add up to what was booked",
    )
    _require(sum(p.amount for p in rows) == 0, "the postings read do not sum to zero")


def readback(postings: int = 100_000, rounds: int = 3, year: int = YEAR) -> dict:
    """Fill a Tripletex sandbox company with a year of `postings` postings and read it back: over
    HTTP against plain requests fetching the same pages, then the same answers replayed from
    memory (no server) to both, which shows the client's own cost."""
    from kassebro.demo.sandboxes import create_app
    from kassebro.sandbox.server import running

    date_from, date_to = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    runs: dict[str, list[float]] = {k: [] for k in ("ours", "raw", "balances", "ours_replay", "raw_replay")}
    app = create_app("tripletex")
    with running(app) as server:
        url = server.url
        fill = fill_tripletex(app, url, postings, year)
        answers: list[tuple[str, str, str, bytes]] = []
        calls: dict[str, int] = {}
        balance_calls: dict[str, int] = {}
        for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
            started = _clock()
            read, answers = _raw_postings(server.url, 1000, date_from, date_to, POSTING_FIELDS)
            runs["raw"].append(time.perf_counter() - started)
            _require(read == fill["postings"], f"the raw fetch read {read} of {fill['postings']} postings")

            started = _clock()
            with _client(server.url) as client:  # a fresh client: a task's (its session included)
                _require(client.page_size == 1000, f"the client's page size is {client.page_size}, not 1000")
                rows = client.postings(date_from, date_to)
                runs["ours"].append(time.perf_counter() - started)
                calls = dict(client.calls)

            with _client(server.url) as client:
                started = _clock()
                balances = client.balances(date_from, date_to)
                runs["balances"].append(time.perf_counter() - started)
                balance_calls = dict(client.calls)
            _check_readback(fill, rows, balances)
        _require(sum(calls.values()) == len(answers), f"the client made {calls}, the reference {len(answers)} calls")
    sandbox = _sandbox_parts(app.state.store, date_from, date_to)
    for _ in range(rounds):  # the same answers from memory: what each side costs without the server
        started = _clock()
        read, _answers = _raw_postings(url, 1000, date_from, date_to, POSTING_FIELDS, _Replay(answers))
        runs["raw_replay"].append(time.perf_counter() - started)
        started = _clock()
        with _client(url, replay=_Replay(answers)) as client:
            replayed = client.postings(date_from, date_to)
        runs["ours_replay"].append(time.perf_counter() - started)
        _require(replayed == rows and read == len(rows), "the replayed answers read differently")
    median = {k: statistics.median(v) for k, v in runs.items()}
    call_count = sum(calls.values())
    return {
        "postings": fill["postings"],
        "vouchers": fill["vouchers"],
        "shops": fill["shops"],
        "accounts": len(balances),
        "year": year,
        "fill_s": fill["fill_s"],
        "rounds": rounds,
        "page_size": 1000,
        "postings_s": median["ours"],
        "raw_s": median["raw"],
        "ratio": statistics.median(o / r for o, r in zip(runs["ours"], runs["raw"], strict=True)),
        "ratio_runs": [round(o / r, 2) for o, r in zip(runs["ours"], runs["raw"], strict=True)],
        "postings_runs": [round(s, 2) for s in runs["ours"]],
        "raw_runs": [round(s, 2) for s in runs["raw"]],
        "postings_per_s": fill["postings"] / median["ours"],
        "calls": calls,
        "call_count": call_count,
        "posting_pages": calls.get("GET /ledger/posting", 0),
        "calls_per_1000": call_count / (fill["postings"] / 1000),
        "balances_s": median["balances"],
        "balances_calls": balance_calls,
        "replay_s": median["ours_replay"],
        "raw_replay_s": median["raw_replay"],
        "replay_ratio": median["ours_replay"] / median["raw_replay"],
        "replay_per_s": fill["postings"] / median["ours_replay"],
        "server_share": 1 - median["raw_replay"] / median["raw"],
        "answers_mb": sum(len(a[3]) for a in answers) / 1e6,
        "sandbox": sandbox,
    }


def _sandbox_parts(store: Any, date_from: dt.date, date_to: dt.date, page_size: int = 1000) -> dict[str, float]:
    """What the sandbox's serving of the year's pages is made of, timed on its own store: choosing
    the period's postings, rendering them, the `fields` filter, and writing each page's JSON (it
    writes it twice: once for `versionDigest`, once for the body)."""
    from kassebro.sandbox.tripletex import apply_fields, dumps, parse_fields

    started = _clock()
    first, end = date_from.isoformat(), date_to.isoformat()
    matches = [(v, p) for v in store.list_vouchers() if v.in_ledger for p in v.postings if first <= p.date < end]
    select_s = time.perf_counter() - started
    started = _clock()
    rendered = [store.render_posting(v, p, "127.0.0.1/v2") for v, p in matches]
    render_s = time.perf_counter() - started
    started = _clock()
    tree = parse_fields(POSTING_FIELDS)
    shown = [apply_fields(r, tree) for r in rendered]
    fields_s = time.perf_counter() - started
    started = _clock()
    for start in range(0, len(shown), page_size):
        page = shown[start : start + page_size]
        dumps(page)  # versionDigest
        dumps(page)  # the body
    json_s = time.perf_counter() - started
    return {"select_s": select_s, "render_s": render_s, "fields_s": fields_s, "json_s": json_s}


# ---------------------------------------------------------------------------------------------
# 2. Reconciliation of vendors x days against a journal, the kept Z reports and a ledger


PAYMENT_CODES = (("Kontant", "12001"), ("Bankkort", "12004"), ("Vipps", "12011"))


class MemoryLedger:
    """What a Tripletex company holds, served from memory: `list_vouchers` as PostedVoucher (the
    rows we sent) and `postings` as the account view (net amounts, Tripletex's VAT rows)."""

    system = "tripletex"

    def __init__(self, vouchers: list, postings: list) -> None:
        self.vouchers = vouchers
        self.rows = postings

    def list_vouchers(self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False) -> list:
        return [v for v in self.vouchers if date_from <= v.date < date_to]

    def postings(self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None) -> list:
        return [p for p in self.rows if date_from <= p.date < date_to]

    def close(self) -> None:
        return None


def _account_view(ledger_id: str, number: str, voucher: Any, postings: tuple) -> list:
    """The voucher's rows as Tripletex's `GET /ledger/posting` shows them (net, with VAT rows)."""
    from kassebro.ledgers.base import LedgerPosting
    from kassebro.sandbox.tripletex import VAT_TYPES, generated_vat

    vat_types = {v.number: v for v in VAT_TYPES}
    rows = []
    for account, gross, code in postings:
        vat = vat_types[code] if code else None
        vat_amount = generated_vat(gross, vat) if vat else 0
        common = {"voucher_id": ledger_id, "voucher_number": number, "date": voucher.business_day}
        rows.append(LedgerPosting(**common, account=account, amount=gross - vat_amount, gross=gross, vat_code=code,
                                  description="", external_ref=voucher.external_ref))  # fmt: skip
        if vat_amount:
            rows.append(LedgerPosting(**common, account=str(vat.vat_account), amount=vat_amount, gross=vat_amount,
                                      vat_code=code, description="", external_ref=voucher.external_ref,
                                      system_generated=True))  # fmt: skip
    return rows


def _vendors(work: Path, n: int, first: dt.date) -> list:
    """n vendors generated from the demo café's file (as the parse benchmark makes them), loaded
    by `load_vendors`; all book to the same Tripletex company."""
    from benchmarks.run import _vendor_yaml
    from kassebro.config import load_vendors

    config = work / "config"
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    (config / "vendors").mkdir()
    template = (PROJECT / "config" / "vendors" / "cafe_solsiden.yaml").read_text(encoding="utf-8")
    template = template.replace(f"enabled_since: {FIRST_DAY.isoformat()}", f"enabled_since: {first.isoformat()}")
    for i in range(n):
        (config / "vendors" / f"vendor_{i:05d}.yaml").write_text(_vendor_yaml(i, template), encoding="utf-8")
    loaded = load_vendors(config)
    _require(not loaded.issues, f"generated vendors did not load: {loaded.issues[:3]}")
    vendors = list(loaded.vendors)
    _require(len(vendors) == n, f"{len(vendors)} of {n} vendors loaded")
    _require(all(v.enabled_since <= first for v in vendors), "a generated vendor starts after the window")
    from kassebro.readback.reconcile import company_key

    _require(len({company_key(v) for v in vendors}) == 1, "the generated vendors do not share one company")
    return vendors


def _vendor_day(vendor: Any, day: dt.date, rng: random.Random) -> tuple[Any, Any]:
    """A booked day's voucher (meta as the booking rules write it) and its Z report's figures."""
    from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
    from kassebro.posting.zreports import ZDay

    amounts = [rng.randint(1_00, 30_000_00) for _ in PAYMENT_CODES]
    payments: dict[str, int] = {}
    lines = []
    for (ptype, pcode), amount in zip(PAYMENT_CODES, amounts, strict=True):
        account = vendor.mapping.payment_account(ptype, pcode)
        _require(account is not None, f"{vendor.id} has no account for payment code {pcode}")
        payments[account] = payments.get(account, 0) + amount
        lines.append(VoucherLine(account, amount, None, ptype, vendor.department))
    sales = sum(amounts)
    high = sales * rng.randint(50, 90) // 100
    lines += [
        VoucherLine("3000", -high, "3", "Salg 25 %", vendor.department),
        VoucherLine("3030", -(sales - high), "31", "Salg 15 %", vendor.department),
    ]
    voucher = Voucher(
        vendor_id=vendor.id,
        business_day=day,
        external_ref=external_ref(vendor.id, day),
        description=f"POS dagsoppgjør {day}",
        lines=tuple(lines),
        meta={"payments": json.dumps(payments, sort_keys=True)},  # as rules._meta writes it
    )
    z = ZDay(
        vendor_id=vendor.id,
        business_day=day,
        sales_gross=sales,
        payments=tuple((ptype, pcode, amount) for (ptype, pcode), amount in zip(PAYMENT_CODES, amounts, strict=True)),
        reports=1,
        source=f"benchmark:{vendor.id}:{day}",
        read_at=dt.datetime.now(dt.UTC),
    )
    return voucher, z


def fill_books(vendors: list, days: list[dt.date], journal_url: str) -> tuple[list, list, float]:
    """Book every vendor-day in the journal (`Journal.restore`, one transaction a day, as `kassebro
    journal rebuild` writes it) and keep its Z report (`ZReports.save`); return what the ledger
    holds for them (PostedVoucher and the account view) and the seconds it took."""
    from kassebro.ledgers.base import PostedVoucher
    from kassebro.posting.journal import Booked, Journal
    from kassebro.posting.zreports import ZReports

    journal, zreports = Journal(journal_url), ZReports(journal_url)
    rng = random.Random(30)
    held: list = []
    rows: list = []
    started = time.perf_counter()
    for vendor in vendors:
        for day in days:
            voucher, z = _vendor_day(vendor, day, rng)
            ledger_id, number = str(608_859_001 + len(held)), f"{len(held) + 1}-{day.year}"
            booked = Booked(1, "original", voucher.external_ref, ledger_id, number, voucher.digest(), voucher)
            journal.restore(
                vendor.id, day, [booked], state="posted", ledger_system=vendor.ledger.system, day_voucher=voucher
            )
            zreports.save(z)
            postings = tuple((line.account, line.amount, line.vat_code) for line in voucher.lines)
            held.append(PostedVoucher(ledger_id, number, voucher.external_ref, day, postings))
            rows += _account_view(ledger_id, number, voucher, postings)
    journal.engine.dispose()
    return held, rows, time.perf_counter() - started


def _journal_reads(vendors: list, first: dt.date, last: dt.date, journal: Any, zreports: Any) -> int:
    """The reference: the journal reads the reconciliation makes, for the same vendors, no rules."""
    rows = 0
    for vendor in vendors:
        rows += len([e for e in journal.entries(vendor.id) if first <= e.business_day <= last])
        rows += sum(len(b) for b in journal.booked_between(vendor.id, first, last).values())
        rows += len(zreports.read(vendor.id, first, last))
        rows += len(journal.day_vouchers(vendor.id, first, last))
    return rows


def _plant(vendors: list, days: list[dt.date], held: list, rows: list) -> tuple[MemoryLedger, dict, set]:
    """Four disagreements on distinct vendor-days: a voucher edited in the ledger (1.00 moved between
    two payment lines), one deleted, one posted twice, and a Z report that changed after booking.
    Returns the ledger, the Z report to change (vendor-day -> its new payments) and what should be found."""
    spots = [(vendors[i * len(vendors) // 4], days[i * len(days) // 4]) for i in range(4)]
    refs = {kind: spot for kind, spot in zip(("changed", "missing", "duplicated", "unbalanced"), spots, strict=True)}
    by_ref = {v.external_ref: v for v in held}
    ref_of = {kind: f"kassebro:{v.id}:{d.isoformat()}" for kind, (v, d) in refs.items()}
    vouchers = list(held)
    account_view = list(rows)

    edited = by_ref[ref_of["changed"]]
    (a, ga, va), (b, gb, vb), *rest = edited.postings
    moved = ((a, ga + 100, va), (b, gb - 100, vb), *rest)
    vouchers[vouchers.index(edited)] = dataclasses.replace(edited, postings=moved)
    account_view = [
        dataclasses.replace(p, amount=p.amount + 100, gross=p.gross + 100)
        if p.voucher_id == edited.ledger_id and p.account == a and not p.system_generated
        else dataclasses.replace(p, amount=p.amount - 100, gross=p.gross - 100)
        if p.voucher_id == edited.ledger_id and p.account == b and not p.system_generated
        else p
        for p in account_view
    ]

    deleted = by_ref[ref_of["missing"]]
    vouchers.remove(deleted)
    account_view = [p for p in account_view if p.voucher_id != deleted.ledger_id]

    original = by_ref[ref_of["duplicated"]]
    twin_id = str(int(held[-1].ledger_id) + 1)
    vouchers.append(dataclasses.replace(original, ledger_id=twin_id, number=f"{len(held) + 1}-{original.date.year}"))
    account_view += [
        dataclasses.replace(p, voucher_id=twin_id) for p in account_view if p.voucher_id == original.ledger_id
    ]

    expected = {(kind, v.id, d) for kind, (v, d) in refs.items()}
    return MemoryLedger(vouchers, account_view), {"unbalanced": refs["unbalanced"]}, expected


def reconcile(vendors: int = 1000, days: int = 30, rounds: int = 1, work: Path | None = None) -> dict:
    """Reconcile `vendors` x `days` booked vendor-days of one company; see the module docstring."""
    from kassebro.posting.journal import Journal
    from kassebro.posting.zreports import ZReports
    from kassebro.readback import reconcile as rec

    _require(days >= 4 and vendors >= 1, "at least 4 days (four planted disagreements on distinct days)")
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="kassebro-reconcile-")) if work is None else work
    fast = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
    filling = Path(tempfile.mkdtemp(prefix="kassebro-journal-", dir=fast))
    try:
        first = FIRST_DAY
        window = [first + dt.timedelta(days=i) for i in range(days)]
        last = window[-1]
        started = _clock()
        people = _vendors(work, vendors, first)
        load_s = time.perf_counter() - started
        # filled where a commit costs no fsync (tmpfs when there is one), then read from disk
        held, rows, fill_s = fill_books(people, window, f"sqlite:///{filling / 'journal.sqlite'}")
        shutil.copy2(filling / "journal.sqlite", work / "journal.sqlite")
        url = f"sqlite:///{work / 'journal.sqlite'}"
        journal, zreports = Journal(url), ZReports(url)
        ledger = MemoryLedger(held, rows)
        vendor_days = vendors * days

        reference: list[float] = []
        ours: list[float] = []
        ratios: list[float] = []
        result = None
        for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
            started = _clock()
            read_rows = _journal_reads(people, first, last, journal, zreports)
            reference.append(time.perf_counter() - started)
            started = _clock()
            result = rec.reconcile_company(people, ledger, first, last, journal, zreports)
            ours.append(time.perf_counter() - started)
            ratios.append(ours[-1] / reference[-1])
            _require(result.findings == (), f"clean books gave findings: {[f.message for f in result.findings[:3]]}")
            _require(len(result.checked) == vendor_days, f"{len(result.checked)} of {vendor_days} vendor-days checked")
            _require(result.not_checked == (), f"not checked: {result.not_checked[:3]}")
            _require(result.vouchers_read == vendor_days and result.postings_read == len(rows), "read counts differ")
        _require(read_rows == vendor_days * 4, f"the journal reads found {read_rows} rows")

        # where the time goes: the reads, the per-vendor rules on what was read, the company's POS accounts
        started = _clock()
        reads = [rec.VendorDays.read(v, first, last, journal, zreports) for v in people]
        reads_s = time.perf_counter() - started
        vouchers = ledger.list_vouchers(first, last + dt.timedelta(days=1))
        started = _clock()
        grouped = rec.vouchers_by_vendor(vouchers)
        agreed = {r.vendor.id: rec.reconcile_vendor_days(r, grouped.get(r.vendor.id, []))[1] for r in reads}
        rules_s = time.perf_counter() - started
        started = _clock()
        _require(rec.reconcile_pos_accounts(reads, agreed, rows, first, last) == [], "the POS accounts disagree")
        pos_s = time.perf_counter() - started
        passes = []
        for _ in range(3):  # the company's references, parsed once for every vendor
            started = _clock()
            rec.vouchers_by_vendor(vouchers)
            passes.append(time.perf_counter() - started)
        scan_s = min(passes)

        # the same size with four disagreements planted: exactly those are found
        planted, z_changes, expected = _plant(people, window, held, rows)
        z_vendor, z_day = z_changes["unbalanced"]
        kept = zreports.read(z_vendor.id, z_day, z_day)[z_day]
        (ptype, pcode, amount), *others = kept.payments
        zreports.save(dataclasses.replace(kept, payments=((ptype, pcode, amount + 50_00), *others)))
        started = _clock()
        found = rec.reconcile_company(people, planted, first, last, journal, zreports)
        planted_s = time.perf_counter() - started
        zreports.save(kept)
        got = {(f.kind, f.vendor_id, f.business_day) for f in found.findings}
        _require(
            got == expected and len(found.findings) == len(expected),
            f"planted {sorted(expected)}, found {sorted(got)}",
        )
        journal.engine.dispose()
        ours_s = statistics.median(ours)
        return {
            "vendors": vendors,
            "days": days,
            "vendor_days": vendor_days,
            "vouchers": len(held),
            "postings": len(rows),
            "first": first.isoformat(),
            "last": last.isoformat(),
            "load_s": load_s,
            "fill_s": fill_s,
            "fill_on": "tmpfs" if fast else "disk",
            "rounds": rounds,
            "reconcile_s": ours_s,
            "reconcile_runs": [round(s, 2) for s in ours],
            "reference_s": statistics.median(reference),
            "reference_runs": [round(s, 2) for s in reference],
            "ratio": statistics.median(ratios),
            "vendor_days_per_s": vendor_days / ours_s,
            "reads_s": reads_s,
            "rules_s": rules_s,
            "pos_s": pos_s,
            "scan_s": scan_s,
            "planted_s": planted_s,
            "planted": sorted(kind for kind, _, _ in expected),
            "journal_mb": (work / "journal.sqlite").stat().st_size / 1e6,
        }
    finally:
        shutil.rmtree(filling, ignore_errors=True)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
