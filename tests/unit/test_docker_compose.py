"""docker-compose.yaml cannot run here (no Docker engine), so check it for what breaks at start."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)


def test_services(compose: dict) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "ledger-sandboxes", *AIRFLOW_SERVICES}
    for name, svc in compose["services"].items():
        for dep in svc.get("depends_on") or {}:
            assert dep in compose["services"], (name, dep)
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (PROJECT / src).exists(), (name, src)
            else:
                assert src in compose["volumes"], (name, src)


def test_airflow_commands_are_real_subcommands(compose: dict) -> None:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in AIRFLOW_SERVICES[:-1]:
        command = compose["services"][name]["command"]
        args = command.split() if isinstance(command, str) else command
        if args[0] == "celery":  # the celery provider's command: shipped in the official image
            assert args == ["celery", "worker"]
            continue
        parser.parse_args(args)


def test_environment_options_exist(compose: dict) -> None:
    from airflow.configuration import conf

    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in env:
        m = re.fullmatch(r"AIRFLOW__([A-Z_]+?)__([A-Z_]+)", key)
        if not m:
            continue
        section, option = m.group(1).lower(), m.group(2).lower()
        if section == "celery":
            continue  # the celery provider's section; the image ships the provider
        known = conf.configuration_description.get(section, {}).get("options", {})
        assert option in known or conf.has_option(section, option), key
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    from kassebro.demo import DEMO_CONNECTIONS
    from kassebro.sandbox.demo import DEFAULT_PORTS, connection

    for system, conn_id in DEMO_CONNECTIONS.items():  # every demo vendor's connection, at the sandboxes' service
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn == connection(system, f"http://ledger-sandboxes:{DEFAULT_PORTS[system]}"), system
    assert env["KASSEBRO_JOURNAL_URL"].startswith("postgresql")


def test_image_pins_the_same_airflow(compose: dict) -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text()
    version = re.search(r"^apache-airflow==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{version}-python3.11" in dockerfile


def test_sandbox_command_runs_the_sandbox_module(compose: dict) -> None:
    from kassebro.sandbox.demo import DEFAULT_PORTS, build_parser

    service = compose["services"]["ledger-sandboxes"]
    cmd = service["command"]
    assert cmd[:3] == ["python", "-m", "kassebro.sandbox.demo"]
    args = build_parser().parse_args(cmd[3:])
    assert args.host == "0.0.0.0" and args.port is None  # the default ports, 8900-8904
    first, last = min(DEFAULT_PORTS.values()), max(DEFAULT_PORTS.values())
    assert service["ports"] == [f"{first}-{last}:{first}-{last}"]
