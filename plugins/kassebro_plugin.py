"""kassebro's Airflow plugin: the morning view, every vendor's days as a calendar grid, as a page in
the UI (Browse -> kassebro morning view), with its JSON at /kassebro/morning.json.

The app is built on its first request (`LazyApp`): every task process imports this file too."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kassebro.airflow.journal_view import URL_PREFIX, create_app
from kassebro.airflow.lazy_app import LazyApp


class KassebroPlugin(AirflowPlugin):
    name = "kassebro"
    fastapi_apps = [{"app": LazyApp(create_app), "url_prefix": URL_PREFIX, "name": "kassebro morning view"}]
    external_views = [
        {
            "name": "kassebro morning view",
            "href": "kassebro/morning",
            "destination": "nav",
            "category": "browse",
            "url_route": "kassebro_morning",
        }
    ]
