"""`make run-distributed` (`kassebro run-distributed`): docker-compose's topology on this machine's
own services, each Airflow component a process of its own, in the foreground until Ctrl-C.

- PostgreSQL (`KASSEBRO_PG`, default `postgresql+psycopg2://postgres@127.0.0.1:5432`) holds
  Airflow's metadata DB and kassebro's journal, each a database of its own (created if missing);
  the Celery result backend is the metadata DB (`db+postgresql://...`), as in docker-compose.
- Redis (`KASSEBRO_CELERY_BROKER`, default `redis://127.0.0.1:6379/0`) is the Celery broker; every
  key it writes starts with the metadata DB's name (kombu's `global_keyprefix`), so two topologies
  on one Redis (a test beside a demo) never take each other's tasks.
- api-server, scheduler, dag-processor, triggerer and N Celery workers (`airflow celery worker
  -H kassebro-worker-<n>`, queue `default`), each started in a working directory of its own
  (`<run>/hosts/<name>`, its own TMPDIR too) under a host name of its own: Airflow records it on
  each task instance (`[core] hostname_callable` = `host_name` below).
- Shared, as the compose volumes share them: the DAGs folder and the config (`AIRFLOW_HOME`'s
  airflow.cfg, KASSEBRO_CONFIG), the data directory (the POS exports), the secrets (generated once
  into `<home>/airflow/secrets`, read by every component through `AIRFLOW__*_CMD`), Airflow's task
  log folder, and the work files (`KASSEBRO_WORK_URL`, `file://<home>/shared-work`).
- The demo: the home, the sandboxes, the mail server and the connections exactly as `make run`
  makes them (`launcher.prepare`, `launcher.start_demo_services`), in `<home>` (`KASSEBRO_HOME`,
  default `<project>/.kassebro-dist`, apart from `make run`'s: another journal, other books).

Each start gets a run directory `<home>/runs/<time>`: `logs/<process>.log` and `run.json` (the UI's
URL, the processes' pids and host names, the sandboxes' ports, the databases), what a test or an
operator needs to find them. A process that dies is started again (compose's `restart: always`)
unless `restart=False` (five times at most, backing off).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_SERVER_ENV = "KASSEBRO_PG"
BROKER_ENV = "KASSEBRO_CELERY_BROKER"
HOST_NAME_ENV = "KASSEBRO_HOST_NAME"
DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
WORKER_PREFIX = "kassebro-worker-"
MAX_RESTARTS = 5


def host_name() -> str:
    """Airflow's `[core] hostname_callable` here: the stand-in host's name a process was started
    under (`KASSEBRO_HOST_NAME`), else the machine's. Imported by every Airflow process: keep light."""
    return os.environ.get(HOST_NAME_ENV) or socket.getfqdn()


@dataclass
class Topology:
    """What `run_distributed` starts; the defaults are `make run-distributed`'s."""

    days: int = 14
    port: int = 8080
    execution_port: int = field(default_factory=lambda: _any_free_port())
    workers: int = 2
    concurrency: int = 0  # task slots per worker; 0: this machine's `task_slots()` shared among the workers
    metadata_db: str = "kassebro_airflow_dist"
    journal_db: str = "kassebro_journal_dist"
    paused: bool = False  # DAGs paused at creation (a test unpauses the one it runs)
    restart: bool = True
    pg_server: str = field(default_factory=lambda: os.environ.get(PG_SERVER_ENV) or DEFAULT_PG)
    broker: str = field(default_factory=lambda: os.environ.get(BROKER_ENV) or DEFAULT_BROKER)

    def __post_init__(self) -> None:
        # The stand-in hosts share this machine's cores: together they get the LocalExecutor's
        # slots (16 a core, `kassebro.airflow.priority`). With 4 each (2 x 4 on 2 cores) a Celery
        # night of 100 took 190 s, with 16 each 143 s, at the same core-seconds (c268c76,
        # docs/benchmarks.md): the task runner's wait after its task's end holds slots, as there.
        if self.concurrency <= 0:
            from kassebro.airflow.priority import task_slots

            self.concurrency = max(1, task_slots() // max(1, self.workers))

    def url(self, database: str) -> str:
        return f"{self.pg_server.rstrip('/')}/{database}"

    def result_backend(self) -> str:
        """Celery's database result backend on the metadata DB: `db+` and the URL with its driver
        (a bare `db+postgresql://` means psycopg 3 to SQLAlchemy 2.1, which is not installed)."""
        return f"db+{self.url(self.metadata_db)}"

    def worker_names(self) -> list[str]:
        return [f"{WORKER_PREFIX}{n}" for n in range(1, self.workers + 1)]


def ensure_database(server: str, name: str) -> bool:
    """CREATE DATABASE `name` on `server` unless it is there; True when it was created."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"{server.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                return False
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        engine.dispose()


def home_databases(home: Path, topology: Topology) -> None:
    """Create the metadata DB and the journal DB if missing, and keep them with the home that made
    them (`<home>/databases.json`): the home holds their Fernet key and the sandboxes' books they
    agree with, so a database some other home (or an earlier, deleted one) made is refused, not
    used: RuntimeError, naming what to drop."""
    record = home / "databases.json"
    mine = set(json.loads(record.read_text())) if record.exists() else set()
    server = topology.pg_server.rstrip("/")
    for name in (topology.metadata_db, topology.journal_db):
        if ensure_database(server, name):
            print(f"[kassebro] created database {name}", flush=True)
            mine.add(name)
            home.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(sorted(mine)))
        elif name not in mine:
            raise RuntimeError(
                f"database {name} on {server} was not made for {home} (its Fernet key and sandbox books are "
                f"elsewhere): drop it (psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE \"{name}\" WITH (FORCE)') "
                "or name others with --metadata-db / --journal-db"
            )


def _check_reachable(url: str, what: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("+psycopg2", ""))
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=3).close()
    except OSError as exc:
        raise SystemExit(f"[kassebro] {what} is not reachable at {parts.hostname}:{parts.port}: {exc}") from None


def secret_commands(airflow_home: Path) -> dict[str, str]:
    """The Fernet key, the JWT secret and the API secret key, generated once into
    `<airflow home>/secrets` (as docker-compose's airflow-init does) and read by every component
    through AIRFLOW__*_CMD: the JWT secret must be the same in the scheduler (which signs each
    task's token) and the API server (which checks it), the Fernet key wherever a connection or
    Variable is read."""
    from cryptography.fernet import Fernet

    folder = airflow_home / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    wanted = {
        "fernet_key": ("AIRFLOW__CORE__FERNET_KEY_CMD", lambda: Fernet.generate_key().decode()),
        "jwt_secret": ("AIRFLOW__API_AUTH__JWT_SECRET_CMD", lambda: secrets.token_urlsafe(64)),
        "api_secret_key": ("AIRFLOW__API__SECRET_KEY_CMD", lambda: secrets.token_urlsafe(64)),
    }
    env = {}
    for name, (variable, make) in wanted.items():
        path = folder / name
        if not path.exists() or not path.read_text().strip():
            partial = path.with_suffix(".new")
            partial.write_text(make())
            partial.chmod(0o600)
            partial.replace(path)
        env[variable] = f"cat {path}"
    return env


def _any_free_port() -> int:
    from kassebro.demo.launcher import _free_port

    return _free_port()


def shared_environment(topology: Topology, home: Path) -> dict[str, str]:
    """What every component shares (over the demo's environment, `home.environment`)."""
    from kassebro.airflow.parsing import PARSE_SETTINGS
    from kassebro.demo.launcher import _free_port

    airflow_home = home / "airflow"
    port = topology.port
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(topology.paused),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.host_name",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": topology.url(topology.metadata_db),
        "AIRFLOW__CELERY__BROKER_URL": topology.broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": topology.result_backend(),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(topology.concurrency),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{topology.metadata_db}:",
        # Airflow's default, said out loud (else every component warns): a task message a dead
        # worker held comes back after this long; the scheduler has long retried the task by then
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
        "AIRFLOW__API__PORT": str(port),
        # tasks reach the execution API, served apart from the UI's API server (`components`)
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{topology.execution_port}/execution/",
        # the triggerer serves its logs on a port of its own; a second topology must not collide
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "KASSEBRO_JOURNAL_URL": topology.url(topology.journal_db),
        "KASSEBRO_WORK_URL": (home / "shared-work").resolve().as_uri(),
        **PARSE_SETTINGS,
        **secret_commands(airflow_home),
    }


API_PORTS = {"api-server": lambda t: t.port, "execution-api": lambda t: t.execution_port}
"""The components that serve HTTP, and the port each one's start is awaited on."""


def components(topology: Topology, run_dir: Path) -> list[tuple[str, list[str]]]:
    """(host name, argv) of each Airflow process, in start order."""
    from kassebro.demo.launcher import _bin

    airflow = _bin("airflow")
    # The UI and REST API (`--apps core`) and the execution API the task processes call (`--apps
    # execution`) in two processes: when a night starts, dozens of tasks report their start at
    # once, and one process serving both made the UI and /api/v2/monitor/health wait seconds
    # behind them (docs/benchmarks.md, "A night of N shops").
    procs = [
        ("api-server", [airflow, "api-server", "--apps", "core", "--port", str(topology.port), "--workers", "1"]),
        (
            "execution-api",
            [airflow, "api-server", "--apps", "execution", "--port", str(topology.execution_port), "--workers", "1"],
        ),
        ("scheduler", [airflow, "scheduler"]),
        ("dag-processor", [airflow, "dag-processor"]),
        ("triggerer", [airflow, "triggerer"]),
    ]
    for name in topology.worker_names():
        host = run_dir / "hosts" / name
        procs.append(
            (
                name,
                # the task logs are in the shared folder, read there by the API server (compose's
                # airflow-logs volume): no log server, whose one port two workers could not share
                [airflow, "celery", "worker", "--celery-hostname", name, "--queues", "default"]
                + ["--concurrency", str(topology.concurrency), "--pid", str(host / "worker.pid")]
                + ["--skip-serve-logs"],
            )
        )
    return procs


def start_host(run_dir: Path, name: str, argv: list[str]) -> subprocess.Popen:
    """One component as if on a host of its own: its own working directory and TMPDIR, its own
    host name (`host_name`), its output in `<run>/logs/<name>.log`, its own session."""
    host = run_dir / "hosts" / name
    (host / "tmp").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, HOST_NAME_ENV: name, "TMPDIR": str(host / "tmp")}
    with (run_dir / "logs" / f"{name}.log").open("ab") as log:
        return subprocess.Popen(argv, cwd=host, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def celery_workers(timeout: float = 2.0) -> set[str]:
    """The Celery node names that answer a ping on this topology's broker now."""
    from airflow.providers.celery.executors.celery_executor import app

    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception:  # noqa: BLE001 - a broker not up yet answers nobody
        return set()
    return set(replies)


def wait_for_workers(names: list[str], procs: dict[str, subprocess.Popen], seconds: float = 180) -> None:
    wanted = {f"celery@{name}" for name in names}
    deadline = time.monotonic() + seconds
    while not wanted <= (seen := celery_workers()):
        dead = [n for n in names if procs[n].poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"Celery workers not answering: {sorted(wanted - seen)} (exited: {dead})")
        time.sleep(1)


def _write_run_file(run_dir: Path, topology: Topology, home: Path, procs: dict[str, subprocess.Popen], **extra) -> None:
    info = {
        "url": f"http://127.0.0.1:{topology.port}",
        "home": str(home),
        "metadata_db": topology.url(topology.metadata_db),
        "journal_db": topology.url(topology.journal_db),
        "broker": topology.broker,
        "processes": {name: proc.pid for name, proc in procs.items()},
        "workers": topology.worker_names(),
        **extra,
    }
    partial = run_dir / "run.json.new"
    partial.write_text(json.dumps(info, indent=2))
    partial.replace(run_dir / "run.json")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_distributed(topology: Topology | None = None) -> int:
    """The topology until Ctrl-C (SIGINT) or SIGTERM; every process stopped on the way out."""
    import signal

    from kassebro.config import PROJECT_DIR
    from kassebro.demo import launcher

    topology = topology or Topology()
    signal.signal(signal.SIGTERM, _interrupt)  # a test or a service manager stops it as Ctrl-C does
    os.environ.setdefault("KASSEBRO_HOME", str(PROJECT_DIR / ".kassebro-dist"))
    home = Path(os.environ["KASSEBRO_HOME"])
    _check_reachable(topology.pg_server, "PostgreSQL")
    _check_reachable(topology.broker, "Redis (the Celery broker)")
    try:
        home_databases(home, topology)
    except RuntimeError as exc:
        print(f"[kassebro] {exc}", flush=True)
        return 2
    run_dir = home / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = launcher.sandbox_ports()
    mail_port = launcher.demo_mail_port()
    started = time.monotonic()
    home, _ = launcher.prepare(topology.days, ports, shared_environment(topology, home))
    print(f"[kassebro] run directory {run_dir}; starting the components ...", flush=True)
    procs: dict[str, subprocess.Popen] = {}
    restarts: dict[str, int] = {}
    left_down: set[str] = set()
    try:
        procs["sandboxes"] = launcher.start_demo_services(home, ports, mail_port, run_dir / "logs")
        for name, argv in components(topology, run_dir):
            procs[name] = start_host(run_dir, name, argv)
            if name in API_PORTS:  # the UI, and the execution API the tasks call from their first second
                launcher._wait_for(API_PORTS[name](topology), 180)
        _write_run_file(run_dir, topology, home, procs, sandbox_ports=ports, mail_port=mail_port, ready=False)
        wait_for_workers(topology.worker_names(), procs)
        _write_run_file(run_dir, topology, home, procs, sandbox_ports=ports, mail_port=mail_port, ready=True)
        print(
            f"[kassebro] CeleryExecutor: {', '.join(topology.worker_names())} answer on {topology.broker}; "
            f"metadata DB {topology.metadata_db}, journal {topology.journal_db} on {topology.pg_server}; "
            f"up in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        launcher.print_ready(topology.port, run_dir / "logs", paused=topology.paused)
        argv_of = dict(components(topology, run_dir))
        next_report = time.monotonic() + 30
        while True:
            time.sleep(1)
            for name, proc in list(procs.items()):
                if proc.poll() is None or name in left_down:
                    continue
                if not topology.restart or name == "sandboxes" or restarts.get(name, 0) >= MAX_RESTARTS:
                    print(f"[kassebro] {name} exited ({proc.returncode}); left down", flush=True)
                    launcher.stop_all([proc], timeout=5)
                    left_down.add(name)
                    continue
                restarts[name] = restarts.get(name, 0) + 1
                print(f"[kassebro] {name} exited ({proc.returncode}); starting it again", flush=True)
                launcher.stop_all([proc], timeout=5)  # what it left of its group (a worker's pool processes) goes too
                time.sleep(min(30, 2 ** restarts[name]))  # compose's restart: always backs off too
                procs[name] = start_host(run_dir, name, argv_of[name])
                _write_run_file(run_dir, topology, home, procs, sandbox_ports=ports, mail_port=mail_port, ready=True)
            if all(p.poll() is not None for n, p in procs.items() if n != "sandboxes"):
                print("[kassebro] every Airflow process stopped; see the logs", flush=True)
                return 1
            if time.monotonic() > next_report:
                next_report = time.monotonic() + 30
                print(f"[kassebro] {dt.datetime.now():%H:%M:%S} journal: {launcher._progress(home)}", flush=True)
    except KeyboardInterrupt:
        print("\n[kassebro] stopping ...", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"[kassebro] {exc}; see {run_dir / 'logs'}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # workers first: a warm shutdown lets their running tasks finish while the API server is up
        workers = [procs[n] for n in topology.worker_names() if n in procs]
        launcher.stop_all(workers, timeout=30)
        launcher.stop_all([p for n, p in procs.items() if p not in workers], timeout=30)
        print(f"[kassebro] stopped; logs in {run_dir / 'logs'}", flush=True)
