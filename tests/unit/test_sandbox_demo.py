"""`python -m kassebro.demo.sandboxes`: the five sandboxes `make run` starts, in one process, each
answering its demo connection, with books kept across a restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kassebro.demo.sandboxes import connection
from kassebro.ledgers.registry import names

SYSTEMS = names()


def start(state: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    args = [f"--port={system}=0" for system in SYSTEMS]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassebro.demo.sandboxes", *args, "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()  # one JSON line: system -> URL, once all five listen
    return proc, json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


@pytest.mark.slow
def test_five_sandboxes_answer_their_demo_connections_and_keep_their_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> None:
    from airflow.models.variable import Variable

    from kassebro.airflow.hooks import FikenHook, ledger_for
    from kassebro.sandbox.fiken import DEMO_REFRESH_TOKEN

    Variable.delete(FikenHook.token_variable(DEMO_REFRESH_TOKEN))
    proc, urls = start(tmp_path)
    try:
        assert sorted(urls) == sorted(SYSTEMS)
        words = {}
        for system, url in urls.items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{system.upper()}_SANDBOX_DEMO", json.dumps(connection(system, url)))
            client = ledger_for(system, f"{system}_sandbox_demo", "demo-kiosk-as" if system == "fiken" else None)
            words[system] = client.test_connection()
        assert words["tripletex"] == "Connection ok"
        assert words["fiken"] == "Connected to Fiken as Demo Kiosk AS"
        assert all(words.values())
    finally:
        stop(proc)
    assert (tmp_path / "fiken.json").exists()  # Fiken rotated the refresh token and kept it
    again, urls = start(tmp_path)  # a restart reads it back: the rotated token kassebro kept still works
    try:
        monkeypatch.setenv("AIRFLOW_CONN_FIKEN_SANDBOX_DEMO", json.dumps(connection("fiken", urls["fiken"])))
        assert ledger_for("fiken", "fiken_sandbox_demo", "demo-kiosk-as").test_connection().startswith("Connected")
    finally:
        stop(again)
