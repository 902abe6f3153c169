"""The deadline alert's mail: sent through Airflow's SMTP notifier to a real local SMTP server,
naming the vendor, the run's days and each day's state."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from kassebro.config import load_vendor
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal

from ..e2e.conftest import DAYS, make_home


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch):
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "kassebro@localhost"},
            }
        ),
    )
    yield handler
    controller.stop()


def test_a_night_not_posted_mails_the_vendor_the_days_and_their_states(
    inbox: _Inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kassebro.airflow.alerts import night_not_posted

    root = make_home(tmp_path)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(root / "data"))
    vendor, journal = load_vendor("cafe_solsiden"), Journal()
    pipeline.prepare(vendor, DAYS[0], journal)  # built, not posted: the ledger was down all night
    late = DAYS[-1] + dt.timedelta(days=2)
    with pytest.raises(Exception, match="is the export running"):
        pipeline.prepare(vendor, late, journal)
    context = {
        "dag_run": {
            "dag_id": vendor.dag_id,
            "run_id": "scheduled__2026-11-07T01:30:00+00:00",
            "state": "running",
            "conf": {"dates": [DAYS[0].isoformat(), late.isoformat()]},
        },
        "deadline": {"id": "x", "deadline_time": "2026-11-07T07:00:00+00:00"},
    }
    asyncio.run(night_not_posted(vendor.id, context=context))
    ((to, mail),) = inbox.messages
    assert to == ["data-team@localhost"]
    subject = mail["Subject"]
    assert "Café Solsiden (cafe_solsiden) not posted by 08:00" in subject
    assert f"{DAYS[0]} built" in subject and f"{late} missing" in subject
    body = mail.get_body(("html",)).get_content()
    assert "is the export running?" in body and str(DAYS[0]) in body


def test_the_run_days_come_from_its_data_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.airflow.alerts import days_of_run

    root = make_home(tmp_path)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(root / "config"))
    vendor = load_vendor("cafe_solsiden")
    run = {"data_interval_start": "2026-11-03T01:30:00+00:00", "data_interval_end": "2026-11-04T01:30:00+00:00"}
    assert days_of_run(vendor, run) == [DAYS[1]]


def test_the_demo_mail_server_keeps_each_message_as_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `kassebro run` starts: the alert's notifier, through the demo's connection, to a file."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from kassebro.sandbox.mail import serve_mail, smtp_connection

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve_mail(tmp_path / "mail", port)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(port))
        notifier = SmtpNotifier(to="data-team@localhost", subject="kassebro: test", html_content="<p>hei</p>")
        asyncio.run(notifier.async_notify({}))
    finally:
        server.stop()
    (kept,) = (tmp_path / "mail").glob("*.eml")
    mail = message_from_bytes(kept.read_bytes(), policy=default)
    assert mail["Subject"] == "kassebro: test" and mail["From"] == "kassebro@localhost"
