"""The vendored API specs are there, unaltered, and each is accounted for in ORIGIN.md."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

# One row of ORIGIN.md's table: | `file` | `copied from` | `sha256` | origin |
ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| `(?P<source>[^`]+)` \| `(?P<sha256>[0-9a-f]{64})` \|", re.M)


def origin_rows(spec_dir: Path) -> dict[str, str]:
    text = (spec_dir / "ORIGIN.md").read_text(encoding="utf-8")
    return {m["file"]: m["sha256"] for m in ROW.finditer(text)}


def test_origin_lists_every_vendored_file_and_no_other(spec_dir: Path) -> None:
    on_disk = {p.relative_to(spec_dir).as_posix() for p in spec_dir.rglob("*") if p.is_file() and p.name != "ORIGIN.md"}
    assert set(origin_rows(spec_dir)) == on_disk


def test_origin_names_the_date_copied(spec_dir: Path) -> None:
    assert "2026-12-03" in (spec_dir / "ORIGIN.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name",
    [
        "tripletex/openapi.json",
        "fiken/openapi.yaml",
        "poweroffice/derived/openapi-merged-stianwe.yaml",
        "poweroffice/auth-demo.openapi.json",
    ],
)
def test_the_specs_the_tests_read_are_vendored_byte_for_byte(spec_dir: Path, name: str) -> None:
    rows = origin_rows(spec_dir)
    assert name in rows, f"{name} is not in ORIGIN.md"
    path = spec_dir / name
    assert path.is_file(), f"vendored spec missing: {path}"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rows[name], f"{name} differs from the copy ORIGIN.md names"
