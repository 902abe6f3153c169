"""All five ledger sandboxes in one process, and the Airflow connections that reach them.

`make run` and `make demo` post the demo vendors to Tripletex, Fiken, PowerOffice Go, Xledger
and Duett; one process with five servers (one thread each) costs less than five processes and
gives one log. Each keeps its books in `<state_dir>/<system>.json` across restarts.

Run it: `python -m kassebro.sandbox.demo --port tripletex=8900 --port fiken=8901 ... --state-dir DIR`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

SYSTEMS = ("tripletex", "fiken", "poweroffice", "xledger", "duett")
DEFAULT_PORTS = {system: 8900 + i for i, system in enumerate(SYSTEMS)}


def create_app(system: str, state_path: str | Path | None = None) -> Any:
    """The system's sandbox app with its demo credentials."""
    if system == "tripletex":
        from kassebro.sandbox.tripletex import create_app as tripletex

        return tripletex(state_path=state_path)
    if system == "fiken":
        from kassebro.sandbox.fiken import create_app as fiken

        return fiken(state_path=state_path)
    if system == "poweroffice":
        from kassebro.sandbox.poweroffice import create_app as poweroffice

        return poweroffice(state_path=state_path)
    if system == "xledger":
        from kassebro.sandbox.xledger import create_app as xledger

        return xledger(state_path=state_path)
    if system == "duett":
        from kassebro.sandbox.duett import create_app as duett

        return duett(state_path=state_path)
    raise ValueError(f"no sandbox for {system!r}")


def connection(system: str, url: str, **overrides: Any) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) for a sandbox at `url`.

    `overrides` replace top-level fields or extras (a wrong password for a test, a timeout).
    """
    url = url.rstrip("/")
    if system == "tripletex":
        from kassebro.sandbox import tripletex as sb

        conn = {
            "conn_type": "tripletex",
            "host": f"{url}/v2",
            "password": sb.DEMO_EMPLOYEE_TOKEN,
            "extra": {"consumer_token": sb.DEMO_CONSUMER_TOKEN, "company_id": 0},
        }
    elif system == "fiken":
        from kassebro.sandbox import fiken as sb

        conn = {
            "conn_type": "fiken",
            "host": f"{url}{sb.API_PREFIX}",
            "login": sb.DEMO_CLIENT_ID,
            "password": sb.DEMO_CLIENT_SECRET,
            "extra": {"refresh_token": sb.DEMO_REFRESH_TOKEN, "token_url": f"{url}/oauth/token"},
        }
    elif system == "poweroffice":
        from kassebro.sandbox import poweroffice as sb

        conn = {
            "conn_type": "poweroffice",
            "host": f"{url}{sb.API_PREFIX}",
            "password": sb.DEMO_CLIENT_KEY,
            "extra": {
                "application_key": sb.DEMO_APPLICATION_KEY,
                "subscription_key": sb.DEMO_SUBSCRIPTION_KEY,
                "token_url": f"{url}{sb.TOKEN_PATH}",
            },
        }
    elif system == "xledger":
        from kassebro.sandbox import xledger as sb

        conn = {"conn_type": "xledger", "host": f"{url}{sb.GRAPHQL_PATH}", "password": sb.DEMO_TOKEN, "extra": {}}
    elif system == "duett":
        from kassebro.sandbox import duett as sb

        conn = {
            "conn_type": "duett",
            "host": url,
            "password": sb.DEMO_CLIENT_KEY,
            "extra": {"integration_key": sb.DEMO_INTEGRATION_KEY},
        }
    else:
        raise ValueError(f"no sandbox for {system!r}")
    extra = dict(conn["extra"])
    for key, value in overrides.items():
        if key in conn and key != "extra":
            conn[key] = value
        else:
            extra[key] = value
    conn["extra"] = extra
    return conn


def serve(ports: dict[str, int], state_dir: Path, host: str = "127.0.0.1") -> list[Any]:
    """Start the sandboxes of `ports` (system -> port; 0 picks one) and return the servers."""
    from kassebro.sandbox.server import SandboxServer

    state_dir.mkdir(parents=True, exist_ok=True)
    servers = []
    for system, port in ports.items():
        app = create_app(system, state_dir / f"{system}.json")
        servers.append(SandboxServer(app, host=host, port=port).start())
    return servers


def _port_arg(text: str) -> tuple[str, int]:
    system, _, port = text.partition("=")
    if system not in SYSTEMS or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected SYSTEM=PORT with SYSTEM one of {', '.join(SYSTEMS)}: {text!r}")
    return system, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the five ledger sandboxes in one process.")
    parser.add_argument("--port", type=_port_arg, action="append", help="SYSTEM=PORT (default 8900..8904)")
    parser.add_argument("--state-dir", type=Path, default=Path(".kassebro/sandbox"))
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--mail-port", type=int, help="also run the demo's mail server (kassebro.sandbox.mail)")
    parser.add_argument("--mail-dir", type=Path, default=Path(".kassebro/mail"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve every sandbox until SIGTERM or Ctrl-C; prints one JSON line of system -> URL."""
    args = build_parser().parse_args(argv)
    ports = dict(args.port) if args.port else dict(DEFAULT_PORTS)
    servers = serve(ports, args.state_dir, args.host)
    if args.mail_port:
        from kassebro.sandbox.mail import serve_mail

        servers.append(serve_mail(args.mail_dir, args.mail_port, args.host))

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    urls = {system: server.url for system, server in zip(ports, servers, strict=False)}
    if args.mail_port:
        urls["mail"] = f"smtp://{args.host}:{args.mail_port}"
    print(json.dumps(urls), flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
