"""Read-back settings (`config/readback.yaml`, optional): the nightly reconciliation's window and
schedule, and which companies each ledger connection's read-back covers.

By default every ledger connection the vendors use gets one read-back DAG covering the companies
of its vendors. An accounting firm's connection may instead cover one client company (by
organisation number) or every client its key reaches (`clients: all`, or `%ORGNR%` as the seeds
write it: "each client's own number"), whether or not a vendor posts to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kassebro.core.errors import ConfigError
from kassebro.ledgers import registry

EVERY_CLIENT = ("all", "%ORGNR%")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionScope(_Strict):
    """What one connection's read-back covers.

    `clients`: None (default) for the companies its vendors post to; "all" or "%ORGNR%" for every
    client company an accounting firm's key reaches; or one organisation number.
    """

    clients: Annotated[str, Field(pattern=r"^(all|%ORGNR%|\d{3} ?\d{3} ?\d{3})$")] | None = None
    system: str | None = None
    """The ledger system, for a connection no vendor posts through (a firm read back only)."""
    org_number: str | None = Field(default=None, pattern=r"^\d{3} ?\d{3} ?\d{3}$")
    """The company the year-end export names, when the vendor files name several or none."""
    company_name: str | None = None
    """The company's name in the year-end export (a shop's `name` may not be the company's)."""

    @field_validator("system")
    @classmethod
    def _known_system(cls, name: str | None) -> str | None:
        if name is not None and name not in registry.names():
            raise ValueError(f"unknown ledger system {name!r}; known: {', '.join(registry.names())}")
        return name

    @model_validator(mode="after")
    def _firm_system(self) -> ConnectionScope:
        if self.clients and self.system and not registry.get(self.system).firm_clients:
            raise ValueError(f"clients: is for accounting firms' connections; {self.system} has none")
        return self

    @property
    def every_client(self) -> bool:
        return self.clients in EVERY_CLIENT

    @property
    def client(self) -> str | None:
        """The one client company `clients` names, if it names one."""
        return None if self.clients is None or self.every_client else self.clients.replace(" ", "")


class ReadBackSettings(_Strict):
    """The nightly read-back and reconciliation (one DAG per ledger connection)."""

    reconcile_days: int = Field(default=30, ge=1, le=400)
    """How many days back each night's reconciliation looks (yesterday included)."""
    schedule: str = "30 6 * * *"
    """When the read-back runs (cron, in `timezone`): after the night's posts and their alerts."""
    timezone: str = "Europe/Oslo"
    owner: str = "data-team"
    retries: int = Field(default=2, ge=0, le=10)
    contact: str | None = None
    """The year-end export's contact person, "First Last" (SAF-T requires one); without it the
    export task refuses, saying so."""
    telephone: str | None = None
    connections: dict[str, ConnectionScope] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from kassebro.config import known_zone

        return known_zone(name)

    def scope(self, connection: str) -> ConnectionScope:
        return self.connections.get(connection) or ConnectionScope()


def load_readback(root: Path) -> ReadBackSettings:
    """The settings in `<root>/readback.yaml`, or the defaults when there is no such file."""
    from kassebro.config import _issues_from, _read_yaml

    path = root / "readback.yaml"
    if not path.exists():
        return ReadBackSettings()
    try:
        return ReadBackSettings.model_validate(_read_yaml(path) or {})
    except ValidationError as exc:
        raise ConfigError(_issues_from(path, exc), headline=f"{path} is invalid") from exc
