"""Hooks that turn an Airflow connection into a ledger client, one per system of the registry.

Built on the HTTP provider's HttpHook through its public API: `get_connection` (which HttpHook's
`get_conn` reads) gives it a view of the connection without our credentials, so HttpHook
configures the session (proxies, TLS, the `timeout` extra) and never sends a secret extra as an
HTTP header or the password as Basic auth; the client takes the credentials from the full
connection. The API logic lives in `kassebro.ledgers` and runs without Airflow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any, ClassVar

from airflow.providers.http.hooks.http import HttpHook

from kassebro.ledgers import registry
from kassebro.ledgers.registry import ConnectionParts, LedgerSystem

DEFAULT_TIMEOUT = 30.0


class _SessionView:
    """What HttpHook reads of a connection to build its session: no login, password or own extras."""

    def __init__(self, connection: Any, system: LedgerSystem) -> None:
        extra = dict(_extras(connection))
        for key in (*system.own_extras, "environment"):
            extra.pop(key, None)
            extra.pop(f"extra__{system.name}__{key}", None)
        environment = _extra(connection, system, "environment") or ("sandbox" if connection.host else "production")
        base_url, _ = system.urls(environment, connection.host)
        self.conn_id = connection.conn_id
        self.conn_type = connection.conn_type
        self.host = base_url
        self.schema = connection.schema if connection.host else None
        self.port = connection.port if connection.host else None
        self.login = self.password = None
        self.extra_dejson = extra
        self.extra = json.dumps(extra) if extra else ""


class LedgerHook(HttpHook):
    """A connection to one ledger system; `get_client(**options)` gives its Ledger client.

    Options: `company` (the vendor's ledger company), `client_org_number` (an accounting firm's
    client), `careful` (see `ledger_for`).
    """

    system: ClassVar[LedgerSystem]
    conn_name_attr = "conn_id"
    default_conn_name = ""

    def __init__(
        self,
        conn_id: str | None = None,
        company: str | None = None,
        client_org_number: str | None = None,
        **kwargs: Any,
    ) -> None:
        conn_id = conn_id or kwargs.pop(self.conn_name_attr, None) or self.default_conn_name
        super().__init__(method="GET", http_conn_id=conn_id, **kwargs)
        setattr(self, self.conn_name_attr, conn_id)
        self.company = company
        self.client_org_number = "".join(ch for ch in client_org_number if ch.isdigit()) if client_org_number else None
        self.token_url: str | None = None

    @classmethod
    def credentials(cls, conn_id: str) -> Any:
        """The whole connection: in a task through the Task SDK; elsewhere (the CLI, `make bench`,
        the UI's Test button) from the secrets backends including Airflow's metadata DB."""
        if _in_task():
            return HttpHook.get_connection(conn_id)
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """What HttpHook builds its session from: the connection without credentials, the host
        resolved from the `environment` extra when empty."""
        return _SessionView(cls.credentials(conn_id), cls.system)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        session = super().get_conn(headers, extra_options)
        connection = self.credentials(self.http_conn_id)
        environment = _extra(connection, self.system, "environment") or ("sandbox" if connection.host else "production")
        self.token_url = self.system.urls(environment, connection.host)[1]
        return session

    def lookup_cache(self, company: str | None = None) -> Any:
        """Account and VAT ids shared by every task of a run (a file under the data directory)."""
        from kassebro.config import data_dir
        from kassebro.ledgers.cache import LookupCache, cache_path

        return LookupCache(cache_path(data_dir() / "cache", self.conn_type, self.http_conn_id, company))

    def connection_parts(self) -> ConnectionParts:
        connection = self.credentials(self.http_conn_id)
        session = self.get_conn()
        return ConnectionParts(
            base_url=self.base_url,
            token_url=self.token_url,
            login=connection.login or "",
            password=connection.password or "",
            extras={key: _extra(connection, self.system, key) for key in self.system.own_extras},
            session=session,
            timeout=float(self.merged_extra.get("timeout") or DEFAULT_TIMEOUT),
            cache=self.lookup_cache,
            conn_id=self.http_conn_id,
        )

    def get_client(self, careful: bool = True) -> Any:
        """The Ledger client for this connection."""
        return self.system.client_class.from_connection(
            self.connection_parts(), company=self.company, client_org_number=self.client_org_number, careful=careful
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            return True, self.get_client().test_connection()
        except Exception as exc:  # the UI shows the message; it never holds a secret
            return False, str(exc)


def hook_class(name: str) -> type[LedgerHook]:
    """The hook class of a registered system, made once per system."""
    system = registry.get(name)
    made = _HOOKS.get(name)
    if made is None or made.system is not system:
        made = _make_hook(system)
        _HOOKS[name] = made
    return made


def _make_hook(system: LedgerSystem, base: type[LedgerHook] = LedgerHook) -> type[LedgerHook]:
    class_name = system.hook_class_name.rpartition(".")[2]
    attrs = {
        "system": system,
        "conn_type": system.name,
        "hook_name": system.title,
        "conn_name_attr": f"{system.name}_conn_id",
        "default_conn_name": f"{system.name}_default",
        "__module__": __name__,
        "__doc__": f"A {system.title} connection (fields: kassebro.ledgers.registry).",
    }
    return type(class_name, (base,), attrs)


class FikenHook(LedgerHook):
    """A Fiken connection: host = API base URL, login = OAuth client id, password = client secret,
    extra `refresh_token` (secret), `token_url` (optional). The company is the vendor's `ledger.company`.

    Fiken rotates refresh tokens; the newest one is kept in the Airflow Variable
    `kassebro_fiken_refresh_token__<SHA-256 of the connection's token>` (encrypted, masked in logs) and read before the
    connection's own, so a rotation is never lost between runs. Tasks running at once rotate it
    one at a time, each from the newest (`FikenClient`'s `token_lock` and `token_source`).
    """

    system = registry.get("fiken")
    conn_type = "fiken"
    hook_name = "Fiken"
    conn_name_attr = "fiken_conn_id"
    default_conn_name = "fiken_default"

    @staticmethod
    def token_variable(seed: str) -> str:
        """The Variable holding the newest token rotated from the refresh token `seed`.

        Named after the seed's SHA-256, not the connection id: the UI's Test button runs the hook
        under a transient connection id, and must still find the rotated token of the same grant.
        """
        return f"kassebro_fiken_refresh_token__{_digest(seed)[:16]}"

    def _stored_refresh_token(self, seed: str) -> str | None:
        """The newest rotated token, if it descends from the connection's own token `seed`.

        Someone who authorizes the app again puts a fresh token in the connection; a rotation
        kept from the old one must not win over it, so the Variable records which token it
        descends from (as a SHA-256, never the token itself).
        """
        if _in_task():
            from airflow.sdk import Variable

            raw = Variable.get(self.token_variable(seed), default=None)
        else:
            from airflow.models.variable import Variable as DbVariable

            raw = DbVariable.get(self.token_variable(seed), default_var=None)
        if not raw:
            return None
        try:
            kept = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(kept, dict) or kept.get("seed") != _digest(seed):
            return None
        return kept.get("refresh_token") or None

    def _store_refresh_token(self, seed: str, token: str) -> None:
        """Keep the rotated token: through the Task SDK in a task, through the metadata DB elsewhere
        (the UI's Test button, the CLI). Losing it would lock kassebro out, so failure raises."""
        description = "Fiken refresh token, rotated by kassebro"
        value = json.dumps({"seed": _digest(seed), "refresh_token": token})
        if _in_task():
            from airflow.sdk import Variable

            Variable.set(self.token_variable(seed), value, description=description)
        else:
            from airflow.models.variable import Variable as DbVariable

            DbVariable.set(self.token_variable(seed), value, description=description)

    def connection_parts(self) -> ConnectionParts:
        parts = super().connection_parts()
        seed = str(parts.extras.get("refresh_token") or "")
        extras = {**parts.extras, "refresh_token": self._stored_refresh_token(seed) or seed}
        return replace(
            parts,
            extras=extras,
            keep=lambda token: self._store_refresh_token(seed, token),
            newest=lambda: self._stored_refresh_token(seed),
            grant=_digest(seed)[:16] if seed else "",
        )


_HOOKS: dict[str, type[LedgerHook]] = {"fiken": FikenHook}


def __getattr__(name: str) -> Any:
    """`TripletexHook`, `DuettHook`, ...: the hook of each registered system, by the class name
    the registry gives Airflow's connection types."""
    for system in registry.systems():
        if system.hook_class_name == f"{__name__}.{name}":
            return hook_class(system.name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _extras(connection: Any) -> dict[str, Any]:
    extra = connection.extra_dejson
    return extra if isinstance(extra, dict) else {}


def _extra(connection: Any, system: LedgerSystem, key: str, default: Any = None) -> Any:
    extra = _extras(connection)
    return extra.get(key) or extra.get(f"extra__{system.name}__{key}") or default


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _in_task() -> bool:
    """True inside a running task, where the Task SDK (not the ORM) must be used."""
    try:
        from airflow.sdk import get_current_context

        get_current_context()
        return True
    except Exception:
        return False


def ledger_for(
    system: str,
    conn_id: str,
    company: str | None = None,
    client_org_number: str | None = None,
    careful: bool = True,
) -> Any:
    """The ledger client for a vendor's system and connection id.

    `careful=False` (a day's first attempt in direct mode, `pipeline.careful_lookup`) lets a
    client skip duplicate-check places no earlier attempt can have written to.
    """
    hook = hook_class(system)(conn_id, company=company, client_org_number=client_org_number)
    return hook.get_client(careful=careful)
