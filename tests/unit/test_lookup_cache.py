"""The run-wide lookup cache: shared through its file, merged by parallel writers, expiring."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kassebro.ledgers.cache import LookupCache, cache_path


def test_two_caches_on_one_file_share_and_merge(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "tripletex", "tx conn", "998877665")
    assert path.parent == tmp_path / "lookups" and " " not in path.name
    first, second = LookupCache(path), LookupCache(path)
    first.put("accounts", {"3000": 11})
    second.put("vat_types", {"3": 3})  # written after `first`: both tables survive
    third = LookupCache(path)
    assert third.get("accounts", "3000") == 11 and third.get("vat_types", "3") == 3
    assert third.table("accounts") == {"3000": 11}
    third.clear()
    assert not path.exists() and LookupCache(path).get("accounts", "3000") is None


def test_entries_expire(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache = LookupCache(path, ttl_seconds=0.2)
    cache.put("accounts", {"3000": 11})
    assert cache.get("accounts", "3000") == 11
    time.sleep(0.3)
    assert cache.get("accounts", "3000") is None  # in memory
    assert LookupCache(path, ttl_seconds=0.2).get("accounts", "3000") is None  # and from the file


def test_a_torn_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"saved_at": ')
    cache = LookupCache(path)
    assert cache.get("accounts", "3000") is None
    cache.put("accounts", {"3000": 11})
    assert json.loads(path.read_text())["tables"] == {"accounts": {"3000": 11}}


def test_memory_only_without_a_path() -> None:
    cache = LookupCache()
    cache.put("accounts", {"3000": 11})
    assert cache.get("accounts", "3000") == 11 and repr(cache) == "LookupCache(memory)"
