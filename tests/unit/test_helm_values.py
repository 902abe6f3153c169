"""deploy/helm/values-*.yaml against the official Airflow chart's values schema, and against us.

No `helm` binary can be had from the package registries this project reaches, so nothing is
rendered: the values are validated with `jsonschema` against a copy of the chart's
`values.schema.json` (deploy/helm/airflow-chart/ORIGIN.md), the way `helm install` validates them
first, and then checked for what matters to kassebro: the executor, the topology of
docker-compose.yaml, no secret written inline, work files in object storage, every connection the
baked-in config/ names wired from a secret. Each check has a wrong value it must refuse below.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
HELM = PROJECT / "deploy" / "helm"
SCHEMA_FILE = HELM / "airflow-chart" / "values.schema.json"
VALUES = {"values-celery.yaml": "CeleryExecutor", "values-kubernetes.yaml": "KubernetesExecutor"}
IMAGE = "ghcr.io/kassebro/kassebro"

# Keys that name a secret; their value must come from a Kubernetes Secret, never from this file.
SENSITIVE = re.compile(r"pass|secret|token|fernet|credential|private|api_?key", re.IGNORECASE)
# ...unless the key only points at one: a Secret's name, a key in it, a file or a command.
REFERENCE = re.compile(r"(SecretName|secretName|secretKey|ConfigMapName|envName|_file|_cmd)$")
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((HELM / name).read_text())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    # the schema declares draft-07; its $refs all point into its own `definitions`
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


def compose_env(compose: dict[str, Any]) -> dict[str, str]:
    return compose["x-airflow-common"]["environment"]


def env_of(values: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in values.get("env", [])}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry, into lists and into templated YAML strings."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            yield here, key, value
            if key in ("extraEnv", "extraEnvFrom", "envFrom") and isinstance(value, str):
                value = yaml.safe_load(value)
            yield from walk(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from walk(item, f"{path}[{i}]")


# --- the checks, each returning what it finds wrong ----------------------------------------------


def schema_problems(validator: jsonschema.Draft7Validator, values: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def unknown_top_level(schema: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The schema lets unknown top-level keys through; Helm would ignore a misspelt `worker:`."""
    return [f"unknown top-level key {key!r}" for key in values if key not in schema["properties"]]


def inline_secrets(values: dict[str, Any]) -> list[str]:
    found = []
    for path, key, value in walk(values):
        literal = isinstance(value, str | int | float) and not isinstance(value, bool) and value != ""
        if not literal:
            continue
        if isinstance(key, str) and SENSITIVE.search(key) and not REFERENCE.search(key):
            found.append(f"{path}: a secret written inline")
        if key == "value" and isinstance(value, str) and CREDENTIALS_IN_URL.search(value):
            found.append(f"{path}: credentials in a URL")
    for item in values.get("env", []):
        if SENSITIVE.search(item["name"]) or item["name"].startswith("AIRFLOW_CONN_"):
            found.append(f"env {item['name']}: a secret written inline (use `secret:`)")
    return found


def work_url_problems(values: dict[str, Any]) -> list[str]:
    """The work files and the year-end exports in shared storage, not on one pod's disk."""
    found = []
    for name, what in (("KASSEBRO_WORK_URL", "work files"), ("KASSEBRO_EXPORT_URL", "year-end exports")):
        url = env_of(values).get(name)
        if not url:
            found.append(f"no {name}: {what} would stay on one pod's disk")
        elif urlparse(url).scheme in ("", "file", "local"):
            found.append(f"{name} {url!r} is a local path: {what} on one node, unseen from the others")
    return found


def connections_of(values: dict[str, Any]) -> set[str]:
    names = [item["envName"] for item in values.get("secret", [])] + list(env_of(values))
    return {name.removeprefix("AIRFLOW_CONN_").lower() for name in names if name.startswith("AIRFLOW_CONN_")}


def config_connections() -> set[str]:
    """Every connection id the baked-in config/ names (vendors, webshops, alerts, read-back)."""
    ids: set[str] = set()
    for path in sorted((PROJECT / "config").rglob("*.yaml")):
        for _, key, value in walk(yaml.safe_load(path.read_text()) or {}):
            if key in ("connection", "smtp_connection") and isinstance(value, str):
                ids.add(value)
            if key == "connections" and isinstance(value, dict):
                ids.update(value)
    return ids


def connection_problems(values: dict[str, Any], compose: dict[str, Any]) -> list[str]:
    demo = {k.removeprefix("AIRFLOW_CONN_").lower() for k in compose_env(compose) if k.startswith("AIRFLOW_CONN_")}
    wired, wanted = connections_of(values), config_connections()
    problems = [f"connection {c!r} is neither docker-compose's nor named in config/" for c in wired - demo - wanted]
    problems += [f"config/ names connection {c!r}, the values do not wire it" for c in wanted - wired]
    for item in values.get("secret", []):
        if item.get("secretKey") != item["envName"]:
            problems.append(f"secret {item['envName']}: read from key {item.get('secretKey')!r}")
    return problems


# --- the files as they are -----------------------------------------------------------------------


def test_schema_is_the_copy_origin_md_describes() -> None:
    origin = (HELM / "airflow-chart" / "ORIGIN.md").read_text()
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert f"`{digest}`" in origin, "values.schema.json changed: copy it again and update ORIGIN.md"


@pytest.mark.parametrize("name", VALUES)
def test_values_pass_the_chart_schema(name: str, validator: jsonschema.Draft7Validator, schema: dict) -> None:
    values = load(name)
    assert schema_problems(validator, values) == []
    assert unknown_top_level(schema, values) == []


@pytest.mark.parametrize(("name", "executor"), VALUES.items())
def test_executor_and_components(name: str, executor: str) -> None:
    values = load(name)
    assert values["executor"] == executor
    assert values["dagProcessor"]["enabled"] is True  # Airflow 3 parses DAGs only there
    assert values["triggerer"]["enabled"] is True  # deadline alerts and deferred tasks
    assert values["scheduler"].get("enabled", True)
    # one deployment serves the UI and the tasks' execution API: two replicas, so a night's start
    # (dozens of task-start calls at once) does not leave the UI one busy process
    assert values["apiServer"]["replicas"] >= 2
    assert values["postgresql"]["enabled"] is False
    assert values["data"]["metadataSecretName"] == "kassebro-airflow-metadata"
    if executor == "CeleryExecutor":
        assert values["workers"]["replicas"] >= 2
        assert values["redis"]["enabled"] or values["data"].get("brokerUrlSecretName")
    else:
        assert values["redis"]["enabled"] is False and "replicas" not in values["workers"]


@pytest.mark.parametrize("name", VALUES)
def test_image_is_kassebro_with_dags_baked_in(name: str, compose: dict) -> None:
    values = load(name)
    image = values["images"]["airflow"]
    version = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["version"]
    assert (image["repository"], image["tag"]) == (IMAGE, version)
    base = re.search(r"^FROM apache/airflow:(\S+?)-python", (PROJECT / "Dockerfile").read_text(), re.M)
    assert base and values["airflowVersion"] == base.group(1)
    assert not values["dags"]["gitSync"]["enabled"] and not values["dags"]["persistence"]["enabled"]
    assert values["config"]["core"]["dags_folder"] == compose_env(compose)["AIRFLOW__CORE__DAGS_FOLDER"]


@pytest.mark.parametrize("name", VALUES)
def test_env_mirrors_docker_compose(name: str, compose: dict) -> None:
    env, common = env_of(load(name)), compose_env(compose)
    for key in ("KASSEBRO_CONFIG", "KASSEBRO_DATA", "GX_ANALYTICS_ENABLED"):
        assert env[key] == common[key], key
    assert work_url_problems(load(name)) == []


@pytest.mark.parametrize("name", VALUES)
def test_no_secret_inline(name: str) -> None:
    values = load(name)
    assert inline_secrets(values) == []
    # KASSEBRO_JOURNAL_URL carries a password: it must come in through a Secret
    refs = yaml.safe_load(values["extraEnvFrom"])
    assert [ref["secretRef"]["name"] for ref in refs] == ["kassebro-env"]


@pytest.mark.parametrize("name", VALUES)
def test_connections_are_the_ones_config_names(name: str, compose: dict) -> None:
    assert connection_problems(load(name), compose) == []


@pytest.mark.parametrize("name", VALUES)
def test_pools_are_synced_after_migration_as_in_compose(name: str, compose: dict) -> None:
    script = " ".join(load(name)["migrateDatabaseJob"]["args"])
    init = compose["services"]["airflow-init"]["command"][1]
    for step in ("airflow db migrate", "kassebro pools sync"):
        assert step in script and step in init
    assert script.index("airflow db migrate") < script.index("kassebro pools sync")


def test_both_executors_share_everything_else() -> None:
    celery, kubernetes = load("values-celery.yaml"), load("values-kubernetes.yaml")
    shared = ("images", "airflowVersion", "dags", "postgresql", "fernetKeySecretName", "jwtSecretName")
    shared += ("webserverSecretKeySecretName", "env", "extraEnvFrom", "secret", "volumes", "volumeMounts")
    shared += ("logs", "migrateDatabaseJob", "apiServer", "scheduler", "dagProcessor", "triggerer")
    for key in shared:
        assert celery[key] == kubernetes[key], key
    assert celery["config"]["core"] == kubernetes["config"]["core"]
    assert celery["workers"]["resources"] == kubernetes["workers"]["resources"]


# --- wrong values each check must refuse ---------------------------------------------------------


def mutate(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    values = copy.deepcopy(load("values-celery.yaml"))
    change(values)
    return values


def set_env(values: dict[str, Any], name: str, value: str) -> None:
    values["env"] = [item for item in values["env"] if item["name"] != name] + [{"name": name, "value": value}]


SCHEMA_REFUSES = {
    "executor Nonsense": lambda v: v.update(executor="Nonsense"),
    "workers.replicas two": lambda v: v["workers"].update(replicas="two"),
    "pullPolicy Sometimes": lambda v: v["images"]["airflow"].update(pullPolicy="Sometimes"),
    "env item without value": lambda v: v["env"].append({"name": "KASSEBRO_X"}),
    "config value not a scalar": lambda v: v["config"]["core"].update(dags_folder={"path": "/x"}),
    "dagProcessor.enabled yes": lambda v: v["dagProcessor"].update(enabled="yes"),
    "apiServer typo": lambda v: v["apiServer"].update(replica=2),
    "secret item without secretName": lambda v: v["secret"].append({"envName": "AIRFLOW_CONN_X"}),
}


@pytest.mark.parametrize("change", SCHEMA_REFUSES.values(), ids=SCHEMA_REFUSES.keys())
def test_schema_refuses(change: Callable, validator: jsonschema.Draft7Validator) -> None:
    assert schema_problems(validator, mutate(change))


WE_REFUSE = {  # the schema lets each of these through; the message part says which check caught it
    "top-level typo": (lambda v: v.update(worker={"replicas": 3}), "unknown top-level key"),
    "metadata password inline": (
        lambda v: v["data"].update(metadataConnection={"user": "a", "pass": "hunter2"}),
        "metadataConnection.pass: a secret written inline",
    ),
    "fernet key inline": (lambda v: v.update(fernetKey="c2VjcmV0LWtleQ=="), "fernetKey: a secret written inline"),
    "redis password inline": (lambda v: v["redis"].update(password="hunter2"), "redis.password: a secret"),
    "connection in env": (
        lambda v: set_env(v, "AIRFLOW_CONN_TRIPLETEX_DEMO", '{"conn_type": "tripletex"}'),
        "env AIRFLOW_CONN_TRIPLETEX_DEMO: a secret written inline",
    ),
    "journal URL with password": (
        lambda v: set_env(v, "KASSEBRO_JOURNAL_URL", "postgresql://kb:hunter2@db/kb"),
        "credentials in a URL",
    ),
    "work files on local disk": (
        lambda v: set_env(v, "KASSEBRO_WORK_URL", "file:///opt/kassebro-data/work"),
        "is a local path",
    ),
    "no work URL": (
        lambda v: v.update(env=[i for i in v["env"] if i["name"] != "KASSEBRO_WORK_URL"]),
        "no KASSEBRO_WORK_URL",
    ),
    "exports on local disk": (
        lambda v: set_env(v, "KASSEBRO_EXPORT_URL", "/opt/kassebro-data/exports"),
        "KASSEBRO_EXPORT_URL '/opt/kassebro-data/exports' is a local path",
    ),
    "unknown connection": (
        lambda v: v["secret"].append(
            {
                "envName": "AIRFLOW_CONN_NOBODY",
                "secretName": "kassebro-airflow-connections",
                "secretKey": "AIRFLOW_CONN_NOBODY",
            }
        ),
        "connection 'nobody' is neither",
    ),
    "config's connection not wired": (
        lambda v: v.update(secret=[i for i in v["secret"] if i["envName"] != "AIRFLOW_CONN_FIKEN_DEMO"]),
        "names connection 'fiken_demo', the values do not wire it",
    ),
}


@pytest.mark.parametrize(("change", "expected"), WE_REFUSE.values(), ids=WE_REFUSE.keys())
def test_our_checks_refuse(
    change: Callable, expected: str, schema: dict, compose: dict, validator: jsonschema.Draft7Validator
) -> None:
    values = mutate(change)
    found = unknown_top_level(schema, values) + inline_secrets(values) + work_url_problems(values)
    found += connection_problems(values, compose)
    assert any(expected in problem for problem in found), found
    assert schema_problems(validator, values) == []  # so these checks are not redundant with the schema
