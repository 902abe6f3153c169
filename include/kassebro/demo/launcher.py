"""`make run` and `make demo`: start the sandbox and Airflow on the demo home, or run the DAGs
without the UI and print what was posted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kassebro.demo import home as demo

MAIL_PORT = 8925  # the demo's SMTP server, when free
AIRFLOW_USER = "admin"
AIRFLOW_PASSWORD = "admin"


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999): the port is bound by another
    process seconds later (after Airflow's migration), and an outgoing connection made meanwhile
    takes its local port from that range, so a port from it could be gone by then. Never the same
    port twice in one process."""
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(20_000, 32_000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {seconds:.0f} s")
        time.sleep(0.2)


def _connection_ports(ports: dict[str, int]) -> dict[str, int]:
    """Connection id -> port, for the ledgers' and the shops' demo connections."""
    wanted = {c: ports[s] for s, c in demo.demo_connections().items()}
    return wanted | {c: ports[kind] for kind, c in demo.demo_shop_connections().items()}


def prepare(days: int, ports: dict[str, int], overrides: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """Write the demo home, export its environment, migrate Airflow's DB, create pools and connections.

    `overrides` go over the demo environment before anything runs (`kassebro run-distributed`:
    the CeleryExecutor, PostgreSQL as the metadata DB and the journal)."""
    home = demo.init(days=days)
    env = demo.environment(home, ports["tripletex"]) | (overrides or {})
    # `airflow standalone` spawns `airflow ...` subcommands: the virtualenv's bin must be on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ.update(env)
    (home / "airflow" / "passwords.json").write_text(json.dumps({AIRFLOW_USER: AIRFLOW_PASSWORD}))
    print(f"[kassebro] demo home {home}; migrating Airflow's database ...", flush=True)
    subprocess.run([_bin("airflow"), "db", "migrate"], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    subprocess.run([_bin("kassebro"), "pools", "sync"], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    # the demo connections live in Airflow's DB, so they show under Admin -> Connections with a Test button
    subprocess.run(
        [sys.executable, "-c", _ADD_CONNECTIONS, json.dumps(_connection_ports(ports))],
        check=True,
        env=os.environ,
    )
    return home, env


# Port 0, not empty: Airflow 3.3's UI sends port 0 for the hidden port field when its Test button
# is pressed, and the API refuses the test when that differs from the stored port (empty != 0).
# `airflow connections add` cannot store 0, so the connections are written through the ORM.
_ADD_CONNECTIONS = """
import json, sys
from airflow.models.connection import Connection
from airflow.utils.session import create_session
from kassebro.demo.home import (
    DEMO_FIRM_CONNECTION, connection_json, demo_connections, demo_firm_connection, demo_shop_connections
)
from kassebro.demo.sandboxes import shop_connection
ports = json.loads(sys.argv[1])
wanted = {c: json.loads(connection_json(ports[c], system)) for system, c in demo_connections().items()}
wanted[DEMO_FIRM_CONNECTION] = demo_firm_connection(f"http://127.0.0.1:{ports['tripletex_demo']}")
for kind, c in demo_shop_connections().items():
    wanted[c] = shop_connection(kind, f"http://127.0.0.1:{ports[c]}")
with create_session() as session:
    for conn_id, body in wanted.items():
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.add(Connection(conn_id=conn_id, conn_type=body["conn_type"], host=body["host"],
                               login=body.get("login"), password=body.get("password"), port=0,
                               extra=json.dumps(body["extra"])))
"""


def sandbox_ports(preferred: bool = True) -> dict[str, int]:
    """A port per sandbox (ledgers 8900..8904, webshops 8940 and 8950) when free (and `preferred`),
    else any free ones."""
    from kassebro.demo.sandboxes import default_ports

    return {
        system: port if preferred and not _port_open(port) else _free_port() for system, port in default_ports().items()
    }


def start_sandbox(
    home: Path, ports: dict[str, int], mail_port: int | None = None, log_dir: Path | None = None
) -> subprocess.Popen:
    """The five ledger sandboxes and the two demo webshops in one process, the ledgers' books kept
    under `<home>/sandbox`, and the demo's mail server (`<home>/mail`) when a `mail_port` is given.
    Its output goes to `sandbox.log` in `log_dir` (default `<home>/logs`)."""
    log_dir = log_dir or home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / "sandbox.log").open("ab")
    args = [f"--port={system}={port}" for system, port in ports.items()]
    if mail_port:
        args += [f"--mail-port={mail_port}", "--mail-dir", str(home / "mail")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassebro.demo.sandboxes", *args, "--state-dir", str(home / "sandbox")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for port in [*ports.values(), *([mail_port] if mail_port else [])]:
        _wait_for(port)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    stop_all([proc], timeout=20)


def stop_all(procs: list[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM to each process's group (each was started in its own session) at once, then wait
    for all of them together; SIGKILL the groups still there after `timeout` seconds."""
    running = [p for p in procs if p.poll() is None]
    for proc in procs:  # an exited leader's group may still hold its children
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:  # what is left of each group, the children of a leader that did exit too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def demo_mail_port() -> int:
    """The demo's SMTP port: MAIL_PORT when free, else any free one."""
    return MAIL_PORT if not _port_open(MAIL_PORT) else _free_port()


def start_demo_services(
    home: Path, ports: dict[str, int], mail_port: int, log_dir: Path | None = None
) -> subprocess.Popen:
    """The sandboxes and the mail server (`start_sandbox`), the deadline alerts' SMTP connection
    pointed at it, and a line saying where they are."""
    from kassebro.sandbox.mail import smtp_connection

    # deadline alerts go to the demo's own mail server: every message is a file in <home>/mail
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mail_port)
    proc = start_sandbox(home, ports, mail_port, log_dir)
    where = ", ".join(f"{system} :{port}" for system, port in ports.items())
    print(f"[kassebro] ledger sandboxes and webshops on 127.0.0.1: {where}", flush=True)
    print(f"[kassebro] mail (deadline alerts) on 127.0.0.1:{mail_port}, kept in {home / 'mail'}", flush=True)
    return proc


def print_ready(port: int, logs: Path, paused: bool = False) -> None:
    """The lines `make run` and `make run-distributed` end their start with."""
    dags = "are paused (unpause one to run it)" if paused else "are unpaused and catch up now"
    print(
        f"\n[kassebro] Airflow UI: http://localhost:{port}  login: {AIRFLOW_USER} / {AIRFLOW_PASSWORD}\n"
        f"[kassebro] logs: {logs}; the demo vendors' DAGs {dags}.\n"
        "[kassebro] Ctrl-C stops everything.\n",
        flush=True,
    )


def _progress(home: Path) -> str:
    from kassebro.posting.journal import Journal

    entries = Journal().entries()
    states: dict[str, int] = {}
    for entry in entries:
        states[entry.state] = states.get(entry.state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "nothing yet"


def run_airflow(days: int = 14, port: int = 8080) -> int:
    """Sandbox + `airflow standalone` on the demo home until Ctrl-C."""
    ports = sandbox_ports()
    mail_port = demo_mail_port()
    home, _ = prepare(days, ports)
    os.environ["AIRFLOW__API__PORT"] = str(port)
    # tasks reach the API server's execution API; its default URL assumes port 8080
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_demo_services(home, ports, mail_port))
        log = (home / "logs" / "airflow.log").open("ab")
        procs.append(
            subprocess.Popen(
                [_bin("airflow"), "standalone"],
                env=os.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for(port, 180)
        print_ready(port, home / "logs")
        while all(p.poll() is None for p in procs):
            time.sleep(30)
            print(f"[kassebro] {dt.datetime.now():%H:%M:%S} journal: {_progress(home)}", flush=True)
        print("[kassebro] a process stopped; see the logs", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[kassebro] stopping ...", flush=True)
        return 0
    finally:
        stop_all(procs)


def _run_webshops(bag: Any) -> int:
    """One run of each demo webshop's DAG (as its 15-minute schedule would), then where each order
    stands; returns how many webshop runs failed."""
    from kassebro.airflow.dagtest import run_test
    from kassebro.config.webshop import load_webshops
    from kassebro.posting.transfers import Transfers

    failed = 0
    for shop in load_webshops().webshops:
        run = run_test(bag.dags[shop.dag_id])
        rows = Transfers().all(shop.id)
        states: dict[str, int] = {}
        for row in rows:
            states[row.state] = states.get(row.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no orders due"
        print(f"[kassebro] {shop.dag_id}: run {run.state}; orders: {summary}", flush=True)
        failed += run.state != "success"
    return failed


def run_demo(days: int = 14) -> int:
    """Run every demo vendor's DAG over its range with `dag.test()` and print the journal."""
    ports = sandbox_ports(preferred=False)
    home, _ = prepare(days, ports)
    sandbox = start_sandbox(home, ports)
    try:
        from airflow.dag_processing.dagbag import DagBag

        from kassebro.airflow.dagtest import run_test
        from kassebro.config import load_vendors
        from kassebro.config.schedule import last_reported_day
        from kassebro.posting.journal import DONE, Journal
        from kassebro.posting.journal_table import journal_table

        bag = DagBag(dag_folder=str(demo.PROJECT_DIR / "dags"))
        if bag.import_errors:
            print(f"[kassebro] DAG import errors: {bag.import_errors}")
            return 1
        configs = load_vendors()
        failed = 0
        for vendor in configs.vendors:
            last = last_reported_day(vendor, dt.datetime.now(dt.UTC))
            dates = [
                (vendor.enabled_since + dt.timedelta(days=i)).isoformat()
                for i in range((last - vendor.enabled_since).days + 1)
            ]
            print(
                f"[kassebro] {vendor.dag_id}: {len(dates)} business days {dates[0]} .. {dates[-1]}",
                flush=True,
            )
            run = run_test(bag.dags[vendor.dag_id], run_conf={"dates": dates})
            print(f"[kassebro] {vendor.dag_id}: run {run.state}", flush=True)
        entries = [e for e in Journal().entries() if e.vendor_id in {v.id for v in configs.vendors}]
        print()
        print(journal_table(entries))
        failed = sum(1 for e in entries if e.state not in DONE)
        print(f"\n{len(entries) - failed} day(s) done, {failed} failed")
        failed += _run_webshops(bag)
        return 1 if failed else 0
    finally:
        _stop(sandbox)
