"""Every deployment parses the DAG files as `kassebro.airflow.parsing` says: docker-compose, the
Helm values, `make run` and the native Celery topology (which `make bench-night` runs too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kassebro.airflow.parsing import PARSE_INTERVAL_SECONDS, PARSE_SETTINGS

PROJECT = Path(__file__).resolve().parents[2]


def _option(key: str) -> tuple[str, str]:
    m = re.fullmatch(r"AIRFLOW__([A-Z_]+?)__([A-Z_]+)", key)
    assert m, key
    return m.group(1).lower(), m.group(2).lower()


def test_the_settings_are_airflow_options_with_allowed_values() -> None:
    from airflow.configuration import conf

    assert int(PARSE_SETTINGS["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]) == PARSE_INTERVAL_SECONDS
    for key, value in PARSE_SETTINGS.items():
        section, option = _option(key)
        described = conf.configuration_description[section]["options"][option]
        assert described, key
        if option == "file_parsing_sort_mode":
            assert value in described["description"], described["description"]


def test_docker_compose_sets_them_for_every_airflow_service() -> None:
    compose = yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    assert {k: str(env.get(k)) for k in PARSE_SETTINGS} == PARSE_SETTINGS
    airflow_services = [
        n for n, s in compose["services"].items() if "AIRFLOW__CORE__EXECUTOR" in s.get("environment", {})
    ]
    assert len(airflow_services) >= 6, airflow_services  # api-server, execution API, scheduler, ...
    for name in airflow_services:
        service = compose["services"][name]
        assert {k: str(service["environment"].get(k)) for k in PARSE_SETTINGS} == PARSE_SETTINGS, name


@pytest.mark.parametrize("name", ["values-celery.yaml", "values-kubernetes.yaml"])
def test_helm_values_set_them_in_the_chart_config(name: str) -> None:
    values = yaml.safe_load((PROJECT / "deploy" / "helm" / name).read_text())
    for key, value in PARSE_SETTINGS.items():
        section, option = _option(key)
        assert str(values["config"][section][option]) == value, (name, key)


def test_make_run_and_the_native_topology_set_them(tmp_path: Path) -> None:
    from kassebro.demo import distributed
    from kassebro.demo.home import environment

    assert PARSE_SETTINGS.items() <= environment(tmp_path).items()
    topology = distributed.Topology(workers=2, port=8080, execution_port=8081)
    assert PARSE_SETTINGS.items() <= distributed.shared_environment(topology, tmp_path).items()


def test_the_config_dag_files_are_the_dags_folder(project_dir: Path) -> None:
    """Every DAG file builds its DAGs from the config: `config reload` must ask for each."""
    from kassebro.airflow.parsing import CONFIG_DAG_FILES

    assert set(CONFIG_DAG_FILES) == {p.name for p in (project_dir / "dags").glob("*.py")}


def _requests() -> list[tuple[str, str]]:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagPriorityParsingRequest.bundle_name, DagPriorityParsingRequest.relative_fileloc)
        ).all()
    return sorted((b, f) for b, f in rows)


def _clear_requests() -> None:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagPriorityParsingRequest))


def test_config_reload_checks_then_asks_airflow_to_parse_each_config_dag_file(
    airflow_db: None, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the DAG processor claims: `DagPriorityParsingRequest` rows (as the UI's "Reparse Dag"
    adds), one per file of the dags-folder bundle; asked twice, still one each."""
    from kassebro.airflow.parsing import CONFIG_DAG_FILES
    from kassebro.cli import main

    _clear_requests()
    config = str(project_dir / "config")
    assert main(["config", "reload", "--config", config]) == 0
    expected = [("dags-folder", name) for name in sorted(CONFIG_DAG_FILES)]
    assert _requests() == expected
    assert "reparse asked for: vendor_postings.py in bundle dags-folder" in capsys.readouterr().out
    assert main(["config", "reload", "--config", config]) == 0
    assert _requests() == expected
    assert "reparse was already asked for: vendor_postings.py" in capsys.readouterr().out
    _clear_requests()


def test_config_reload_asks_for_nothing_while_a_vendor_file_is_broken(
    airflow_db: None, project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from kassebro.cli import main

    _clear_requests()
    config = tmp_path / "config"
    shutil.copytree(project_dir / "config", config)
    (config / "vendors" / "kiosk_torget.yaml").write_text("id: kiosk_torget\nenabled_since: not a date\n")
    assert main(["config", "reload", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "kiosk_torget" in out and "nothing reloaded" in out
    assert _requests() == []


def test_config_reload_names_an_unreachable_metadata_db_without_its_password(project_dir: Path) -> None:
    import os
    import subprocess
    import sys

    url = "postgresql+psycopg2://airflow:s3cret-pw@127.0.0.1:1/airflow"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kassebro")), "config", "reload", "--config", str(project_dir / "config")],
        env={**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "metadata DB (postgresql+psycopg2://airflow:***@127.0.0.1:1/airflow)" in done.stdout, done.stdout
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in done.stdout
    assert "s3cret-pw" not in done.stdout + done.stderr
