"""Provider info: registers kassebro's connection types so the Airflow UI shows their forms.

Found through the `apache_airflow_provider` entry point in pyproject.toml; the distribution name
must equal `package-name`.
"""

from __future__ import annotations

from typing import Any

_SECRET = {"type": ["string", "null"], "format": "password"}
_ENVIRONMENT = {
    "label": "Environment",
    "description": "production or test picks the system's own API address when the host is left empty; "
    "sandbox (a local emulator) needs the host.",
    "schema": {"type": ["string", "null"], "enum": ["production", "test", "sandbox", None]},
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "kassebro",
        "name": "kassebro",
        "description": "Ledger connections for kassebro (POS sales to Norwegian accounting systems).",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": "tripletex",
                "hook-class-name": "kassebro.airflow.hooks.TripletexHook",
                "hook-name": "Tripletex",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "API base URL", "password": "Employee token"},
                    "placeholders": {
                        "host": "https://tripletex.no/v2 (production), https://api-test.tripletex.tech/v2 (test)",
                        "password": "the customer's employee token",
                    },
                },
                "conn-fields": {
                    "environment": _ENVIRONMENT,
                    "consumer_token": {
                        "label": "Consumer token",
                        "description": "The integration's consumer token (issued to kassebro by Tripletex).",
                        "schema": _SECRET,
                    },
                    "company_id": {
                        "label": "Company id",
                        "description": "0 for the employee's own company; a client's id for accounting firms.",
                        "schema": {"type": ["integer", "null"]},
                    },
                },
            },
            {
                "connection-type": "fiken",
                "hook-class-name": "kassebro.airflow.hooks.FikenHook",
                "hook-name": "Fiken",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "API base URL", "login": "OAuth client id", "password": "Client secret"},
                    "placeholders": {"host": "https://api.fiken.no/api/v2"},
                },
                "conn-fields": {
                    "environment": _ENVIRONMENT,
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "From the OAuth authorisation; kassebro keeps the rotated one in a Variable.",
                        "schema": _SECRET,
                    },
                    "token_url": {
                        "label": "Token URL",
                        "description": "Default https://fiken.no/oauth/token.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "connection-type": "poweroffice",
                "hook-class-name": "kassebro.airflow.hooks.PowerOfficeHook",
                "hook-name": "PowerOffice Go",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "API base URL", "password": "Client key"},
                    "placeholders": {"host": "https://goapi.poweroffice.net/v2 (or the demo environment)"},
                },
                "conn-fields": {
                    "environment": _ENVIRONMENT,
                    "application_key": {
                        "label": "Application key",
                        "description": "The integration's application key.",
                        "schema": _SECRET,
                    },
                    "subscription_key": {
                        "label": "Subscription key",
                        "description": "Ocp-Apim-Subscription-Key.",
                        "schema": _SECRET,
                    },
                    "token_url": {
                        "label": "Token URL",
                        "description": "Default: <API root>/OAuth/Token.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "connection-type": "xledger",
                "hook-class-name": "kassebro.airflow.hooks.XledgerHook",
                "hook-name": "Xledger",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "GraphQL URL", "password": "API token"},
                    "placeholders": {
                        "host": "https://www.xledger.net/graphql (demo: https://demo.xledger.net/graphql)"
                    },
                },
                "conn-fields": {"environment": _ENVIRONMENT},
            },
            {
                "connection-type": "duett",
                "hook-class-name": "kassebro.airflow.hooks.DuettHook",
                "hook-name": "Duett",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "API base URL", "password": "Client key"},
                    "placeholders": {"host": "https://api.duett.no"},
                },
                "conn-fields": {
                    "environment": _ENVIRONMENT,
                    "integration_key": {
                        "label": "Integration key",
                        "description": "The integration's key (X-Api-Integration-Key).",
                        "schema": _SECRET,
                    },
                },
            },
        ],
    }
