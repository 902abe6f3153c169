"""Where each ledger's API lives, per environment, so a connection can name the environment
instead of a URL (brief apis.md). `sandbox` has no fixed address: the connection's host says it.
"""

from __future__ import annotations

from typing import Literal

Environment = Literal["production", "test", "sandbox"]
ENVIRONMENT_NAMES: tuple[str, ...] = ("production", "test", "sandbox")

# system -> environment -> (API base URL, token URL or None when the system has no token call)
URLS: dict[str, dict[str, tuple[str, str | None]]] = {
    "tripletex": {
        "production": ("https://tripletex.no/v2", None),
        "test": ("https://api-test.tripletex.tech/v2", None),
    },
    # Fiken has no test host: a free test company on the production API is the test environment
    "fiken": {
        "production": ("https://api.fiken.no/api/v2", "https://fiken.no/oauth/token"),
        "test": ("https://api.fiken.no/api/v2", "https://fiken.no/oauth/token"),
    },
    "poweroffice": {
        "production": ("https://goapi.poweroffice.net/v2", "https://goapi.poweroffice.net/OAuth/Token"),
        "test": ("https://goapi.poweroffice.net/demo/v2", "https://goapi.poweroffice.net/Demo/OAuth/Token"),
    },
    "xledger": {
        "production": ("https://www.xledger.net/graphql", None),
        "test": ("https://demo.xledger.net/graphql", None),
    },
    # Duett documents one host; its test clients live there too
    "duett": {
        "production": ("https://api.duett.no", None),
        "test": ("https://api.duett.no", None),
    },
}


def urls_for(system: str, environment: str, host: str | None = None) -> tuple[str, str | None]:
    """(API base URL, token URL) for a connection: its own host wins, else the environment's.

    Raises ValueError naming what is missing: a sandbox has no fixed address.
    """
    if environment not in ENVIRONMENT_NAMES:
        raise ValueError(f"environment must be one of {', '.join(ENVIRONMENT_NAMES)}, not {environment!r}")
    known = URLS.get(system, {}).get(environment)
    if host:
        return host, None
    if known is None:
        raise ValueError(f"a {system} connection for the {environment} environment needs its host (the API URL)")
    return known
