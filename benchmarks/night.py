"""`make bench-night`: a night of N shops, one business day each, against Airflow's own floor.

N vendors are generated from the five demo vendors of the five ledger systems (Tripletex, Fiken,
PowerOffice Go, Xledger, Duett, in turn), each with one business day of sales (the demo POS's SAF-T
file of its template; the shops of one template share it), all reporting daily at 02:30 Oslo time
and enabled since the last day reported: each DAG has exactly one run, for that day. They run as a
night on Airflow with PostgreSQL as metadata DB and journal (fresh databases per measurement),
started natively as `make run-distributed` starts them (`kassebro.demo.distributed`): the
LocalExecutor (the scheduler forks the tasks), or the CeleryExecutor with its workers on Redis.

The floor, measured in the same run on the same services: N DAGs of the same task shape and pools
whose tasks do nothing (`benchmarks/reference_dags.py`).

Per measurement, from the API server's own records (REST API): the window from the first task
instance's start to the last one's end, vendor-days per minute, seconds of task time per
vendor-day (the task instances' durations summed, over N), and how the API server answered
`/api/v2/monitor/health` throughout (probed every second from a thread; the slowest answer and how
many took more than 2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
import yaml

from benchmarks import pg_cluster

PROJECT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Oslo")
TEMPLATES = ("cafe_solsiden", "kiosk_torget", "bakeri_bryggen", "vinbar_kaia", "jernvare_sentrum")
"""One demo vendor per ledger system: Tripletex, Fiken, PowerOffice Go, Xledger, Duett."""
METADATA_DB = "kassebro_bench_night_airflow"
JOURNAL_DB = "kassebro_bench_night_journal"
HEALTH_LIMIT = 2.0


def business_day(now: dt.datetime | None = None) -> dt.date:
    """The last business day a daily 02:30 (Oslo) report has covered by now."""
    local = (now or dt.datetime.now(ZONE)).astimezone(ZONE)
    return (local - dt.timedelta(hours=2, minutes=30)).date() - dt.timedelta(days=1)


def write_home(home: Path, n: int, day: dt.date) -> list[str]:
    """Config and data for N generated vendors (see the module docstring); their pools in order."""
    from kassebro.config import load_vendor
    from kassebro.demo.home import write_sales

    config = home / "config"
    (config / "vendors").mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers", dirs_exist_ok=True)
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    templates = {t: yaml.safe_load((PROJECT / "config" / "vendors" / f"{t}.yaml").read_text()) for t in TEMPLATES}
    for data in templates.values():
        write_sales(data, [day], home / "data")
    pools: list[str] = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        data = json.loads(json.dumps(templates[template], default=str))
        data.update(
            id=f"{template}_{i:05d}",
            name=f"{data['name']} {i:05d}",
            enabled_since=day.isoformat(),
            schedule={"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "time": "02:30"},
        )
        data.pop("calendar", None)
        (config / "vendors" / f"{data['id']}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        if i < len(TEMPLATES):
            pools.append(load_vendor(data["id"], root=config).pool)
    return pools


def duett_slots(n: int) -> dict[str, int]:
    """A voucher-number slot for each generated Duett vendor, as a chain sets `vendor_slots` on
    its Duett connection: hashed slots of 200 vendors in one client collide (docs/duett.md)."""
    duett = TEMPLATES.index("jernvare_sentrum")
    return {f"{TEMPLATES[duett]}_{i:05d}": slot for slot, i in enumerate(range(duett, n, len(TEMPLATES)))}


def machine_busy_seconds() -> float:
    """CPU seconds this machine's cores have spent busy since boot (/proc/stat: all but idle and
    iowait), so a night's cost can be read as core-seconds, which contention does not inflate."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and everything below it (the sandboxes: the ledgers' share)."""
    own, below = split_cpu_seconds(pid)
    return own + below


def split_cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, those of everything below it): its living descendants' and
    the children they and it have reaped (a task process, when its supervisor has waited for it).
    The scheduler's "below" is the LocalExecutor's task processes; a Celery worker's, its pool's."""
    import psutil

    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        own, below = times.user + times.system, times.children_user + times.children_system
        for proc in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                below += t.user + t.system + t.children_user + t.children_system
        return own, below
    except psutil.Error:
        return 0.0, 0.0


def postgres_pid(exclude: int | None = None) -> int | None:
    """The PostgreSQL server's first process (its backends, one per connection, are below it);
    not `exclude`'s (the journal's own server, counted apart)."""
    import psutil

    for proc in psutil.process_iter(["name", "ppid"]):
        with contextlib.suppress(psutil.Error):
            top = proc.info["name"] in ("postgres", "postmaster") and psutil.Process(proc.info["ppid"]).name() not in (
                "postgres",
                "postmaster",
            )
            if top and proc.pid != exclude:
                return proc.pid
    return None


def component_cpu(procs: dict[str, subprocess.Popen], journal_pid: int | None = None) -> dict[str, float]:
    """CPU seconds so far of each started component, its own and below it, and PostgreSQL's (the
    journal's own server's apart, when it has one): read at a night's start and end, the difference
    says where the night's core-seconds went."""
    seconds: dict[str, float] = {}
    for name, proc in procs.items():
        own, below = split_cpu_seconds(proc.pid)
        if name == "sandboxes":
            seconds["ledger sandboxes"] = own + below
        elif name == "scheduler" or "worker" in name:  # LocalExecutor; a Celery worker (its pool)
            seconds[name] = own
            seconds["task processes"] = seconds.get("task processes", 0.0) + below
        else:
            seconds[name] = own + below
    pid = postgres_pid(exclude=journal_pid)
    seconds["postgresql"] = sum(split_cpu_seconds(pid)) if pid else 0.0
    if journal_pid:
        seconds[pg_cluster.JOURNAL_PG] = sum(split_cpu_seconds(journal_pid))
    return seconds


def step_work(ours: dict) -> dict[str, float]:
    """Our steps' own CPU seconds a vendor-day, step by step (each step runs once a vendor-day
    here): what the floor+work night's tasks spin."""
    return {step: round(row["cpu_s"], 3) for step, row in ours.get("steps_per_vendor_day", {}).items()}


IDLE_SECONDS = 30.0


def idle_cores(
    procs: dict[str, subprocess.Popen], seconds: float = IDLE_SECONDS, journal_pid: int | None = None
) -> dict[str, float]:
    """Each component's CPU in cores while nothing runs, the night's DAGs loaded, after its last
    run (the ledger sandboxes left out): what Airflow costs per second of uptime, whatever the tasks
    do, so what a longer window alone costs can be told from what each vendor-day asks of it."""
    busy, before = machine_busy_seconds(), component_cpu(procs, journal_pid)
    time.sleep(seconds)
    busy, after = machine_busy_seconds() - busy, component_cpu(procs, journal_pid)
    cores = {k: (v - before.get(k, 0.0)) / seconds for k, v in after.items() if k != "ledger sandboxes"}
    cores["the rest of the machine"] = (
        busy / seconds
        - sum(cores.values())
        - (after.get("ledger sandboxes", 0.0) - before.get("ledger sandboxes", 0.0)) / seconds
    )
    return {k: round(v, 3) for k, v in cores.items()}


def retry_reasons(logs: Path) -> dict[str, int]:
    """Why task instances were retried: the last error line of each attempt a later one followed,
    counted by its first 160 characters (from the task logs: `attempt=N.log` beside `attempt=N+1.log`)."""
    reasons: dict[str, int] = {}
    for path in logs.rglob("attempt=*.log"):
        attempt = path.stem.split("=", 1)[1]
        if not attempt.isdigit() or not (path.parent / f"attempt={int(attempt) + 1}.log").exists():
            continue
        reason = "no error line"
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("level") in ("error", "critical"):
                reason = str(record.get("event") or record)
                for detail in record.get("error_detail") or []:  # Airflow's structured exception
                    if isinstance(detail, dict) and detail.get("exc_type"):
                        reason = f"{reason}: {detail['exc_type']}: {detail.get('exc_value', '')}"
                reason = reason[:160]
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def step_costs(logs: Path) -> dict[str, dict[str, float]]:
    """Per step (`plan_days`, `prepare`, `post`): how many ran, the CPU seconds inside them (and the
    kernel's part, the page faults) and the CPU their task processes spent before them, summed from
    the task logs' step cost lines (`kassebro.airflow.step_cost`). The floor's constant tasks write none."""
    from kassebro.airflow.step_cost import parse

    steps: dict[str, dict[str, float]] = {}
    seen: set[tuple[str, str, str]] = set()
    for path in logs.rglob("*.log"):
        for cost in parse(path.read_text(errors="replace")):
            row = steps.setdefault(cost.step, {"count": 0, "again": 0, "cpu_s": 0.0, "before_s": 0.0, "wall_s": 0.0})
            row["count"] += 1
            key = (cost.step, cost.vendor, cost.day)
            row["again"] += key in seen  # a sensor's second poke, a retry
            seen.add(key)
            row["cpu_s"] += cost.cpu_s
            row["before_s"] += cost.before_s
            row["wall_s"] += cost.wall_s
            if cost.sys_s is not None and cost.faults is not None:  # lines since the kernel's share was logged
                row["sys_s"] = row.get("sys_s", 0.0) + cost.sys_s
                row["faults"] = row.get("faults", 0) + cost.faults
            if cost.imports is not None:
                row["imports"] = row.get("imports", 0) + cost.imports
    return steps


@dataclass
class Probe:
    """The API server's health endpoint, asked every second from a thread; each answer kept with
    when it was asked (seconds since the probe started), so a slow one can be set beside the
    components' logs."""

    url: str
    answers: list[tuple[float, float]] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started_at = dt.datetime.now(dt.UTC)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                requests.get(f"{self.url}/api/v2/monitor/health", timeout=30).raise_for_status()
            except requests.RequestException:
                self.failures += 1
            self.answers.append((started - self._t0, time.monotonic() - started))
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def __enter__(self) -> Probe:
        self.started_at = dt.datetime.now(dt.UTC)
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        answers = sorted(seconds for _, seconds in self.answers) or [0.0]
        slow = [(at, seconds) for at, seconds in self.answers if seconds > HEALTH_LIMIT]
        return {
            "probes": len(self.answers),
            "max_s": round(answers[-1], 2),
            "p95_s": round(answers[int(0.95 * (len(answers) - 1))], 2),
            "over_limit": len(slow),
            "failures": self.failures,
            "started_utc": self.started_at.isoformat(timespec="seconds"),
            "slow": [
                {"utc": (self.started_at + dt.timedelta(seconds=at)).strftime("%H:%M:%S"), "s": round(seconds, 2)}
                for at, seconds in slow
            ],
        }


class Api:
    """The REST API with a token from the simple auth manager."""

    def __init__(self, url: str, user: str = "admin", password: str = "admin") -> None:
        self.url = url
        token = requests.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
        token.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params: object) -> dict:
        response = self.session.get(f"{self.url}/api/v2{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def all(self, path: str, key: str, **params: object) -> list[dict]:
        rows: list[dict] = []
        while True:
            page = self.get(path, limit=100, offset=len(rows), **params)
            rows += page[key]
            if not page[key] or len(rows) >= page["total_entries"]:
                return rows


class MetadataDb:
    """The night's progress read from Airflow's metadata database, not through the API server:
    the bench's own polling must not be what keeps the API server busy (listing runs makes it load
    every DAG it names, seconds at N=100), so the only load on it while measured is the probe."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def runs_by_state(self, prefix: str = "") -> dict[str, int]:
        query = "SELECT state, count(*) FROM dag_run WHERE dag_id LIKE :prefix GROUP BY state"
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(self.sa.text(query), {"prefix": prefix + "%"})}

    def dags_due(self, prefix: str) -> tuple[int, int]:
        """(DAGs with the prefix, those of them with a run to create by now)."""
        query = "SELECT dag_id, next_dagrun_create_after FROM dag WHERE dag_id LIKE :prefix AND NOT is_stale"
        now = dt.datetime.now(dt.UTC)
        with self.engine.connect() as conn:
            rows = list(conn.execute(self.sa.text(query), {"prefix": prefix + "%"}))
        due = 0
        for _, after in rows:
            if isinstance(after, str):
                after = dt.datetime.fromisoformat(after)
            if after is not None and (after if after.tzinfo else after.replace(tzinfo=dt.UTC)) <= now:
                due += 1
        return len(rows), due

    def close(self) -> None:
        self.engine.dispose()


def _wait_for_runs(db: MetadataDb, n: int, seconds: float) -> None:
    """Every DAG's run finished (success or failed), or TimeoutError."""
    deadline = time.monotonic() + seconds
    while True:
        states = db.runs_by_state()
        done = states.get("success", 0) + states.get("failed", 0)
        if done >= n and sum(states.values()) == done:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {n} runs finished in {seconds:.0f} s")
        time.sleep(5)


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def measure(api: Api, n: int, runs: list[dict], tis: list[dict] | None = None) -> dict:
    """The night's figures from the task instances the API server recorded."""
    if tis is None:
        tis = api.all("/dags/~/dagRuns/~/taskInstances", "task_instances")
    starts = [m for ti in tis if (m := _moment(ti.get("start_date")))]
    ends = [m for ti in tis if (m := _moment(ti.get("end_date")))]
    durations = [float(ti["duration"]) for ti in tis if ti.get("duration") is not None]
    window = (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan")
    per_task: dict[str, list[float]] = {}
    for ti in tis:
        if ti.get("duration") is not None:
            per_task.setdefault(ti["task_id"], []).append(float(ti["duration"]))
    return {
        "n": n,
        "runs": len(runs),
        "runs_failed": sum(1 for r in runs if r["state"] != "success"),
        "task_instances": len(tis),
        "tis_not_success": sum(1 for ti in tis if ti["state"] != "success"),
        "window_s": round(window, 1),
        "vendor_days_per_min": round(n / window * 60, 1) if window else 0.0,
        "task_seconds_per_vendor_day": round(sum(durations) / n, 2),
        "task_seconds_per_task_instance": round(sum(durations) / max(1, len(durations)), 2),
        "median_task_s": {task: round(statistics.median(d), 2) for task, d in sorted(per_task.items())},
        "hosts": sorted({ti.get("hostname") or "" for ti in tis}),
    }


def _drop_and_create(server: str, names: tuple[str, ...]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"{server.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def night(
    kind: str,
    executor: str,
    n: int,
    work: Path,
    workers: int = 2,
    timeout: float = 3600,
    parallelism: int = 0,
    concurrency: int = 0,
    spin: dict[str, float] | None = None,
) -> dict:
    """One measured night: `kind` "kassebro" (the generated vendors), "floor", or "floor+work" (the
    floor whose tasks spin for `spin`'s CPU seconds a step: our steps' own, measured just before).

    The journal gets a PostgreSQL server of its own (`pg_cluster`), in every kind of night alike,
    so its CPU is counted apart from the metadata DB's; where one cannot be made here, it shares
    the metadata DB's server and the result says so (`journal_server`)."""
    from kassebro.demo import launcher

    args = (kind, executor, n, work, workers, timeout, parallelism, concurrency, spin)
    try:
        journal = pg_cluster.start(launcher._free_port())
    except RuntimeError as exc:
        print(f"[night] the journal shares the metadata DB's server: {exc}", flush=True)
        return _night(*args, journal=None)
    try:
        return _night(*args, journal=journal)
    finally:
        try:
            pg_cluster.stop(journal)
        except RuntimeError as exc:  # the night's figures stand; its files are deleted all the same
            print(f"[night] the journal's server did not stop cleanly: {exc}", flush=True)


def _night(
    kind: str,
    executor: str,
    n: int,
    work: Path,
    workers: int,
    timeout: float,
    parallelism: int,
    concurrency: int,
    spin: dict[str, float] | None,
    journal: pg_cluster.Cluster | None,
) -> dict:
    from kassebro.demo import distributed, launcher
    from kassebro.demo.home import connection_json, demo_connections

    topology = distributed.Topology(
        **({"concurrency": concurrency} if concurrency else {}),
        workers=workers if executor == "celery" else 0,
        port=launcher._free_port(),
        execution_port=launcher._free_port(),
        metadata_db=METADATA_DB,
        journal_db=JOURNAL_DB,
        restart=False,
    )
    home = work / f"{kind}-{executor}-{n}"
    shutil.rmtree(home, ignore_errors=True)
    day = business_day()
    pools = write_home(home, n, day)
    dags = home / "dags"
    dags.mkdir(parents=True)
    if kind.startswith("floor"):
        shutil.copy2(PROJECT / "benchmarks" / "reference_dags.py", dags / "reference_dags.py")
    else:
        shutil.copy2(PROJECT / "dags" / "vendor_postings.py", dags / "vendor_postings.py")
    if journal is None:
        _drop_and_create(topology.pg_server, (METADATA_DB, JOURNAL_DB))
    else:
        _drop_and_create(topology.pg_server, (METADATA_DB,))
        _drop_and_create(journal.url, (JOURNAL_DB,))
    ports = launcher.sandbox_ports(preferred=False)
    env = {
        "KASSEBRO_HOME": str(home),
        "KASSEBRO_CONFIG": str(home / "config"),
        "KASSEBRO_DATA": str(home / "data"),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "airflow" / "passwords.json"),
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "KASSEBRO_BENCH_N": str(n),
        "KASSEBRO_BENCH_DAY": day.isoformat(),
        "KASSEBRO_BENCH_POOLS": ",".join(pools),
        "KASSEBRO_BENCH_WORK": ",".join(f"{step}={seconds:.3f}" for step, seconds in (spin or {}).items()),
        **distributed.shared_environment(topology, home),
    }
    journal_pid = journal.pid if journal is not None else None
    if journal is not None:
        env["KASSEBRO_JOURNAL_URL"] = f"{journal.url}/{JOURNAL_DB}"
    if executor == "local":
        from kassebro.airflow.priority import task_slots

        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        # task processes at once: what `make run` gives the LocalExecutor (`task_slots`), unless asked
        parallelism = parallelism or task_slots()
    if parallelism:  # (Celery's slots are its workers' concurrency; Airflow's default here is 32)
        env["AIRFLOW__CORE__PARALLELISM"] = str(parallelism)
    for system, conn_id in demo_connections().items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection_json(ports[system], system)
        if system == "duett":  # the generated Duett vendors share one client: each gets its own slot
            body = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
            body["extra"]["vendor_slots"] = json.dumps(duett_slots(n))
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(body)
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    (home / "airflow" / "passwords.json").write_text(json.dumps({"admin": "admin"}))
    os.environ.update(env)
    subprocess.run([launcher._bin("airflow"), "db", "migrate"], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    subprocess.run([launcher._bin("kassebro"), "pools", "sync"], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    run_dir = home / "run"
    procs: dict[str, subprocess.Popen] = {}
    started = time.monotonic()
    try:
        procs["sandboxes"] = launcher.start_sandbox(home, ports)
        for name, argv in distributed.components(topology, run_dir):
            procs[name] = distributed.start_host(run_dir, name, argv)
            if name in distributed.API_PORTS:
                launcher._wait_for(distributed.API_PORTS[name](topology), 180)
        if topology.workers:
            distributed.wait_for_workers(topology.worker_names(), procs)
        url = f"http://127.0.0.1:{topology.port}"
        api = Api(url)
        db = MetadataDb(topology.url(METADATA_DB))
        busy, components = machine_busy_seconds(), component_cpu(procs, journal_pid)
        with Probe(url) as probe:
            _wait_for_runs(db, n, timeout)
        busy = machine_busy_seconds() - busy
        components = {k: v - components.get(k, 0.0) for k, v in component_cpu(procs, journal_pid).items()}
        idle = idle_cores(procs, journal_pid=journal_pid)
        ledgers = components["ledger sandboxes"]
        db.close()
        result = measure(api, n, api.all("/dags/~/dagRuns", "dag_runs"))
        # core-seconds from the API server's first answer to the last run's end, the ledger
        # sandboxes' own apart (a real ledger's work is not spent here)
        result["cpu_s_per_vendor_day"] = round((busy - ledgers) / n, 2)
        result["ledger_cpu_s_per_vendor_day"] = round(ledgers / n, 2)
        components["the rest of the machine"] = busy - sum(components.values())
        result["cpu_s_per_vendor_day_by_component"] = {k: round(v / n, 3) for k, v in components.items()}
        result["steps_per_vendor_day"] = {
            step: {k: round(v / n, 3) for k, v in row.items()}
            for step, row in step_costs(home / "airflow" / "logs").items()
        }
        result["retries"] = retry_reasons(home / "airflow" / "logs")
        result["idle_cores_by_component"], result["idle_s"] = idle, IDLE_SECONDS
        result.update(kind=kind, executor=executor, workers=topology.workers, day=day.isoformat())
        result["journal_server"] = "own" if journal is not None else "the metadata DB's"
        if topology.workers:
            result["concurrency"] = topology.concurrency
        result["parallelism"] = parallelism or 32
        # how often the DAG processor parsed the DAG file (Airflow's default 30 s before 2026-12-04)
        result["parse_interval_s"] = int(env.get("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", 30))
        result["health"] = probe.summary()
        result["wall_s"] = round(time.monotonic() - started, 1)
        if kind == "kassebro":
            result["journal"] = _journal_states()
        return result
    finally:
        for proc in reversed(list(procs.values())):
            launcher._stop(proc)


def _catchup_done(db: MetadataDb, vendors: int) -> bool:
    """Every vendor DAG parsed, none with a run still to create by now, none queued or running."""
    dags, due = db.dags_due("vendor_")
    states = db.runs_by_state("vendor_")
    return dags >= vendors and not due and sum(states.values()) == states.get("success", 0) + states.get("failed", 0)


def catchup(work: Path, timeout: float = 3600) -> dict:
    """`make run`'s catch-up (`kassebro run`: `airflow standalone`, SQLite, the LocalExecutor, the
    demo's vendors from enabled-since to today) from its start to the last vendor run's end, with
    the API server probed throughout. The issue that asked for this measured 578 task instances,
    0.60 s each and 12.3 s of task time each, and the API server silent for over 30 s."""
    from kassebro.config import load_vendors
    from kassebro.demo import launcher

    home = work / "catchup"
    shutil.rmtree(home, ignore_errors=True)
    port = launcher._free_port()
    os.environ.update(KASSEBRO_HOME=str(home), KASSEBRO_CONFIG=str(home / "config"), KASSEBRO_DATA=str(home / "data"))
    os.environ.pop("KASSEBRO_JOURNAL_URL", None)
    os.environ.pop("KASSEBRO_WORK_URL", None)
    home.mkdir(parents=True)
    log = (home / "run.log").open("ab")
    started = time.monotonic()
    proc = subprocess.Popen(
        [launcher._bin("kassebro"), "run", "--port", str(port)],
        env=os.environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        launcher._wait_for(port, 600)
        url = f"http://127.0.0.1:{port}"
        api = Api(url, launcher.AIRFLOW_USER, launcher.AIRFLOW_PASSWORD)
        vendors = len(load_vendors().vendors)
        deadline = time.monotonic() + timeout
        db = MetadataDb(f"sqlite:///{home / 'airflow' / 'airflow.db'}")
        busy = machine_busy_seconds()
        with Probe(url) as probe:
            while not _catchup_done(db, vendors):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the catch-up did not finish (see {home / 'run.log'})")
                time.sleep(5)
        busy = machine_busy_seconds() - busy
        db.close()
        runs = [r for r in api.all("/dags/~/dagRuns", "dag_runs") if r["dag_id"].startswith("vendor_")]
        states = _journal_states()
        days = sum(states.values())
        tis = [
            ti
            for ti in api.all("/dags/~/dagRuns/~/taskInstances", "task_instances")
            if ti["dag_id"].startswith("vendor_")
        ]
        result = measure(api, days, runs, tis)
        result.update(kind="catchup", executor="standalone", workers=0, vendors=vendors, journal=states)
        result["cpu_s_per_vendor_day"] = round(busy / days, 2)  # the sandboxes included
        result["seconds_per_task_instance"] = round(result["window_s"] / max(1, len(tis)), 2)
        result["health"] = probe.summary()
        result["wall_s"] = round(time.monotonic() - started, 1)
        return result
    finally:
        _stop_run(proc)


def _stop_run(proc: subprocess.Popen) -> None:
    """Stop `kassebro run` as Ctrl-C does (it stops `airflow standalone` and the sandboxes, each in
    a session of its own, which a SIGTERM to its group would leave running), then whatever is left."""
    import signal

    import psutil

    from kassebro.demo import launcher

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        launcher._stop(proc)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _journal_states() -> dict[str, int]:
    from kassebro.posting.journal import Journal

    states: dict[str, int] = {}
    for entry in Journal().entries():
        states[entry.state] = states.get(entry.state, 0) + 1
    return states


RESULTS = PROJECT / "benchmarks" / "results" / "night.json"
"""Every night measured so far, one per (kind, executor, N, parallelism), each with the commit it ran
at: a night takes up to an hour, so a run of some keeps the others' figures (in git, as the nights
run on machines that do not last)."""


def measured_at() -> str:
    """The commit measured: HEAD's short hash, "+changes" when the tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vendors", default="100,300,1000", help="comma-separated N")
    parser.add_argument("--executors", default="local,celery", help="local, celery or both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5400, help="seconds one night may take")
    parser.add_argument(
        "--parallelism",
        type=int,
        default=0,
        help="[core] parallelism (0: the LocalExecutor gets `make run`'s task_slots(), Celery Airflow's 32)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="each Celery worker's task processes (0: make run-distributed's)"
    )
    parser.add_argument(
        "--kinds",
        default="floor,kassebro,floor+work",
        help="the nights of each N and executor, in order; floor+work spins our steps' CPU of the kassebro "
        "night before it (or of the last one in --out)",
    )
    parser.add_argument("--catchup", action="store_true", help="also `make run`'s catch-up of the demo")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the nights measured so far, kept in git")
    args = parser.parse_args(argv)
    from benchmarks.run import _night_key, write_night

    results: list[dict] = json.loads(args.out.read_text()) if args.out.exists() else []
    commit = measured_at()
    with tempfile.TemporaryDirectory(prefix="kassebro-night-") as tmp:
        if args.catchup:
            print("[night] make run's catch-up ...", flush=True)
            result = catchup(Path(tmp), args.timeout)
            result["measured"] = commit
            print(f"[night] {json.dumps(result)}", flush=True)
            results = [r for r in results if r["kind"] != "catchup"] + [result]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
        for n in [int(v) for v in args.vendors.split(",") if v]:
            for executor in args.executors.split(","):
                spin = next(
                    (
                        step_work(r)
                        for r in reversed(results)
                        if (r["kind"], r["executor"], r["n"]) == ("kassebro", executor, n)
                    ),
                    {},
                )
                for kind in args.kinds.split(","):
                    if kind == "floor+work" and not spin:
                        print(
                            f"[night] floor+work, {executor}, N={n}: no kassebro night to take the work from",
                            flush=True,
                        )
                        continue
                    print(f"[night] {kind}, {executor}, N={n} ...", flush=True)
                    result = night(
                        kind,
                        executor,
                        n,
                        Path(tmp),
                        args.workers,
                        args.timeout,
                        args.parallelism,
                        args.concurrency,
                        spin=spin if kind == "floor+work" else None,
                    )
                    if kind == "kassebro":  # the floor+work night spins what our steps cost
                        spin = step_work(result)
                    result["measured"] = commit
                    print(f"[night] {json.dumps(result)}", flush=True)
                    results = [r for r in results if _night_key(r) != _night_key(result)] + [result]
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=1))
    print(write_night(results))
    return 0


if __name__ == "__main__":
    # stopped (`timeout`, a CI limit): the components are stopped too (`night`'s finally), else
    # Celery workers left behind take the next night's tasks from the broker
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
