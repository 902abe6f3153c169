"""kassebro's Airflow plugin: the posting journal as a page in the UI (Browse -> kassebro journal)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kassebro.airflow.journal_view import create_app


class KassebroPlugin(AirflowPlugin):
    name = "kassebro"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/kassebro", "name": "kassebro journal"}]
    external_views = [
        {
            "name": "kassebro journal",
            "href": "kassebro/journal",
            "destination": "nav",
            "category": "browse",
            "url_route": "kassebro_journal",
        }
    ]
