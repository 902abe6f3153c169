"""Every accounting system kassebro posts to, declared once.

The config check, the CLI's choices, the Airflow connection types and hooks, the pools, the demo,
the launcher and docker-compose's start-up all read this table; a new system is one entry here,
one client module in `kassebro.ledgers`, one sandbox in `kassebro.sandbox`. Modules are named by
dotted path and imported when used, so reading the table stays cheap (DAG files read it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ENVIRONMENT_NAMES: tuple[str, ...] = ("production", "test", "sandbox")

_SECRET = {"type": ["string", "null"], "format": "password"}
_TEXT = {"type": ["string", "null"]}


@dataclass(frozen=True)
class ConnectionParts:
    """What a client needs from an Airflow connection, without Airflow: built by the hook.

    Attributes:
      base_url: the API root (the connection's host, else its environment's address).
      token_url: the environment's token endpoint, when the system has one and the host is not set.
      login, password: the connection's fields (what they hold is the system's: see `form`).
      extras: the connection's extra fields named in the system's `form`, secrets included.
      session: a requests.Session from HttpHook (proxies, TLS settings).
      timeout: seconds per request, the connection's `timeout` extra (30 by default).
      cache: `cache(company)` gives the run's lookup cache for a company (None: the connection's).
      keep: `keep(value)` keeps a credential the system rotated (Fiken's refresh token), or None.
      conn_id: the connection's id, for errors that name a wrong field of it.
      newest: reads the newest kept rotation again (another task may have rotated it since the
        connection was read), or None.
      grant: names the rotated credential's grant without revealing it (a digest), for the lock
        that lets one process at a time rotate it; "" when nothing rotates.
    """

    base_url: str
    token_url: str | None
    login: str
    password: str
    extras: Mapping[str, Any]
    session: Any
    timeout: float
    cache: Callable[[str | None], Any]
    keep: Callable[[str], None] | None = None
    conn_id: str = ""
    newest: Callable[[], str | None] | None = None
    grant: str = ""


@dataclass(frozen=True)
class LedgerSystem:
    """One accounting system.

    Attributes:
      name: the id in vendor files, connection types and pools ("tripletex").
      title: the name people know ("PowerOffice Go").
      client: "module:Class" of its Ledger client; the class has `from_connection(parts, **options)`.
      sandbox: the module of its local emulator (`create_app`, `demo_connection`, `DEFAULT_PORT`).
      environments: environment -> (API base URL, token URL or None); `sandbox` needs the host.
      form: the Airflow connection form: `ui-field-behaviour` and `conn-fields` as providers declare them.
      secret_extras: the extras that are credentials (never sent as headers, redacted).
      approval: can leave a voucher for someone to approve (`send_to_ledger: false`).
      dimensions: can carry a department and a project on a posting.
      own_reversal: reverses with its own call (else a counter-voucher is posted).
      firm_clients: one connection reaches an accounting firm's clients (`client_org_number`).
      company_required: a vendor must name its `ledger.company` (Fiken's slug).
      pool_per_company: one pool per company, not per system (Fiken: one request at a time).
      pool_slots: concurrent calls allowed per pool.
      payment_account: every POS payment must book to this account or its sub-accounts.
      customer_postings: a voucher line can carry the ledger's customer (credit sales on 1500).
      customer_subaccounts: each customer's account is a sub-account made with the customer
        (Fiken's `1500:NNNNN`), so the customer account itself is not in the chart.
      lease_seconds, visibility_seconds: defaults of the exactly-once claim (config.LedgerTarget).
      sandbox_port: the sandbox's port in the demo and `kassebro sandbox`.
    """

    name: str
    title: str
    client: str
    sandbox: str
    environments: Mapping[str, tuple[str, str | None]]
    form: Mapping[str, Any]
    sandbox_port: int
    secret_extras: tuple[str, ...] = ()
    approval: bool = True
    dimensions: bool = True
    own_reversal: bool = False
    firm_clients: bool = False
    company_required: bool = False
    pool_per_company: bool = False
    pool_slots: int = 4
    payment_account: str | None = None
    customer_postings: bool = False
    customer_subaccounts: bool = False
    lease_seconds: int = 120
    visibility_seconds: int = 60
    hook: str | None = None

    @property
    def client_class(self) -> Any:
        module, _, name = self.client.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def sandbox_module(self) -> Any:
        return importlib.import_module(self.sandbox)

    @property
    def hook_class_name(self) -> str:
        """Where Airflow finds the connection type's hook (`kassebro.airflow.hooks` makes it)."""
        return self.hook or f"kassebro.airflow.hooks.{self.title.replace(' ', '').removesuffix('Go')}Hook"

    @property
    def own_extras(self) -> tuple[str, ...]:
        """Every extra field of the form (kept out of HTTP headers)."""
        return tuple(k for k in self.form.get("conn-fields", {}) if k != "environment")

    def pool(self, company: str | None = None) -> str:
        """The Airflow pool capping concurrent calls (per company where the system needs it)."""
        return f"ledger_{self.name}_{company}" if self.pool_per_company and company else f"ledger_{self.name}"

    def urls(self, environment: str, host: str | None = None) -> tuple[str, str | None]:
        """(API base URL, token URL) for a connection: its own host wins, else the environment's.

        Raises ValueError naming what is missing: a sandbox has no fixed address.
        """
        if environment not in ENVIRONMENT_NAMES:
            raise ValueError(f"environment must be one of {', '.join(ENVIRONMENT_NAMES)}, not {environment!r}")
        if host:
            return host, None
        known = self.environments.get(environment)
        if known is None:
            raise ValueError(f"a {self.name} connection for the {environment} environment needs its host (the API URL)")
        return known


def _form(hidden: list[str], relabel: dict[str, str], placeholders: dict[str, str], **fields: Any) -> dict[str, Any]:
    environment = {
        "label": "Environment",
        "description": "production or test picks the system's own API address when the host is left empty; "
        "sandbox (a local emulator) needs the host.",
        "schema": {"type": ["string", "null"], "enum": [*ENVIRONMENT_NAMES, None]},
    }
    return {
        "ui-field-behaviour": {"hidden-fields": hidden, "relabeling": relabel, "placeholders": placeholders},
        "conn-fields": {"environment": environment, **fields},
    }


def _field(label: str, description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": dict(schema)}


_SYSTEMS: dict[str, LedgerSystem] = {}


def register(system: LedgerSystem) -> LedgerSystem:
    """Add a system (or replace one of the same name)."""
    _SYSTEMS[system.name] = system
    return system


def unregister(name: str) -> None:
    """Remove a system (tests that add a toy one)."""
    _SYSTEMS.pop(name, None)


def get(name: str) -> LedgerSystem:
    """The system called `name`; ValueError naming the known ones otherwise."""
    try:
        return _SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unsupported ledger system {name!r}; known: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    return tuple(_SYSTEMS)


def systems() -> Iterator[LedgerSystem]:
    return iter(tuple(_SYSTEMS.values()))


register(
    LedgerSystem(
        name="tripletex",
        title="Tripletex",
        client="kassebro.ledgers.tripletex:TripletexClient",
        sandbox="kassebro.sandbox.tripletex",
        sandbox_port=8900,
        environments={
            "production": ("https://tripletex.no/v2", None),
            "test": ("https://api-test.tripletex.tech/v2", None),
        },
        form=_form(
            ["schema", "port", "login", "extra"],
            {"host": "API base URL", "password": "Employee token"},
            {
                "host": "https://tripletex.no/v2 (production), https://api-test.tripletex.tech/v2 (test)",
                "password": "the customer's employee token",
            },
            consumer_token=_field(
                "Consumer token", "The integration's consumer token (issued to kassebro by Tripletex).", _SECRET
            ),
            company_id=_field(
                "Company id",
                "0 for the employee's own company; a client's id for accounting firms.",
                {"type": ["integer", "null"]},
            ),
        ),
        secret_extras=("consumer_token",),
        own_reversal=True,
        firm_clients=True,
        customer_postings=True,
        visibility_seconds=60,
    )
)
register(
    LedgerSystem(
        name="fiken",
        title="Fiken",
        client="kassebro.ledgers.fiken:FikenClient",
        sandbox="kassebro.sandbox.fiken",
        sandbox_port=8901,
        # Fiken has no test host: a free test company on the production API is the test environment
        environments={
            "production": ("https://api.fiken.no/api/v2", "https://fiken.no/oauth/token"),
            "test": ("https://api.fiken.no/api/v2", "https://fiken.no/oauth/token"),
        },
        form=_form(
            ["schema", "port", "extra"],
            {"host": "API base URL", "login": "OAuth client id", "password": "Client secret"},
            {"host": "https://api.fiken.no/api/v2"},
            refresh_token=_field(
                "Refresh token", "From the OAuth authorisation; kassebro keeps the rotated one in a Variable.", _SECRET
            ),
            token_url=_field("Token URL", "Default https://fiken.no/oauth/token.", _TEXT),
        ),
        secret_extras=("refresh_token",),
        dimensions=False,
        company_required=True,
        pool_per_company=True,
        pool_slots=4,  # requests go one at a time per company by a lock of their own (request_lock)
        payment_account="1901",
        customer_postings=True,
        customer_subaccounts=True,
        visibility_seconds=60,
    )
)
register(
    LedgerSystem(
        name="poweroffice",
        title="PowerOffice Go",
        client="kassebro.ledgers.poweroffice:PowerOfficeClient",
        sandbox="kassebro.sandbox.poweroffice",
        sandbox_port=8902,
        environments={
            "production": ("https://goapi.poweroffice.net/v2", "https://goapi.poweroffice.net/OAuth/Token"),
            "test": ("https://goapi.poweroffice.net/demo/v2", "https://goapi.poweroffice.net/Demo/OAuth/Token"),
        },
        form=_form(
            ["schema", "port", "login", "extra"],
            {"host": "API base URL", "password": "Client key"},
            {"host": "https://goapi.poweroffice.net/v2 (or the demo environment)"},
            application_key=_field("Application key", "The integration's application key.", _SECRET),
            subscription_key=_field("Subscription key", "Ocp-Apim-Subscription-Key.", _SECRET),
            token_url=_field("Token URL", "Default: <API root>/OAuth/Token.", _TEXT),
        ),
        secret_extras=("application_key", "subscription_key"),
        own_reversal=True,
        visibility_seconds=90,
        customer_postings=True,
    )
)
register(
    LedgerSystem(
        name="xledger",
        title="Xledger",
        client="kassebro.ledgers.xledger:XledgerClient",
        sandbox="kassebro.sandbox.xledger",
        sandbox_port=8903,
        environments={
            "production": ("https://www.xledger.net/graphql", None),
            "test": ("https://demo.xledger.net/graphql", None),
        },
        form=_form(
            ["schema", "port", "login", "extra"],
            {"host": "GraphQL URL", "password": "API token"},
            {"host": "https://www.xledger.net/graphql (demo: https://demo.xledger.net/graphql)"},
        ),
        # GL import items are posted by Xledger's own import; the API has no draft to approve
        approval=False,
        visibility_seconds=90,
    )
)
register(
    LedgerSystem(
        name="duett",
        title="Duett",
        client="kassebro.ledgers.duett:DuettClient",
        sandbox="kassebro.sandbox.duett",
        sandbox_port=8904,
        # Duett documents one host; its test clients live there too
        environments={
            "production": ("https://api.duett.no", None),
            "test": ("https://api.duett.no", None),
        },
        form=_form(
            ["schema", "port", "login", "extra"],
            {"host": "API base URL", "password": "Client key"},
            {"host": "https://api.duett.no"},
            integration_key=_field("Integration key", "The integration's key (X-Api-Integration-Key).", _SECRET),
            series_start=_field(
                "Voucher number series start",
                "First number of kassebro's series, agreed with the accountant (default 90000000).",
                {"type": ["integer", "null"]},
            ),
            series_size=_field(
                "Voucher number series size",
                "Numbers in the series, a multiple of 1000: one slot of 1000 per vendor (default 10000000).",
                {"type": ["integer", "null"]},
            ),
            vendor_slots=_field(
                "Vendor slots",
                'JSON object, vendor id -> slot, e.g. {"shop12": 0, "shop13": 1}: rules out two vendors '
                "hashing to one slot. Vendors not named get a hashed slot.",
                _TEXT,
            ),
        ),
        secret_extras=("integration_key",),
        approval=False,
        dimensions=False,
        visibility_seconds=90,
    )
)
