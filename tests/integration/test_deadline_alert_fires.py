"""The deadline alert for real: Airflow's DAG processor writes it, the scheduler finds it missed,
the triggerer runs the callback, and the mail reaches a local SMTP server started here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_missed_deadline_mails_the_data_team(database: str, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    config = tmp_path / "config"
    (config / "vendors").mkdir(parents=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    vendor = yaml.safe_load((PROJECT / "config" / "vendors" / "cafe_solsiden.yaml").read_text(encoding="utf-8"))
    vendor["alert"] = {"post_by": "02:31", "to": ["night-watch@localhost"]}  # a minute after the 02:30 report
    (config / "vendors" / "cafe_solsiden.yaml").write_text(yaml.safe_dump(vendor, sort_keys=False), encoding="utf-8")

    mail_port = _port()
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=mail_port)
    smtp.start()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the run stays queued: it cannot finish in time
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": mail_port,
                "extra": {"disable_ssl": True, "disable_tls": True},
            }
        ),
        "KASSEBRO_CONFIG": str(config),
        "KASSEBRO_DATA": str(tmp_path / "data"),
        "KASSEBRO_JOURNAL_URL": database,
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    procs = []
    try:
        for component in ("dag-processor", "scheduler", "triggerer"):
            log = (tmp_path / f"{component}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [airflow, component], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        engine = sa.create_engine(database)
        deadline = time.monotonic() + 180
        while True:  # the DAG processor has written the DAG and its deadline alert
            with engine.connect() as conn:
                alerts = conn.execute(sa.text("SELECT count(*) FROM deadline_alert")).scalar()
            if alerts:
                break
            assert time.monotonic() < deadline, (tmp_path / "dag-processor.log").read_text()[-3000:]
            time.sleep(2)
        subprocess.run(
            [airflow, "dags", "trigger", "vendor_cafe_solsiden", "--conf", json.dumps({"dates": ["2026-11-02"]})],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 240  # the interval is one minute; then a scheduler loop and the triggerer
        while not inbox.messages:
            assert time.monotonic() < deadline, (tmp_path / "triggerer.log").read_text()[-3000:]
            time.sleep(2)
        engine.dispose()
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        smtp.stop()
    (mail,) = inbox.messages
    assert mail["To"] == "night-watch@localhost"
    assert "Café Solsiden (cafe_solsiden) not posted by 02:31" in mail["Subject"]
    assert "2026-11-02 not started" in mail["Subject"]
    assert "2026-11-02" in mail.get_body(("html",)).get_content()
