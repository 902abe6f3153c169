"""The Airflow pools that cap concurrent calls to each ledger, from the ledger registry.

One pool per system (`ledger_<system>`), and for systems that allow one request at a time per
company (Fiken) one more per company a vendor names. The launcher, docker-compose's start-up
(`kassebro pools sync`) and the tests all use `wanted_pools`, so no system's tasks can wait on a
pool nobody made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kassebro.ledgers import registry


def wanted_pools(vendors: Iterable[Any] = ()) -> dict[str, tuple[int, str]]:
    """pool name -> (slots, description) for every registered system and the vendors' companies."""
    pools = {system.pool(): (system.pool_slots, f"Concurrent calls to {system.title}") for system in registry.systems()}
    for vendor in vendors:
        system = registry.get(vendor.ledger.system)
        pools.setdefault(
            vendor.pool, (system.pool_slots, f"Concurrent calls to {system.title} for {vendor.ledger.company}")
        )
    return dict(sorted(pools.items()))


def sync_pools(vendors: Iterable[Any] = ()) -> dict[str, tuple[int, str]]:
    """Create or update the pools in Airflow's metadata DB; returns what it set."""
    from airflow.models.pool import Pool

    pools = wanted_pools(vendors)
    for name, (slots, description) in pools.items():
        Pool.create_or_update_pool(name, slots, description, include_deferred=False)
    return pools
