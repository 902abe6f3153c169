"""Hooks that turn an Airflow connection into a ledger client.

Built on the HTTP provider's HttpHook for its session settings (timeout, proxies, TLS) from the
connection; the API logic itself lives in `kassebro.ledgers` and runs without Airflow. Our own
secret extras are kept out of the session: HttpHook would otherwise send every unknown extra key
as an HTTP header.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from kassebro.ledgers.tripletex import TripletexClient


class _LedgerHook(HttpHook):
    """Shared by the ledger hooks: no Basic auth from login/password, our extras never sent as headers."""

    own_extras: tuple[str, ...] = ()
    token_url: str | None = None

    def __init__(self, conn_id: str, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=conn_id, **kwargs)

    def _extract_auth(self, connection: Any) -> None:
        return None

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """In a task, through the Task SDK; elsewhere (the CLI, `make bench`) from the secrets
        backends including Airflow's metadata DB, which the SDK does not read outside a task."""
        if _in_task():
            return super().get_connection(conn_id)
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)

    def _set_base_url(self, connection: Any) -> None:
        """The host when set; else the API URL of the connection's `environment` (production by default)."""
        from kassebro.ledgers.environments import urls_for

        environment = self._extra(connection, "environment") or ("sandbox" if connection.host else "production")
        if connection.host:
            super()._set_base_url(connection)
            return
        self.base_url, self.token_url = urls_for(self.conn_type, environment)
        self._base_url_initialized = True

    def _configure_session_from_extra(self, session: Any, connection: Any, extra_options: dict[str, Any]) -> Any:
        clean = connection.extra_dejson
        for key in (*self.own_extras, "environment", "timeout"):
            clean.pop(key, None)
            clean.pop(f"extra__{self.conn_type}__{key}", None)
        proxy = type("_Conn", (), {"extra_dejson": clean, "extra": clean, "host": connection.host})()
        return super()._configure_session_from_extra(session, proxy, extra_options)

    def _extra(self, connection: Any, key: str, default: Any = None) -> Any:
        extra = connection.extra_dejson
        return extra.get(key) or extra.get(f"extra__{self.conn_type}__{key}") or default

    def lookup_cache(self, company: str | None = None) -> Any:
        """Account and VAT ids shared by every task of a run (a file under the data directory)."""
        from kassebro.config import data_dir
        from kassebro.ledgers.cache import LookupCache, cache_path

        return LookupCache(cache_path(data_dir() / "cache", self.conn_type, self.http_conn_id, company))

    def test_connection(self) -> tuple[bool, str]:
        try:
            return True, self.get_client().test_connection()
        except Exception as exc:  # the UI shows the message; it never holds a secret
            return False, str(exc)


class TripletexHook(_LedgerHook):
    """A Tripletex connection: host = API base URL, password = employee token,
    extra `consumer_token` (secret) and `company_id`."""

    conn_name_attr = "tripletex_conn_id"
    default_conn_name = "tripletex_default"
    conn_type = "tripletex"
    hook_name = "Tripletex"
    own_extras = ("consumer_token", "company_id")

    def __init__(
        self, tripletex_conn_id: str = default_conn_name, client_org_number: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(tripletex_conn_id, **kwargs)
        self.tripletex_conn_id = tripletex_conn_id
        self.client_org_number = "".join(ch for ch in client_org_number if ch.isdigit()) if client_org_number else None

    def get_client(self) -> TripletexClient:
        """The client; with `client_org_number`, the connection is an accounting firm's posting
        for that client company."""
        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()
        company_id = 0 if self.client_org_number else int(self._extra(connection, "company_id", 0))
        return TripletexClient(
            self.base_url,
            self._extra(connection, "consumer_token", ""),
            connection.password or "",
            company_id=company_id,
            client_org_number=self.client_org_number,
            session=session,
            timeout=float(self.merged_extra.get("timeout", 30)),
            cache=self.lookup_cache(self.client_org_number or str(company_id or "") or None),
            read_back_after_post=False,
        )


class FikenHook(_LedgerHook):
    """A Fiken connection: host = API base URL, login = OAuth client id, password = client secret,
    extra `refresh_token` (secret), `token_url` (optional). The company is the vendor's `ledger.company`.

    Fiken rotates refresh tokens; the newest one is kept in the Airflow Variable
    `kassebro_fiken_refresh_token__<SHA-256 of the connection's token>` (encrypted, masked in logs) and read before the
    connection's own, so a rotation is never lost between runs.
    """

    conn_name_attr = "fiken_conn_id"
    default_conn_name = "fiken_default"
    conn_type = "fiken"
    hook_name = "Fiken"
    own_extras = ("refresh_token", "token_url")

    def __init__(self, fiken_conn_id: str = default_conn_name, company: str = "", **kwargs: Any) -> None:
        super().__init__(fiken_conn_id, **kwargs)
        self.company = company

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

    def get_client(self) -> Any:
        from kassebro.ledgers.fiken import FikenClient

        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()
        slug = self.company or self._extra(connection, "company_slug", "")
        seed = self._extra(connection, "refresh_token", "")
        return FikenClient(
            self.base_url,
            slug,
            client_id=connection.login or "",
            client_secret=connection.password or "",
            refresh_token=self._stored_refresh_token(seed) or seed,
            token_store=lambda token: self._store_refresh_token(seed, token),
            token_url=self._extra(connection, "token_url") or self.token_url,
            session=session,
            timeout=float(self.merged_extra.get("timeout", 30)),
            cache=self.lookup_cache(slug),
            read_back_after_post=False,
        )


class PowerOfficeHook(_LedgerHook):
    """A PowerOffice Go connection: host = API base URL, password = client key (the customer's),
    extras `application_key` and `subscription_key` (secrets) and `token_url`."""

    conn_name_attr = "poweroffice_conn_id"
    default_conn_name = "poweroffice_default"
    conn_type = "poweroffice"
    hook_name = "PowerOffice Go"
    own_extras = ("application_key", "subscription_key", "token_url")

    def __init__(self, poweroffice_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(poweroffice_conn_id, **kwargs)

    def get_client(self, search_drafts: bool = True) -> Any:
        from kassebro.ledgers.poweroffice import PowerOfficeClient

        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()
        root = self.base_url.rstrip("/").removesuffix("/v2")
        return PowerOfficeClient(
            self.base_url,
            self._extra(connection, "token_url") or self.token_url or f"{root}/OAuth/Token",
            application_key=self._extra(connection, "application_key", ""),
            client_key=connection.password or "",
            subscription_key=self._extra(connection, "subscription_key", ""),
            session=session,
            timeout=float(self.merged_extra.get("timeout", 30)),
            cache=self.lookup_cache(),
            read_back_after_post=False,
            search_drafts=search_drafts,
        )


class XledgerHook(_LedgerHook):
    """An Xledger connection: host = GraphQL URL (https://www.xledger.net/graphql), password = API token."""

    conn_name_attr = "xledger_conn_id"
    default_conn_name = "xledger_default"
    conn_type = "xledger"
    hook_name = "Xledger"

    def __init__(self, xledger_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(xledger_conn_id, **kwargs)

    def get_client(self) -> Any:
        from kassebro.ledgers.xledger import XledgerClient

        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()  # sets base_url
        return XledgerClient(
            self.base_url,
            connection.password or "",
            session=session,
            timeout=float(self.merged_extra.get("timeout", 30)),
            cache=self.lookup_cache(),
            read_back_after_post=False,
        )


class DuettHook(_LedgerHook):
    """A Duett connection: host = API base URL (https://api.duett.no), password = client key,
    extra `integration_key` (secret)."""

    conn_name_attr = "duett_conn_id"
    default_conn_name = "duett_default"
    conn_type = "duett"
    hook_name = "Duett"
    own_extras = ("integration_key",)

    def __init__(self, duett_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(duett_conn_id, **kwargs)

    def get_client(self) -> Any:
        from kassebro.ledgers.duett import DuettClient

        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()  # sets base_url
        return DuettClient(
            self.base_url,
            integration_key=self._extra(connection, "integration_key", ""),
            client_key=connection.password or "",
            session=session,
            timeout=float(self.merged_extra.get("timeout", 30)),
            cache=self.lookup_cache(),
            read_back_after_post=False,
        )


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
    if system == "poweroffice":
        return PowerOfficeHook(conn_id).get_client(search_drafts=careful)
    if system == "fiken":
        return FikenHook(conn_id, company=company or "").get_client()
    if system == "tripletex":
        return TripletexHook(conn_id, client_org_number=client_org_number).get_client()
    hooks = {"tripletex": TripletexHook, "xledger": XledgerHook, "duett": DuettHook}
    if system not in hooks:
        raise ValueError(f"unsupported ledger system {system!r}")
    return hooks[system](conn_id).get_client()
