"""The demo's mail server: every message the deadline alerts send is kept as a file to read.

A local SMTP server (aiosmtpd) on 127.0.0.1, no TLS, no login; each message lands in
`<folder>/<n>.eml`. `kassebro run` points Airflow's `smtp_default` connection at it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any


class _Drop:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        start = 1 + max((int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit()), default=0)
        self.numbers = itertools.count(start)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        path = self.folder / f"{next(self.numbers)}.eml"
        path.write_bytes(envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode())
        return "250 OK: kept as " + path.name


def serve_mail(folder: Path, port: int, host: str = "127.0.0.1") -> Any:
    """Start the server (an aiosmtpd Controller, stopped with `.stop()`)."""
    from aiosmtpd.controller import Controller

    controller = Controller(_Drop(folder), hostname=host, port=port)
    controller.start()
    return controller


def smtp_connection(port: int, host: str = "127.0.0.1") -> str:
    """The Airflow connection (JSON, for AIRFLOW_CONN_SMTP_DEFAULT) that sends to this server."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": host,
            "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "kassebro@localhost"},
        }
    )
