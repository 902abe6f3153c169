"""Ledger lookups (account ids, VAT code ids, departments) shared by every task of a run.

Each Airflow task runs in its own process with its own client, so a per-client dict would look
the chart up again for every day. The cache keeps what a ledger told us in a small JSON file
(one per system, connection and company) for `ttl_seconds`, so the days of a run, and runs close
together, ask once. It holds ids and names only, never a credential. A client that gets a
validation error clears it, so a chart changed in the ledger is read afresh on the retry.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 3600.0


class LookupCache:
    """Named tables of lookups: `get(table, key)`, `put(table, {key: value})`.

    Without a path it lives in memory only (one client, tests). With a path, every `put` merges
    into the file atomically (write a temp file, rename), so parallel tasks can share it: at
    worst two of them fetch the same table once each.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.path = Path(path) if path else None
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, Any]] = {}
        self._saved_at = time.time()
        self._read()

    def __repr__(self) -> str:
        return f"LookupCache({str(self.path) if self.path else 'memory'})"

    def get(self, table: str, key: str) -> Any | None:
        """The cached value, or None when absent or expired."""
        with self._lock:
            self._expire()
            return self._tables.get(table, {}).get(key)

    def table(self, table: str) -> dict[str, Any]:
        """A copy of a whole table (empty when nothing is cached or it expired)."""
        with self._lock:
            self._expire()
            return dict(self._tables.get(table, {}))

    def _expire(self) -> None:
        if self._tables and time.time() - self._saved_at > self.ttl_seconds:
            self._tables = {}

    def put(self, table: str, values: Mapping[str, Any]) -> None:
        """Add values to a table, in memory and in the file."""
        if not values:
            return
        with self._lock:
            self._expire()
            self._tables.setdefault(table, {}).update(values)
            self._saved_at = time.time()
            self._write()

    def clear(self) -> None:
        """Forget everything (the ledger refused something: its chart may have changed)."""
        with self._lock:
            self._tables.clear()
            if self.path is not None:
                self.path.unlink(missing_ok=True)

    # ---- file --------------------------------------------------------------------------------

    def _read(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            saved_at = float(data["saved_at"])
            tables = data["tables"]
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a torn or foreign file: start afresh
            log.warning("ignoring the lookup cache %s: %s", self.path, exc)
            return
        if time.time() - saved_at > self.ttl_seconds:
            return
        self._saved_at = saved_at
        self._tables = {str(k): dict(v) for k, v in tables.items() if isinstance(v, dict)}

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        on_disk: dict[str, dict[str, Any]] = {}
        if self.path.exists():  # another task may have added tables since we read
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if time.time() - float(data["saved_at"]) <= self.ttl_seconds:
                    on_disk = data["tables"]
            except (OSError, ValueError, KeyError, TypeError):
                on_disk = {}
        merged = {name: {**on_disk.get(name, {}), **values} for name, values in self._tables.items()}
        merged.update({name: values for name, values in on_disk.items() if name not in merged})
        payload = json.dumps({"saved_at": time.time(), "tables": merged}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".lookups-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)


def cache_path(base: Path, system: str, conn_id: str, company: str | None = None) -> Path:
    """The cache file of one system, connection and company under `base`."""
    parts = [system, conn_id] + ([company] if company else [])
    name = "__".join(re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in parts)
    return base / "lookups" / f"{name}.json"
