"""`kassebro run-distributed`'s wiring without starting anything (tests/integration/test_distributed.py
starts it for real): what every component shares, what each one has of its own."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kassebro.demo import distributed
from kassebro.demo.distributed import Topology


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KASSEBRO_PG", raising=False)
    monkeypatch.delenv("KASSEBRO_CELERY_BROKER", raising=False)


def test_the_result_backend_names_its_driver_on_the_metadata_db() -> None:
    # a bare db+postgresql:// is psycopg 3 to SQLAlchemy 2.1: the workers would die at start
    assert Topology().result_backend() == "db+postgresql+psycopg2://postgres@127.0.0.1:5432/kassebro_airflow_dist"
    assert Topology().broker == "redis://127.0.0.1:6379/0"


def test_every_component_shares_the_executor_the_databases_and_the_work_files(tmp_path: Path) -> None:
    topology = Topology(port=18080, execution_port=18081, metadata_db="af_x", journal_db="j_x", paused=True)
    env = distributed.shared_environment(topology, tmp_path / "home")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/af_x")
    assert env["KASSEBRO_JOURNAL_URL"].endswith("/j_x")
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "af_x:"  # one topology's keys
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18081/execution/"  # apart from the UI
    assert env["KASSEBRO_WORK_URL"] == (tmp_path / "home" / "shared-work").resolve().as_uri()
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "kassebro.demo.distributed.host_name"


def test_the_secrets_are_made_once_and_read_through_cmd(tmp_path: Path) -> None:
    first = distributed.secret_commands(tmp_path)
    files = {variable: Path(command.removeprefix("cat ")) for variable, command in first.items()}
    assert set(files) == {
        "AIRFLOW__CORE__FERNET_KEY_CMD",
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
        "AIRFLOW__API__SECRET_KEY_CMD",
    }
    values = {variable: path.read_text() for variable, path in files.items()}
    assert all(len(value) >= 40 for value in values.values())
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files.values())
    assert distributed.secret_commands(tmp_path) == first
    assert {variable: path.read_text() for variable, path in files.items()} == values  # never replaced


def test_each_worker_is_a_host_of_its_own(tmp_path: Path) -> None:
    topology = Topology(workers=2, concurrency=3)
    procs = dict(distributed.components(topology, tmp_path))
    assert list(procs) == [
        "api-server", "execution-api", "scheduler", "dag-processor", "triggerer", *topology.worker_names()
    ]  # fmt: skip
    assert procs["api-server"][2:6] == ["--apps", "core", "--port", str(topology.port)]
    assert procs["execution-api"][2:6] == ["--apps", "execution", "--port", str(topology.execution_port)]
    pid_files = set()
    for name in topology.worker_names():
        argv = procs[name]
        assert argv[1:3] == ["celery", "worker"]
        assert argv[argv.index("--celery-hostname") + 1] == name
        assert argv[argv.index("--queues") + 1] == "default"
        assert argv[argv.index("--concurrency") + 1] == "3"
        pid_files.add(argv[argv.index("--pid") + 1])
    assert len(pid_files) == 2


def test_the_host_name_is_the_stand_in_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASSEBRO_HOST_NAME", "kassebro-worker-2")
    assert distributed.host_name() == "kassebro-worker-2"
    monkeypatch.delenv("KASSEBRO_HOST_NAME")
    assert distributed.host_name()


def test_the_cli_options() -> None:
    from kassebro.cli import build_parser

    args = build_parser().parse_args(
        ["run-distributed", "--workers", "3", "--port", "9090", "--paused", "--no-restart", "--metadata-db", "m"]
    )
    assert (args.workers, args.port, args.paused, args.no_restart, args.metadata_db) == (3, 9090, True, True, "m")
    assert args.journal_db == "kassebro_journal_dist" and args.concurrency == 0 and args.days == 14


def test_the_workers_share_the_machines_task_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.demo import distributed

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert distributed.Topology(workers=2).concurrency == 16  # 32 slots on 2 cores, as the LocalExecutor's
    assert distributed.Topology(workers=3).concurrency == 10
    assert distributed.Topology(workers=2, concurrency=3).concurrency == 3


def test_a_database_another_home_made_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    existing = {"af_old"}

    def ensure(server: str, name: str) -> bool:
        if name in existing:
            return False
        existing.add(name)
        made.append(name)
        return True

    monkeypatch.setattr(distributed, "ensure_database", ensure)
    home = tmp_path / "home"
    distributed.home_databases(home, Topology(metadata_db="af_new", journal_db="j_new"))
    assert made == ["af_new", "j_new"]
    distributed.home_databases(home, Topology(metadata_db="af_new", journal_db="j_new"))  # its own: used again
    with pytest.raises(RuntimeError, match="af_old .* was not made for"):
        distributed.home_databases(home, Topology(metadata_db="af_old", journal_db="j_new"))
