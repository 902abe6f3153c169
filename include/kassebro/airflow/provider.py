"""Provider info: registers kassebro's connection types so the Airflow UI shows their forms.

Found through the `apache_airflow_provider` entry point in pyproject.toml; the distribution name
must equal `package-name`. One connection type per system of the ledger registry.
"""

from __future__ import annotations

from typing import Any

from kassebro.ledgers import registry


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "kassebro",
        "name": "kassebro",
        "description": "Ledger connections for kassebro (POS sales to Norwegian accounting systems).",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": system.name,
                "hook-class-name": system.hook_class_name,
                "hook-name": system.title,
                **system.form,
            }
            for system in registry.systems()
        ],
    }
