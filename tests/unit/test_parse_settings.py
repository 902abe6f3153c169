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
