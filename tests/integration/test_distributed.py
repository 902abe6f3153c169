"""The CeleryExecutor topology for real: `kassebro run-distributed` (what `make run-distributed`
starts) on this machine's PostgreSQL and Redis, with api-server, scheduler, dag-processor,
triggerer and two Celery workers as processes of their own, driven through Airflow's REST API.

One topology for the module (it takes about half a minute to start): a REST-triggered run posts
each of its vouchers exactly once with tasks on both workers; a REST backfill that reprocesses the
same days posts nothing twice; a worker SIGKILLed while its post is in flight loses no day (the
task is retried on the other worker, the voucher the sandbox saved is found, not posted again);
and Ctrl-C (SIGINT) stops every process. Teardown kills whatever is left and drops both
databases, whatever failed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.integration.conftest import SERVER

pytestmark = pytest.mark.integration

DAYS = 2  # the demo's vendors are enabled since two days back: two catch-up runs per unpaused DAG
VENDOR = "cafe_solsiden"  # Tripletex
KILLED_VENDOR = "bar_nattugla"  # Tripletex too, its sales from the POS database
HEARTBEAT_TIMEOUT = 30  # a killed worker's task is failed (and retried) this long after its last heartbeat


@dataclass
class Stack:
    proc: subprocess.Popen
    log: Path
    run_dir: Path
    info: dict[str, Any]
    home: Path
    session: requests.Session = field(default_factory=requests.Session)
    started: float = 0.0

    @property
    def url(self) -> str:
        return self.info["url"]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.session.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        assert reply.ok, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json() if reply.content else None

    def tail(self, name: str | None = None, chars: int = 3000) -> str:
        path = self.run_dir / "logs" / f"{name}.log" if name else self.log
        return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} missing)"

    def sandbox(self, system: str) -> str:
        return f"http://127.0.0.1:{self.info['sandbox_ports'][system]}"


def _admin_engine() -> sa.Engine:
    return sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it at once: a host gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def _drop_broker_keys(prefix: str) -> None:
    """The topology's keys in Redis (each starts with its metadata DB's name: kombu's global_keyprefix)."""
    import redis

    from kassebro.demo.distributed import DEFAULT_BROKER

    client = redis.Redis.from_url(os.environ.get("KASSEBRO_CELERY_BROKER") or DEFAULT_BROKER)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _wait(what: str, check: Any, seconds: float, stack: Stack, step: float = 1.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if stack.proc.poll() is not None:
            pytest.fail(f"run-distributed exited ({stack.proc.returncode}) while waiting for {what}:\n{stack.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s\n{stack.tail('scheduler')}")
        time.sleep(step)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`kassebro run-distributed` on fresh databases and a fresh demo home, DAGs paused, until
    the module is done; then SIGINT (Ctrl-C), and SIGKILL for anything left."""
    from kassebro.demo.launcher import _free_port

    root = tmp_path_factory.mktemp("distributed")
    tag = uuid.uuid4().hex[:10]
    databases = [f"kassebro_it_{tag}_airflow", f"kassebro_it_{tag}_journal"]
    port = _free_port()
    env = {
        **os.environ,
        "KASSEBRO_HOME": str(root / "home"),
        "KASSEBRO_PG": SERVER,
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    }
    for name in ("KASSEBRO_CONFIG", "KASSEBRO_DATA", "KASSEBRO_JOURNAL_URL", "AIRFLOW_HOME"):
        env.pop(name, None)  # the launcher's demo environment sets them
    log = root / "run-distributed.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("kassebro")), "run-distributed", "--days", str(DAYS)]
            + ["--port", str(port), "--paused", "--no-restart", "--concurrency", "2"]
            + ["--metadata-db", databases[0], "--journal-db", databases[1]],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run_files: list[Path] = []
    stack = Stack(proc, log, root, {}, root / "home", started=started)
    try:
        deadline = time.monotonic() + 240
        while True:
            run_files = sorted((root / "home" / "runs").glob("*/run.json"))
            info = json.loads(run_files[-1].read_text()) if run_files else {}
            if info.get("ready"):
                break
            assert proc.poll() is None, f"run-distributed exited ({proc.returncode}):\n{log.read_text()[-5000:]}"
            assert time.monotonic() < deadline, f"not up after 240 s:\n{log.read_text()[-5000:]}"
            time.sleep(1)
        stack.run_dir, stack.info = run_files[-1].parent, info
        print(f"\n[distributed] up in {time.monotonic() - started:.0f} s: {stack.url}", flush=True)
        reply = requests.post(
            f"{stack.url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
        )  # the demo's login (launcher.AIRFLOW_USER / AIRFLOW_PASSWORD)
        assert reply.status_code == 201, reply.text
        stack.session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        yield stack
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for run_file in run_files:  # every process it started, each in its own session
            for pid in json.loads(run_file.read_text())["processes"].values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        engine = _admin_engine()
        with engine.connect() as conn:
            for name in databases:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        _drop_broker_keys(f"{databases[0]}:")
        print(f"[distributed] module done in {time.monotonic() - started:.0f} s", flush=True)


class Books:
    """The Tripletex sandbox's books as kassebro's client lists them, beside the journal."""

    def due_days(self, vendor_id: str) -> list[dt.date]:
        """The business days a vendor's catch-up runs post: enabled since .. the last reported."""
        from kassebro.config import load_vendor
        from kassebro.config.schedule import last_reported_day

        vendor = load_vendor(vendor_id)
        last = last_reported_day(vendor, dt.datetime.now(dt.UTC))
        return [vendor.enabled_since + dt.timedelta(days=n) for n in range((last - vendor.enabled_since).days + 1)]

    def entries(self, vendor_id: str, days: list[dt.date]) -> dict[dt.date, Any]:
        from kassebro.posting.journal import Journal

        journal = Journal()
        try:
            return {day: journal.get(vendor_id, day) for day in days}
        finally:
            journal.engine.dispose()

    def states(self, vendor_id: str, days: list[dt.date]) -> dict[dt.date, str | None]:
        return {day: entry.state if entry else None for day, entry in self.entries(vendor_id, days).items()}

    def done(self, vendor_id: str, days: list[dt.date]) -> bool:
        from kassebro.posting.journal import DONE

        return all(state in DONE for state in self.states(vendor_id, days).values())

    def read(self, vendor_id: str, days: list[dt.date]) -> dict[str, Any]:
        from kassebro.airflow.hooks import ledger_for
        from kassebro.booking.voucher import external_ref
        from kassebro.config import load_vendor
        from kassebro.posting.journal import Journal

        t = load_vendor(vendor_id).ledger
        ledger = ledger_for(t.system, t.connection, t.company, t.client_org_number)
        held = ledger.list_vouchers(min(days), max(days) + dt.timedelta(days=1), include_non_posted=True)
        ours = [v for v in held if v.external_ref.startswith(f"kassebro:{vendor_id}:")]
        journal = Journal()
        try:
            booked = {day: sorted(b.ledger_id for b in journal.booked(vendor_id, day)) for day in days}
        finally:
            journal.engine.dispose()
        states = self.states(vendor_id, days)
        return {
            "refs": Counter(v.external_ref for v in ours),
            "ids": {d: sorted(v.ledger_id for v in ours if v.external_ref == external_ref(vendor_id, d)) for d in days},
            "states": states,
            "booked": booked,
            # a day with a voucher; a day the POS or the calendar closed has none
            "want": {external_ref(vendor_id, d) for d, state in states.items() if state in ("posted", "parked")},
        }


@pytest.fixture
def books(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Books:
    from kassebro.demo.home import connection_json

    monkeypatch.setenv("KASSEBRO_CONFIG", str(stack.home / "config"))
    monkeypatch.setenv("KASSEBRO_JOURNAL_URL", stack.info["journal_db"])
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", connection_json(stack.info["sandbox_ports"]["tripletex"]))
    return Books()


def _assert_exactly_once(found: dict[str, Any]) -> None:
    from kassebro.posting.journal import DONE

    assert {ref: n for ref, n in found["refs"].items() if n != 1} == {}, found["refs"]
    assert set(found["refs"]) == found["want"] and found["want"], found
    assert all(state in DONE for state in found["states"].values()), found["states"]
    assert found["booked"] == found["ids"], (found["booked"], found["ids"])  # journal = ledger, day by day


def _runs(stack: Stack, dag_id: str) -> list[dict]:
    return stack.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]


def _task_instances(stack: Stack, dag_id: str, run_id: str = "~") -> list[dict]:
    return stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})["task_instances"]


def _unpause_when_parsed(stack: Stack, dag_id: str) -> None:
    _wait(
        f"{dag_id} parsed",
        lambda: stack.session.get(f"{stack.url}/api/v2/dags/{dag_id}", timeout=30).ok,
        120,
        stack,
    )
    stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})


def _all_done(stack: Stack, books: Books, vendor_id: str, days: list[dt.date]) -> list[dict]:
    """The vendor DAG's runs once every one succeeded and the journal has each of `days` done."""
    runs = _runs(stack, f"vendor_{vendor_id}")
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    assert not failed, f"runs failed: {failed}\n{stack.tail('scheduler')}"
    finished = runs and all(r["state"] == "success" for r in runs)
    return runs if finished and books.done(vendor_id, days) else []


def _healthy(stack: Stack) -> dict | None:
    health = stack.api("GET", "/monitor/health")
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return health if all(health[part] and health[part]["status"] == "healthy" for part in parts) else None


def _finished(stack: Stack, dag_id: str, run_id: str) -> str | None:
    state = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
    return state if state in ("success", "failed") else None


def test_a_rest_triggered_run_posts_each_voucher_once_on_both_workers(stack: Stack, books: Books) -> None:
    health = _wait("every component healthy", lambda: _healthy(stack), 90, stack)
    assert health["scheduler"]["latest_scheduler_heartbeat"] and health["triggerer"]["latest_triggerer_heartbeat"]
    # the next test's vendor gets short leases and retries now (it asks for the parse)
    _shorten_retries(stack.home / "config" / "vendors" / f"{KILLED_VENDOR}.yaml")

    dag_id = f"vendor_{VENDOR}"
    _unpause_when_parsed(stack, dag_id)  # its catch-up runs start: the days before today
    today = dt.date.today()  # the demo home's (kassebro.demo.home.init): no catch-up run posts it
    days = [*books.due_days(VENDOR), today]
    assert today not in books.due_days(VENDOR)
    run = stack.api(
        "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {"dates": [today.isoformat()]}}
    )
    assert run["state"] == "queued" and run["conf"] == {"dates": [today.isoformat()]}
    t0 = time.monotonic()
    state = _wait(f"{run['dag_run_id']} finished", lambda: _finished(stack, dag_id, run["dag_run_id"]), 180, stack)
    assert state == "success", f"{run['dag_run_id']}: {state}\n{stack.tail('scheduler')}"
    runs = _wait(f"{dag_id}'s catch-up runs", lambda: _all_done(stack, books, VENDOR, days), 180, stack)
    print(f"[distributed] {len(runs)} runs of {dag_id} done {time.monotonic() - t0:.0f} s after the trigger")

    instances = _task_instances(stack, dag_id)
    hosts = Counter(ti["hostname"] for ti in instances)
    assert set(hosts) == set(stack.info["workers"]), f"task instances ran on {dict(hosts)}"
    mine = _task_instances(stack, dag_id, run["dag_run_id"])
    assert {"plan_days", "day.prepare", "day.post"} <= {ti["task_id"] for ti in mine}
    assert all(ti["state"] == "success" and ti["hostname"] in stack.info["workers"] for ti in mine), mine

    _assert_exactly_once(books.read(VENDOR, days))  # the triggered run's day (today) and the catch-up runs' days


def _shorten_retries(path: Path) -> None:
    """Short leases and retries for the vendor (the shared config, as an operator edits it): a
    killed post is taken over in seconds, not minutes (the config check wants retries that
    outlast the lease: 10 + 20 + 40 s > 15 s)."""
    import yaml

    vendor = yaml.safe_load(path.read_text(encoding="utf-8"))
    vendor["retries"] = 3
    vendor["retry_delay_seconds"] = 10
    vendor["ledger"] = {**vendor["ledger"], "lease_seconds": 15, "visibility_seconds": 10}
    path.write_text(yaml.safe_dump(vendor, sort_keys=False, allow_unicode=True), encoding="utf-8")


def test_a_rest_backfill_reprocessing_the_days_posts_nothing_twice(stack: Stack, books: Books) -> None:
    dag_id = f"vendor_{VENDOR}"
    days = [*books.due_days(VENDOR), dt.date.today()]
    before = books.read(VENDOR, days)
    scheduled = sorted(r["dag_run_id"] for r in _runs(stack, dag_id) if r["run_type"] == "scheduled")
    assert scheduled
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": dag_id,
            "from_date": dt.datetime.combine(days[0], dt.time(), dt.UTC).isoformat(),
            "to_date": dt.datetime.now(dt.UTC).isoformat(),
            "reprocess_behavior": "completed",  # the catch-up runs' days again
            "max_active_runs": 2,
        },
    )
    t0 = time.monotonic()
    _wait(
        f"backfill {backfill['id']} completed",
        lambda: stack.api("GET", f"/backfills/{backfill['id']}")["completed_at"],
        240,
        stack,
        step=2,
    )
    print(f"[distributed] backfill {backfill['id']}: done in {time.monotonic() - t0:.0f} s", flush=True)
    assert _all_done(stack, books, VENDOR, days)
    # each scheduled run was cleared and run again as the backfill's (Airflow 3.3 keeps its run id)
    runs = [r for r in _runs(stack, dag_id) if r["run_type"] == "backfill"]
    assert sorted(r["dag_run_id"] for r in runs) == scheduled, runs
    for run in runs:
        posts = [ti for ti in _task_instances(stack, dag_id, run["dag_run_id"]) if ti["task_id"] == "day.post"]
        assert posts and all(ti["state"] == "success" and ti["try_number"] == 2 for ti in posts), posts
    after = books.read(VENDOR, days)
    _assert_exactly_once(after)
    assert after["ids"] == before["ids"]  # the same vouchers: found booked, nothing posted again


def test_a_worker_killed_mid_post_loses_no_day(stack: Stack, books: Books) -> None:
    dag_id = f"vendor_{KILLED_VENDOR}"
    # the retries the first test edited show once the file is parsed again: the DAG processor does
    # that once an hour (kassebro.airflow.parsing), or at once when asked, as "Reparse Dag" in
    # the UI asks; then the task's retry_delay says so
    token = stack.api("GET", f"/dags/{dag_id}/details")["file_token"]
    stack.api("PUT", f"/parseDagFile/{token}")
    _wait(
        f"{dag_id} parsed with the short retries",
        lambda: (
            (reply := stack.session.get(f"{stack.url}/api/v2/dags/{dag_id}/tasks/day.post", timeout=30)).ok
            and reply.json()["retry_delay"]["seconds"] == 10
        ),
        120,
        stack,
        step=2,
    )
    # the ledger takes 12 s to save the first voucher it is sent: the post is in flight meanwhile
    reply = requests.post(
        f"{stack.sandbox('tripletex')}/_sandbox/faults",
        json={"kind": "delay", "path": "/ledger/voucher", "method": "POST", "times": 1, "seconds": 12},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})  # its two catch-up runs

    def running_posts() -> list[dict]:
        tis = _task_instances(stack, dag_id)
        return [ti for ti in tis if ti["task_id"] == "day.post" and ti["state"] == "running" and ti["hostname"]]

    def fired() -> bool:  # the fault is taken when the request arrives; the answer comes 12 s later
        return not requests.get(f"{stack.sandbox('tripletex')}/_sandbox/faults", timeout=10).json()["faults"]

    _wait("the first voucher post sent", fired, 180, stack, step=0.5)
    time.sleep(2)  # a post without the fault is done in a second; the delayed one waits 12 s for its answer
    running = running_posts()
    assert running, "no post running 2 s after the delayed one was sent"
    post = min(running, key=lambda ti: ti["start_date"])
    victim = post["hostname"]
    survivor = next(w for w in stack.info["workers"] if w != victim)
    _kill_tree(stack.info["processes"][victim])
    killed_at = time.monotonic()
    print(f"[distributed] SIGKILL {victim} while {post['dag_run_id']} posts", flush=True)

    days = books.due_days(KILLED_VENDOR)
    runs = _wait(f"{dag_id}'s runs", lambda: _all_done(stack, books, KILLED_VENDOR, days), 240, stack, step=2)
    print(f"[distributed] {len(runs)} runs of {dag_id} done {time.monotonic() - killed_at:.0f} s after the kill")
    again = next(
        ti
        for ti in _task_instances(stack, dag_id, post["dag_run_id"])
        if ti["task_id"] == "day.post" and ti["map_index"] == post["map_index"]
    )
    assert again["state"] == "success" and again["try_number"] >= 2, again
    assert again["hostname"] == survivor, again
    _assert_exactly_once(books.read(KILLED_VENDOR, days))
    # the retry found in the ledger what the killed task had sent (the sandbox saved it anyway)
    messages = [entry.message for entry in books.entries(KILLED_VENDOR, days).values() if entry]
    assert any("found in the ledger" in message for message in messages), messages


def test_a_vendor_file_added_shows_at_once_after_config_reload(stack: Stack, books: Books) -> None:
    """The DAG processor parses the DAG files once an hour by itself (`kassebro.airflow.parsing`);
    `kassebro config reload` has it parse them now, so a new shop's DAG shows in seconds."""
    import yaml

    new = "reload_probe"
    vendors = stack.home / "config" / "vendors"
    vendor = yaml.safe_load((vendors / f"{VENDOR}.yaml").read_text(encoding="utf-8"))
    vendor.update(id=new, name="Reload Probe", enabled_since=dt.date.today().isoformat())
    (vendors / f"{new}.yaml").write_text(yaml.safe_dump(vendor, sort_keys=False), encoding="utf-8")
    assert stack.session.get(f"{stack.url}/api/v2/dags/vendor_{new}", timeout=30).status_code == 404
    env = {
        **os.environ,
        "KASSEBRO_CONFIG": str(stack.home / "config"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": stack.info["metadata_db"],
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[2] / "dags"),
    }
    t0 = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kassebro")), "config", "reload"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reparse asked for: vendor_postings.py in bundle dags-folder" in done.stdout, done.stdout
    _wait(
        f"vendor_{new} parsed",
        lambda: stack.session.get(f"{stack.url}/api/v2/dags/vendor_{new}", timeout=30).ok,
        90,
        stack,
    )
    print(f"[distributed] a new vendor's DAG shown {time.monotonic() - t0:.0f} s after the reload", flush=True)
    assert stack.api("GET", f"/dags/vendor_{new}")["is_paused"]  # as every DAG of this topology: nothing runs


def test_ctrl_c_stops_every_process(stack: Stack) -> None:
    pids = stack.info["processes"]
    t0 = time.monotonic()
    os.kill(stack.proc.pid, signal.SIGINT)
    assert stack.proc.wait(timeout=90) == 0, stack.tail()
    print(f"[distributed] Ctrl-C: everything stopped in {time.monotonic() - t0:.0f} s", flush=True)
    left = []
    for name, pid in pids.items():
        try:
            os.killpg(pid, 0)
            left.append(name)
        except ProcessLookupError:
            pass
    assert left == [], f"still running after Ctrl-C: {left}"
    assert "stopped; logs in" in stack.tail()
