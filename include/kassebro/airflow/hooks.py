"""Hooks that turn an Airflow connection into a ledger client.

Built on the HTTP provider's HttpHook for its session settings (timeout, proxies, TLS) from the
connection; the API logic itself lives in `kassebro.ledgers` and runs without Airflow. Our own
secret extras are kept out of the session: HttpHook would otherwise send every unknown extra key
as an HTTP header.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from kassebro.ledgers.tripletex import TripletexClient

_OWN_EXTRAS = (
    "consumer_token",
    "company_id",
    "extra__tripletex__consumer_token",
    "extra__tripletex__company_id",
)


class TripletexHook(HttpHook):
    """A Tripletex connection: host = API base URL, password = employee token,
    extra `consumer_token` (secret) and `company_id`."""

    conn_name_attr = "tripletex_conn_id"
    default_conn_name = "tripletex_default"
    conn_type = "tripletex"
    hook_name = "Tripletex"

    def __init__(self, tripletex_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=tripletex_conn_id, **kwargs)
        self.tripletex_conn_id = tripletex_conn_id

    def _extract_auth(self, connection: Any) -> None:  # tokens go in a session token, not Basic auth
        return None

    def _configure_session_from_extra(self, session: Any, connection: Any, extra_options: dict[str, Any]) -> Any:
        clean = connection.extra_dejson
        for key in _OWN_EXTRAS:
            clean.pop(key, None)
        proxy = type("_Conn", (), {"extra_dejson": clean, "extra": clean, "host": connection.host})()
        return super()._configure_session_from_extra(session, proxy, extra_options)

    def get_client(self) -> TripletexClient:
        connection = self.get_connection(self.http_conn_id)
        session = self.get_conn()
        extra = connection.extra_dejson
        consumer = extra.get("consumer_token") or extra.get("extra__tripletex__consumer_token") or ""
        company = extra.get("company_id") or extra.get("extra__tripletex__company_id") or 0
        timeout = float(self.merged_extra.get("timeout", 30))
        return TripletexClient(
            self.base_url,
            consumer,
            connection.password or "",
            company_id=int(company),
            session=session,
            timeout=timeout,
        )

    def test_connection(self) -> tuple[bool, str]:
        """The Airflow UI's Test button: Tripletex's whoAmI, answered "Connection ok"."""
        try:
            return True, self.get_client().test_connection()
        except Exception as exc:  # the UI shows the message; it never holds a token
            return False, str(exc)


def ledger_for(system: str, conn_id: str) -> Any:
    """The ledger client for a vendor's system and connection id."""
    if system == "tripletex":
        return TripletexHook(conn_id).get_client()
    raise ValueError(f"unsupported ledger system {system!r}")
