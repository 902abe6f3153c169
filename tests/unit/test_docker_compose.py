"""docker-compose.yaml cannot run here (no Docker engine), so check it for what breaks at start."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
SECRETS_DIR = "/opt/kassebro-secrets"
# option -> the file airflow-init generates it into; every Airflow service reads it with <OPTION>_CMD
SECRET_FILES = {
    "AIRFLOW__CORE__FERNET_KEY": "fernet_key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt_secret",
    "AIRFLOW__API__SECRET_KEY": "api_secret_key",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-execution-api",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)


def is_demo(svc: dict) -> bool:
    return "demo" in (svc.get("profiles") or [])


def production(compose: dict) -> dict[str, dict]:
    """The services `docker compose up` starts: those in no profile."""
    return {name: svc for name, svc in compose["services"].items() if not svc.get("profiles")}


def init_script(compose: dict) -> str:
    """airflow-init's bash script as bash sees it (compose turns `$$` into `$`)."""
    init = compose["services"]["airflow-init"]
    assert init["entrypoint"] == "/bin/bash" and init["command"][0] == "-c"
    return init["command"][1].replace("$$", "$")


def volume_target(svc: dict, source: str) -> str:
    (target,) = [v.split(":")[1] for v in svc.get("volumes", []) if v.split(":")[0] == source]
    return target


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


def test_production_never_waits_on_the_demo(compose: dict) -> None:
    """A service of no profile depending on a demo one would not start without `--profile demo`."""
    for name, svc in production(compose).items():
        for dep in svc.get("depends_on") or {}:
            assert not compose["services"][dep].get("profiles"), (name, dep)


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
        if option.endswith("_cmd"):  # Airflow runs <option>_cmd only for its sensitive options
            option = option.removesuffix("_cmd")
            assert (section, option) in conf.sensitive_config_values, key
        known = conf.configuration_description.get(section, {}).get("options", {})
        assert option in known or conf.has_option(section, option), key
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    from kassebro.demo.home import demo_connections
    from kassebro.demo.sandboxes import connection, default_ports

    for system, conn_id in demo_connections().items():  # every demo vendor's connection, at the sandboxes' service
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn == connection(system, f"http://ledger-sandboxes:{default_ports()[system]}"), system
    from kassebro.demo.home import demo_shop_connections
    from kassebro.demo.sandboxes import shop_connection

    for kind, conn_id in demo_shop_connections().items():  # the demo webshops' connections
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn == shop_connection(kind, f"http://ledger-sandboxes:{default_ports()[kind]}"), kind
    assert env["KASSEBRO_JOURNAL_URL"].startswith("postgresql")


def test_image_pins_the_same_airflow(compose: dict) -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text()
    version = re.search(r"^apache-airflow==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{version}-python3.11" in dockerfile


def test_image_installs_kassebro(compose: dict) -> None:
    """airflow-init runs `kassebro`: the image installs the project, which puts the script on PATH."""
    import tomllib

    dockerfile = (PROJECT / "Dockerfile").read_text()
    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kassebro"] == "kassebro.cli:main"
    assert re.search(r"^COPY\b.* \. /opt/kassebro$", dockerfile, re.M)
    # the project itself, not only its requirements
    assert re.search(r"pip install\b[^\n]*\s(-e )?/opt/kassebro( \\)?$", dockerfile, re.M)
    assert re.search(r"&& kassebro\b", dockerfile)  # the build fails if the script is not on PATH
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].startswith("/opt/kassebro/")
    # the named volumes start as copies of the image's directories: they exist there, for AIRFLOW_UID:0
    for volume in ("kassebro-data", "airflow-secrets"):
        target = volume_target(compose["services"]["airflow-scheduler"], volume)
        assert re.search(rf"mkdir -p [^\n]*{re.escape(target)}\b", dockerfile), target
        assert re.search(rf"chown airflow:0 [^\n]*{re.escape(target)}\b", dockerfile), target


def test_sandboxes_in_the_demo_profile_on_the_compose_network_only(compose: dict) -> None:
    from kassebro.demo.sandboxes import build_parser, default_ports

    service = compose["services"]["ledger-sandboxes"]
    cmd = service["command"]
    assert cmd[:3] == ["python", "-m", "kassebro.demo.sandboxes"]
    args = build_parser().parse_args(cmd[3:])
    assert args.host == "0.0.0.0" and args.port is None  # the default ports, 8900-8904 and the shops'
    first, last = min(default_ports().values()), max(default_ports().values())
    assert service["expose"] == [f"{first}-{last}"]
    sandboxes = {
        name
        for name, svc in compose["services"].items()
        if "sandbox" in name or "kassebro.sandbox" in str(svc.get("command", ""))
    }
    assert sandboxes == {"ledger-sandboxes"}
    for name in sandboxes:
        svc = compose["services"][name]
        assert "ports" not in svc, name  # nothing published on the host
        assert svc["profiles"] == ["demo"], name  # production talks to the real ledgers
        assert "airflow-secrets" not in str(svc.get("volumes")), name  # no Airflow secret in a sandbox
    # the only port on the host is the Airflow UI/API
    assert {name for name, svc in compose["services"].items() if svc.get("ports")} == {"airflow-apiserver"}


def test_no_key_or_secret_in_the_file(compose: dict) -> None:
    text = (PROJECT / "docker-compose.yaml").read_text()
    assert not re.search(r"[A-Za-z0-9_-]{43}=", text)  # nothing shaped like a Fernet key
    script = init_script(compose)
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for option, filename in SECRET_FILES.items():
            if name not in AIRFLOW_SERVICES:
                assert option not in env and f"{option}_CMD" not in env, (name, option)
                continue
            assert option not in env, (name, option)  # neither fixed nor empty nor from .env
            assert env[f"{option}_CMD"] == f"cat {SECRETS_DIR}/{filename}", (name, option)
            assert volume_target(svc, "airflow-secrets") == SECRETS_DIR, name
            assert re.search(rf"^generate {filename} ", script, re.M), filename
    for key in ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY"):
        assert not re.search(rf"{key}:\s*\S", text.replace("_CMD:", "")), key


def test_init_generates_the_secrets_once(compose: dict, tmp_path: Path) -> None:
    """The init script's generators give a valid Fernet key and long random secrets, and Airflow reads
    them through <OPTION>_CMD as compose sets it."""
    from cryptography.fernet import Fernet

    script = init_script(compose)
    assert re.search(r'if \[\[ ! -s "\$secrets/\$1" \]\]', script)  # never replaces an existing secret
    assert script.index("generate fernet_key") < script.index("airflow db migrate")
    values = {}
    for m in re.finditer(r'^generate (\w+) "([^"]+)"$', script, re.M):
        filename, code = m.groups()
        values[filename] = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        (tmp_path / filename).write_text(values[filename])
    assert set(values) == set(SECRET_FILES.values())
    Fernet(values["fernet_key"].encode())  # a valid key
    assert len(values["jwt_secret"]) >= 64 and len(values["api_secret_key"]) >= 64
    assert values["jwt_secret"] != values["api_secret_key"]

    env_in_compose = compose["services"]["airflow-apiserver"]["environment"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    for option in SECRET_FILES:
        env[f"{option}_CMD"] = env_in_compose[f"{option}_CMD"].replace(SECRETS_DIR, str(tmp_path))
    code = (
        "import json; from airflow.configuration import conf; from airflow.models.crypto import get_fernet;"
        "f = get_fernet(); assert f.decrypt(f.encrypt(b'refresh-token')) == b'refresh-token';"
        "print(json.dumps([conf.get('core', 'fernet_key'), conf.get('api_auth', 'jwt_secret'),"
        " conf.get('api', 'secret_key')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [
        values["fernet_key"],
        values["jwt_secret"],
        values["api_secret_key"],
    ]


def test_no_known_login_outside_the_demo_profile(compose: dict) -> None:
    for name, svc in production(compose).items():
        env = svc.get("environment") or {}
        dumped = json.dumps([env, svc.get("command"), svc.get("entrypoint")])
        assert "admin:admin" not in dumped, name
        assert "_AIRFLOW_WWW_USER" not in dumped, name  # the image entrypoint's user with a set password
        assert "users create" not in dumped, name
        assert str(env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false")).lower() == "false", name
        if "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" in env:
            users = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
            m = re.fullmatch(r"\$\{KASSEBRO_UI_USERS:-([^}]*)\}", users)
            assert m, users  # the operator names the users
            assert all(user.split(":")[0] != "admin" for user in m.group(1).split(",")), users
            # passwords: generated by the API server, kept on the secrets volume, written by nobody else
            passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
            assert passwords.startswith(f"{SECRETS_DIR}/"), passwords
            assert Path(passwords).name not in json.dumps(svc.get("command")), name


def test_init_syncs_every_ledger_pool(compose: dict) -> None:
    from kassebro.airflow.dagfactory import build_vendor_dags
    from kassebro.airflow.pools import wanted_pools
    from kassebro.cli import build_parser
    from kassebro.config import load_vendors
    from kassebro.ledgers import registry

    init = compose["services"]["airflow-init"]
    script = init_script(compose)
    assert "pools set" not in script and "pools import" not in script  # no hard-coded pool
    lines = [line.strip() for line in script.splitlines()]
    (sync,) = [line for line in lines if line.startswith("kassebro pools sync")]
    assert lines.index("airflow db migrate") < lines.index(sync)
    assert "set -e" in script.split("airflow db migrate")[0]  # a failed step fails the init
    args = shlex.split(sync.replace("${KASSEBRO_CONFIG}", init["environment"]["KASSEBRO_CONFIG"]))
    parsed = build_parser().parse_args(args[1:])
    assert (parsed.command, parsed.action) == ("pools", "sync")
    # the config it reads is the mounted ./config
    assert parsed.config == init["environment"]["KASSEBRO_CONFIG"] == volume_target(init, "./config")

    vendors = load_vendors(PROJECT / "config").vendors
    pools = wanted_pools(vendors)
    assert {system.pool() for system in registry.systems()} <= set(pools)
    assert {vendor.pool for vendor in vendors} <= set(pools)
    dags: dict = {}
    build_vendor_dags(dags, root=PROJECT / "config")
    used = {task.pool for dag in dags.values() for task in dag.tasks} - {"default_pool"}
    assert used and used <= set(pools), used - set(pools)


def test_init_script_is_valid_bash(compose: dict) -> None:
    raw = compose["services"]["airflow-init"]["command"][1]
    # compose interpolates a single `$`: the only one meant for it is the host's AIRFLOW_UID
    assert set(re.findall(r"(?<!\$)\$(?!\$)\{?\w+[^}\s\"]*\}?", raw)) == {"${AIRFLOW_UID:-50000}"}
    subprocess.run(["bash", "-n", "-c", init_script(compose)], check=True)
    assert compose["services"]["airflow-init"]["user"] == "0:0"  # to hand the volumes to AIRFLOW_UID


# --- .dockerignore -----------------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (PROJECT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's rule (Go's filepath.Match plus `**`), from the context root."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Whether the build context leaves `path` out (a left-out directory takes its contents)."""
    assert not any(p.startswith("!") for p in dockerignore_patterns())  # no exceptions to reason about
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_pattern_regex(p).fullmatch(prefix) for p in dockerignore_patterns() for prefix in prefixes)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".kassebro/config/vendors/x.yaml",
        ".git/HEAD",
        "__pycache__/x.pyc",
        "include/kassebro/__pycache__/cli.cpython-311.pyc",
        "tests/unit/x.pyc",
        ".pytest_cache/v/cache",
        "tests/.pytest_cache/v",
        ".ruff_cache/0.1/x",
        "node_modules/x/index.js",
        "docs/node_modules/x",
        "logs/scheduler/latest",
        "include/kassebro.egg-info/PKG-INFO",
        "kassebro.egg-info/PKG-INFO",
        ".bench/x",
        "build/lib/x.py",
        ".env",
    ],
)
def test_dockerignore_leaves_out_local_state(path: str) -> None:
    assert ignored(path), path


def test_dockerignore_covers_gitignore() -> None:
    """Whatever git keeps out as local state stays out of the image too."""
    for line in (PROJECT / ".gitignore").read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith(("#", "!")):
            continue
        sample = entry.strip("/").replace("*", "x")
        assert ignored(sample), entry
        if "/" not in entry.rstrip("/"):  # git applies it at any depth
            assert ignored(f"include/kassebro/{sample}"), entry


def test_dockerignore_keeps_what_the_image_needs() -> None:
    needed = ["pyproject.toml", "README.md", "requirements.txt", ".airflowignore"]  # README: pyproject's readme
    for top in ("include", "dags", "plugins", "config"):
        needed += [
            p.relative_to(PROJECT).as_posix()
            for p in (PROJECT / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
        ]
    assert len(needed) > 20
    assert [p for p in needed if ignored(p)] == []


def test_tasks_call_an_execution_api_apart_from_the_ui(compose: dict) -> None:
    """The UI's API server and the tasks' execution API are two services, as `make
    run-distributed` runs them: a night's start must not hold up the UI."""
    from urllib.parse import urlparse

    services = compose["services"]
    url = services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    host = urlparse(url).hostname
    assert services[host]["command"].split() == ["api-server", "--apps", "execution"]
    assert services["airflow-apiserver"]["command"].split() == ["api-server", "--apps", "core"]
    assert "ports" not in services[host]  # only the UI is published
