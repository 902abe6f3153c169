"""Every registered ledger's sandbox and the demo webshops in one process, and the Airflow
connections that reach them.

`make run` and `make demo` post the demo vendors to Tripletex, Fiken, PowerOffice Go, Xledger
and Duett; one process with five servers (one thread each) costs less than five processes and
gives one log. Each keeps its books in `<state_dir>/<system>.json` across restarts.

Run it: `python -m kassebro.demo.sandboxes --port tripletex=8900 --port fiken=8901 ... --state-dir DIR`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

SHOPS = {"woocommerce": "kassebro.sandbox.woocommerce", "mystore": "kassebro.sandbox.mystore"}
"""The demo webshops' emulators by shop kind (config/webshops); their orders end today."""


def _shop_module(kind: str) -> Any:
    import importlib

    return importlib.import_module(SHOPS[kind])


def default_ports() -> dict[str, int]:
    """Each registered system's sandbox port (`LedgerSystem.sandbox_port`), then each demo shop's."""
    from kassebro.ledgers import registry

    ports = {system.name: system.sandbox_port for system in registry.systems()}
    return ports | {kind: _shop_module(kind).DEFAULT_PORT for kind in SHOPS}


def create_app(system: str, state_path: str | Path | None = None) -> Any:
    """The system's (or demo shop's) sandbox app with its demo credentials. A shop starts from its
    demo orders each time (it keeps no state)."""
    from kassebro.ledgers import registry

    if system in SHOPS:
        return _shop_module(system).create_app()
    return registry.get(system).sandbox_module.create_app(state_path=state_path)


def shop_connection(kind: str, url: str) -> dict[str, Any]:
    """The Airflow connection to a demo shop at `url`: host = the shop, login/password = WooCommerce's
    consumer key and secret, or Mystore's token as the password."""
    module = _shop_module(kind)
    if kind == "woocommerce":
        login, password = module.DEMO_CONSUMER_KEY, module.DEMO_CONSUMER_SECRET
    else:
        login, password = "", module.DEMO_TOKEN
    return {"conn_type": "http", "host": url.rstrip("/"), "login": login, "password": password, "extra": {}}


def connection(system: str, url: str, **overrides: Any) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) for a sandbox at `url`.

    `overrides` replace top-level fields or extras (a wrong password for a test, a timeout).
    """
    from kassebro.ledgers import registry

    conn = registry.get(system).sandbox_module.demo_connection(url.rstrip("/"))
    extra = dict(conn["extra"])
    for key, value in overrides.items():
        if key in conn and key != "extra":
            conn[key] = value
        else:
            extra[key] = value
    conn["extra"] = extra
    return conn


def client(system: str, url: str, **options: Any) -> Any:
    """The system's client for its sandbox at `url`, built from the demo connection the way the
    hook builds one from an Airflow connection (`from_connection`: a connection with a host has no
    separate token URL), without Airflow; a system that needs a company gets the sandbox's demo one."""
    import requests

    from kassebro.ledgers import registry
    from kassebro.ledgers.cache import LookupCache
    from kassebro.ledgers.registry import ConnectionParts

    conn = connection(system, url)
    parts = ConnectionParts(
        base_url=conn["host"],
        token_url=None,
        login=conn.get("login") or "",
        password=conn.get("password") or "",
        extras=conn["extra"],
        session=requests.Session(),
        timeout=10,
        cache=lambda company: LookupCache(),
    )
    declared = registry.get(system)
    if declared.company_required:
        options.setdefault("company", declared.sandbox_module.DEMO_COMPANY.slug)
    return declared.client_class.from_connection(parts, **options)


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
    from kassebro.ledgers import registry

    system, _, port = text.partition("=")
    if system not in [*registry.names(), *SHOPS] or not port.isdigit():
        known = ", ".join([*registry.names(), *SHOPS])
        raise argparse.ArgumentTypeError(f"expected SYSTEM=PORT with SYSTEM one of {known}: {text!r}")
    return system, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run every ledger sandbox in one process.")
    parser.add_argument("--port", type=_port_arg, action="append", help="SYSTEM=PORT (default: the registry's)")
    parser.add_argument("--state-dir", type=Path, default=Path(".kassebro/sandbox"))
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--mail-port", type=int, help="also run the demo's mail server (kassebro.sandbox.mail)")
    parser.add_argument("--mail-dir", type=Path, default=Path(".kassebro/mail"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve every sandbox until SIGTERM or Ctrl-C; prints one JSON line of system -> URL."""
    args = build_parser().parse_args(argv)
    ports = dict(args.port) if args.port else default_ports()
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
