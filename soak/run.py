"""`make soak`: randomized vendor-day runs against the five ledger sandboxes, with faults, killed
workers, overlapping runs, a wiped and rebuilt journal and late data; then every sandbox is read
back and compared with the journal and the POS.

Each run is what the DAG's tasks do for one day (`pipeline.prepare`, `post`, `verify` with the
ledger client `ledger_for` builds from the Airflow connection), in a process forked from a warm
parent so that one can be killed with SIGKILL at a chosen point: right before the post (after the
claim) or right after it (before the journal records it). A run that fails for a reason a retry
can mend is queued again, as Airflow's retries would. Traffic goes to 127.0.0.1 only.

    python -m soak.run --runs 1000 --seconds 2400 [--journal-url URL] [--report docs/reliability.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
VENDORS = {  # one demo vendor per ledger system
    "tripletex": "cafe_solsiden",
    "fiken": "kiosk_torget",
    "poweroffice": "bakeri_bryggen",
    "xledger": "vinbar_kaia",
    "duett": "jernvare_sentrum",
}
POST_PATHS = {  # the sandboxes' paths of a voucher post (faults match them)
    "tripletex": "/ledger/voucher",
    "fiken": "/companies/*/generalJournalEntries",
    "poweroffice": "/Vouchers/ManualJournals",
    "xledger": "/addGLImportItems",
    "duett": "/Voucher/v2",
}
FIRST_DAY = dt.date(2026, 10, 5)
FAULTS = ("429", "500", "delay", "save_then_drop", "hidden_save", "kill_before_post", "kill_before_finish")
CLIENT_TIMEOUT = 2  # seconds; a "delay" fault waits longer
LEASE, VISIBILITY = 2, 3  # seconds; short, so that the soak sees many takeovers


@dataclass
class Run:
    """One attempt at one vendor-day, with at most one fault."""

    vendor_id: str
    day: dt.date
    fault: str = ""
    look_again: bool = False
    attempt: int = 1


@dataclass
class Tally:
    runs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    overlaps: int = 0
    rebuilds: int = 0
    late_days: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin(url: str, method: str, path: str, body: dict | None = None) -> None:
    request = urllib.request.Request(
        f"{url}/_sandbox{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1 only
        answer.read()


def setup(home: Path, days: int, late: float, rng: random.Random) -> tuple[dict[str, str], list[tuple[str, dt.date]]]:
    """The soak's home: config for the five vendors, SAF-T files (some days held back as late),
    and the sandboxes in a process of their own. Returns (system -> URL, the late vendor-days)."""
    from kassebro.demo.home import write_sales

    config = home / "config"
    (config / "vendors").mkdir(parents=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    held: list[tuple[str, dt.date]] = []
    all_days = [FIRST_DAY + dt.timedelta(days=n) for n in range(days)]
    for vendor_id in VENDORS.values():
        data = yaml.safe_load((PROJECT / "config" / "vendors" / f"{vendor_id}.yaml").read_text(encoding="utf-8"))
        data.update(enabled_since=FIRST_DAY.isoformat(), retries=3, retry_delay_seconds=5, lookback_days=days)
        data["ledger"].update(lease_seconds=LEASE, visibility_seconds=VISIBILITY)
        data["alert"] = {"to": []}
        if data["source"]["kind"] != "saft":
            data["source"] = {"kind": "saft", "path": f"saft/{vendor_id}"}
        (config / "vendors" / f"{vendor_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        late_days = {d for d in all_days[1:-1] if rng.random() < late}
        held += [(vendor_id, d) for d in sorted(late_days)]
        write_sales(data, [d for d in all_days if d not in late_days], home / "data")
    ports = {system: _free_port() for system in VENDORS}
    args = [f"--port={system}={port}" for system, port in ports.items()]
    log = (home / "sandbox.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassebro.demo.sandboxes", *args, "--state-dir", str(home / "sandbox")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    for port in ports.values():
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the sandboxes did not start; see " + str(home / "sandbox.log"))
            time.sleep(0.2)
    urls = {system: f"http://127.0.0.1:{port}" for system, port in ports.items()}
    from kassebro.demo.sandboxes import connection

    for system, url in urls.items():
        conn_id = yaml.safe_load((config / "vendors" / f"{VENDORS[system]}.yaml").read_text())["ledger"]["connection"]
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection(system, url, timeout=CLIENT_TIMEOUT))
    os.environ["_SOAK_SANDBOX_PID"] = str(proc.pid)
    return urls, held


def airflow_db(home: Path) -> None:
    """A metadata DB of the soak's own (Fiken's rotated refresh token is kept in an Airflow Variable)."""
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "GX_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, env=os.environ, stdout=subprocess.DEVNULL)


def _child(run: Run) -> int:
    """One vendor-day in a forked process, as the DAG's tasks run it. Exit codes: 0 done,
    2 try again (a retry would), 3 no data (yet), 4 refused (bad data or ledger: a person's)."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendor
    from kassebro.core.errors import DataMissing, InputError
    from kassebro.ledgers.base import LedgerAuthError, LedgerValidationError
    from kassebro.posting import pipeline
    from kassebro.posting.journal import ClaimLost, Journal, Lease

    def die(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if run.fault == "kill_before_post":  # claimed, looked up, about to post
        Lease.fence = die  # type: ignore[method-assign]
    if run.fault == "kill_before_finish":  # posted, the journal not told
        Journal.finish = die  # type: ignore[method-assign]
    vendor = load_vendor(run.vendor_id)
    journal = Journal()
    try:
        result = pipeline.prepare(vendor, run.day, journal, look_again=run.look_again)
        if result["state"] == "waiting" or result.get("look_again"):
            return 3
        target = vendor.ledger
        careful = pipeline.careful_lookup(vendor, run.day, journal)
        ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, careful)
        pipeline.post(vendor, run.day, ledger, journal)
        pipeline.verify(vendor, run.day, ledger, journal)
        return 0
    except DataMissing:
        return 3
    except (LedgerValidationError, LedgerAuthError, InputError) as exc:
        print(f"[soak] {run.vendor_id} {run.day}: refused: {str(exc)[:600]}", file=sys.stderr)
        return 4
    except ClaimLost:
        return 2
    except Exception as exc:  # noqa: BLE001 - transient: a retry mends it
        print(f"[soak] {run.vendor_id} {run.day}: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        return 2


def _start(run: Run) -> int:
    pid = os.fork()
    if pid == 0:  # the child: a fresh journal engine, never the parent's connections
        code = 1
        try:
            from kassebro.posting import journal
            from kassebro.sources import file_index

            journal._engine.cache_clear()
            file_index._engine.cache_clear()
            code = _child(run)
        finally:
            os._exit(code)
    return pid


def soak(
    home: Path,
    runs: int,
    seconds: float,
    days: int = 20,
    late: float = 0.1,
    seed: int = 7,
    journal_url: str | None = None,
    parallel: int = 2,
) -> dict:
    """Run the soak; return its figures (runs, faults per kind, duplicates, lost days, time)."""
    rng = random.Random(seed)
    os.environ["KASSEBRO_CONFIG"] = str(home / "config")
    os.environ["KASSEBRO_DATA"] = str(home / "data")
    os.environ["KASSEBRO_JOURNAL_URL"] = journal_url or f"sqlite:///{home / 'journal.sqlite'}"
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    started = time.monotonic()
    urls, held = setup(home, days, late, rng)
    try:
        from kassebro.booking.verdict import evaluate_day
        from kassebro.checks import gx  # noqa: F401 - warm the parent once: the children fork from it
        from kassebro.config import load_vendor

        evaluate_day(load_vendor(VENDORS["tripletex"]), FIRST_DAY)
        tally = Tally()
        vendor_days = [(v, FIRST_DAY + dt.timedelta(days=n)) for v in VENDORS.values() for n in range(days)]
        system_of = {v: s for s, v in VENDORS.items()}
        night = 0
        # Night 1 runs every day; each later night runs a random part of them again and what
        # `plan_days` would look at again. After night 1 the late exports come; after night 2 one
        # vendor's journal is wiped and rebuilt. The last night has no faults: what may mend, mends.
        while True:
            night += 1
            over = tally.runs >= runs or time.monotonic() - started > seconds
            if night == 1:
                tonight = [Run(v, d) for v, d in vendor_days]
            else:
                tonight = [] if over else [Run(*rng.choice(vendor_days)) for _ in range(len(vendor_days) // 2)]
                tonight += _looked_at_again(days)
            rng.shuffle(tonight)
            _night(tonight, urls, system_of, tally, rng, parallel, faults=not over)
            if night == 1:
                _write_late(home, held)
                tally.late_days = len(held)
            if night == 2:
                _wipe_and_rebuild(rng.choice(list(VENDORS.values())), days)
                tally.rebuilds += 1
            if over:
                break
        for url in urls.values():
            _admin(url, "DELETE", "/faults")
        time.sleep(VISIBILITY + 0.5)  # a hidden save still on its way shows up before the read-back
        figures = check(days)
        figures.update(
            runs=tally.runs,
            outcomes=dict(tally.outcomes),
            faults=dict(tally.faults),
            overlapping_runs=tally.overlaps,
            journal_rebuilds=tally.rebuilds,
            late_vendor_days=tally.late_days,
            seconds=round(time.monotonic() - started, 1),
            vendor_days=len(vendor_days),
        )
    finally:  # the sandboxes never outlive the soak
        os.kill(int(os.environ["_SOAK_SANDBOX_PID"]), signal.SIGTERM)
    return figures


def _night(
    queue: list[Run],
    urls: dict[str, str],
    system_of: dict[str, str],
    tally: Tally,
    rng: random.Random,
    parallel: int,
    faults: bool,
) -> None:
    """Run one night's vendor-days, `parallel` at a time, retrying what a retry mends."""
    running: dict[int, Run] = {}
    try:
        while queue or running:
            while queue and len(running) < parallel:
                # one Fiken vendor-day at a time, as Fiken's pool allowed until 2026-12-05 (its
                # requests now take a company lock instead: tests/unit/test_request_lock.py)
                busy = {r.vendor_id for r in running.values() if system_of[r.vendor_id] == "fiken"}
                ready = [r for r in queue if r.vendor_id not in busy]
                if not ready:
                    break
                run = ready[0]
                queue.remove(run)
                if faults and rng.random() < 0.5:
                    run.fault = rng.choice(FAULTS)
                    tally.faults[run.fault] += 1
                    _inject(urls[system_of[run.vendor_id]], system_of[run.vendor_id], run.fault, rng)
                running[_start(run)] = run
                tally.runs += 1
                twin_ok = faults and system_of[run.vendor_id] != "fiken"
                if twin_ok and rng.random() < 0.08 and len(running) < parallel + 1:  # the same day twice at once
                    twin = Run(run.vendor_id, run.day, look_again=run.look_again)
                    running[_start(twin)] = twin
                    tally.runs += 1
                    tally.overlaps += 1
            pid, status = os.wait()
            run = running.pop(pid)
            outcome = {0: "done", 2: "retried", 3: "no data", 4: "refused"}.get(
                os.waitstatus_to_exitcode(status), "killed" if os.WIFSIGNALED(status) else "error"
            )
            tally.outcomes[outcome] += 1
            if outcome in ("retried", "killed", "error") and run.attempt < 40:
                queue.append(Run(run.vendor_id, run.day, look_again=run.look_again, attempt=run.attempt + 1))
                time.sleep(0.2)
    finally:
        for pid in running:
            os.kill(pid, signal.SIGKILL)
        for pid in list(running):
            os.waitpid(pid, 0)
    for url in urls.values():  # a fault armed for a run that never met it does not spill into the next night
        _admin(url, "DELETE", "/faults")


def _looked_at_again(days: int) -> list[Run]:
    """What a scheduled night's `plan_days` adds: each vendor's recent days that may mend."""
    from kassebro.config import load_vendor
    from kassebro.posting.journal import Journal
    from kassebro.posting.pipeline import days_to_look_again

    journal = Journal()
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    runs = [
        Run(vendor_id, day, look_again=True)
        for vendor_id in VENDORS.values()
        for day in days_to_look_again(load_vendor(vendor_id), [last + dt.timedelta(days=1)], journal)
    ]
    journal.engine.dispose()
    return runs


def _inject(url: str, system: str, fault: str, rng: random.Random) -> None:
    """Arm one fault in the vendor's sandbox (the kills are armed in the run's own process)."""
    if fault.startswith("kill_"):
        return
    path = POST_PATHS[system] if fault in ("save_then_drop", "hidden_save") or rng.random() < 0.5 else "*"
    seconds = {"429": 1, "delay": CLIENT_TIMEOUT + 1, "hidden_save": VISIBILITY - 1}.get(fault, 1)
    _admin(url, "POST", "/faults", {"kind": fault, "path": path, "method": "*", "times": 1, "seconds": seconds})


def _write_late(home: Path, held: list[tuple[str, dt.date]]) -> None:
    from kassebro.demo.home import write_sales

    for vendor_id, day in held:
        data = yaml.safe_load((home / "config" / "vendors" / f"{vendor_id}.yaml").read_text())
        write_sales(data, [day], home / "data")


def _wipe_and_rebuild(vendor_id: str, days: int) -> None:
    """Lose one vendor's journal (rows and voucher history) and rebuild it from the ledger."""
    from sqlalchemy import delete

    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendor
    from kassebro.posting.journal import Journal, history_table, journal_table
    from kassebro.posting.rebuild import rebuild

    journal = Journal()
    with journal.engine.begin() as conn:
        conn.execute(delete(history_table).where(history_table.c.vendor_id == vendor_id))
        conn.execute(delete(journal_table).where(journal_table.c.vendor_id == vendor_id))
    vendor = load_vendor(vendor_id)
    target = vendor.ledger
    ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, True)
    rebuild(vendor, FIRST_DAY, FIRST_DAY + dt.timedelta(days=days - 1), ledger, journal)
    journal.engine.dispose()


def check(days: int) -> dict:
    """Read every sandbox back: duplicates, lost days and journal/ledger differences."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.booking.verdict import evaluate_day
    from kassebro.booking.voucher import external_ref
    from kassebro.config import load_vendor
    from kassebro.posting import pipeline
    from kassebro.posting.journal import DONE, Journal

    journal = Journal()
    duplicates, lost, differences, not_done = [], [], [], []
    last = FIRST_DAY + dt.timedelta(days=days)
    for vendor_id in VENDORS.values():
        vendor = load_vendor(vendor_id)
        target = vendor.ledger
        ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, True)
        held = ledger.list_vouchers(FIRST_DAY, last, include_non_posted=True)
        ours = [v for v in held if v.external_ref.startswith(f"kassebro:{vendor_id}:")]
        refs = Counter(v.external_ref for v in ours)
        duplicates += [f"{ref} x{n}" for ref, n in refs.items() if n > 1]
        for n in range(days):
            day = FIRST_DAY + dt.timedelta(days=n)
            prefix = external_ref(vendor_id, day)
            mine = [v for v in ours if v.external_ref == prefix or v.external_ref.startswith(prefix + ":v")]
            verdict = evaluate_day(vendor, day)
            entry = journal.get(vendor_id, day)
            if entry is None or entry.state not in DONE:
                not_done.append(f"{vendor_id} {day}: {entry.state if entry else 'no journal row'}")
            if verdict.voucher is None:
                if verdict.waiting:
                    lost.append(f"{vendor_id} {day}: no data at the end")
                continue
            want: Counter = Counter()
            for line in verdict.voucher.lines:
                want[(line.account, pipeline.no_vat(line.vat_code))] += line.amount
            got: Counter = Counter()
            for voucher in mine:
                for account, amount, vat_code in voucher.postings:
                    got[(account, pipeline.no_vat(vat_code))] += amount
            if verdict.voucher.lines and not mine:
                lost.append(f"{vendor_id} {day}: nothing in the ledger")
            elif {k: v for k, v in want.items() if v} != {k: v for k, v in got.items() if v}:
                differences.append(f"{vendor_id} {day}: ledger differs from the POS day")
            booked = {b.ledger_id for b in journal.booked(vendor_id, day)}
            if booked != {v.ledger_id for v in mine}:
                differences.append(
                    f"{vendor_id} {day}: journal {sorted(booked)} != ledger {sorted(v.ledger_id for v in mine)}"
                )
    return {
        "duplicates": len(duplicates),
        "lost_days": len(lost),
        "journal_ledger_differences": len(differences),
        "days_not_done": len(not_done),
        "problems": (duplicates + lost + differences + not_done)[:50],
    }


REPORT_HEAD = """# Reliability: the fault soak

`make soak` runs randomized vendor-day runs against the five ledger sandboxes (one demo vendor
each) with faults injected, then reads every sandbox back (`list_vouchers`) and compares it with
the journal and with each day's voucher as built now from the POS export. Written by the soak
itself; the figures below are from the last run.

Faults are armed one per faulty run (half the runs); an armed fault fires only if the run gets
that far (a kill armed before the post does nothing on a day already posted; a sandbox fault not
met by the end of its night is cleared), so "killed" in the outcomes counts the kills that fired.
The kinds: 429 with reset headers, 500, a delay past the client's
timeout, "saved then connection dropped", "hidden_save" (saved, no answer, visible to lookups only
later), SIGKILL of the run's process right before the post (claim held) and right after it (before
the journal is told); besides, the same day run twice at once, one vendor's journal wiped and
rebuilt from the ledger halfway, and late exports (days withheld, then written; later runs look
at them again). Leases are 2 s and the visibility window 3 s, so takeovers are frequent.
"""


def write_report(figures: dict, path: Path) -> None:
    lines = [
        REPORT_HEAD,
        f"## Last run ({dt.date.today().isoformat()})",
        "",
        "| figure | value |",
        "|---|---|",
        f"| runs (vendor-day attempts) | {figures['runs']} over {figures['vendor_days']} vendor-days |",
        f"| outcomes | {', '.join(f'{k} {v}' for k, v in sorted(figures['outcomes'].items()))} |",
        f"| faults armed | {', '.join(f'{k} {v}' for k, v in sorted(figures['faults'].items()))} |",
        f"| overlapping runs | {figures['overlapping_runs']} |",
        f"| journal wiped and rebuilt | {figures['journal_rebuilds']} |",
        f"| late vendor-days | {figures['late_vendor_days']} |",
        f"| **duplicates** | **{figures['duplicates']}** |",
        f"| **lost days** | **{figures['lost_days']}** |",
        f"| **journal/ledger differences** | **{figures['journal_ledger_differences']}** |",
        f"| days not done at the end | {figures['days_not_done']} |",
        f"| time | {figures['seconds']} s |",
        "",
    ]
    if figures["problems"]:
        lines += ["Problems:", "", *(f"- {p}" for p in figures["problems"]), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2400)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--late", type=float, default=0.1, help="share of vendor-days whose export comes late")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time")
    parser.add_argument("--journal-url")
    parser.add_argument("--report", type=Path, help="write the figures as markdown (docs/reliability.md)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kassebro-soak-") as tmp:
        airflow_db(Path(tmp))
        figures = soak(
            Path(tmp),
            args.runs,
            args.seconds,
            args.days,
            late=args.late,
            seed=args.seed,
            journal_url=args.journal_url,
            parallel=args.parallel,
        )
    print(json.dumps(figures, indent=1))
    if args.report:
        write_report(figures, args.report)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    bad = figures["duplicates"] or figures["lost_days"] or figures["journal_ledger_differences"]
    return 1 if bad or figures["days_not_done"] else 0


if __name__ == "__main__":
    sys.exit(main())
