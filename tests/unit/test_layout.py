"""The package's layout follows the data, and imports only go one way (docs/architecture.md).

Each subpackage of `kassebro` may import from the stages before it and from the shared core,
never from a stage after it; the sandboxes import nothing of kassebro (they must be able to
disagree with us); Airflow is imported only by the Airflow adapters and the programs on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "kassebro"

ORDER = ("core", "config", "sources", "checks", "booking", "ledgers", "posting", "readback", "airflow", "demo", "cli")
"""The data's way through the package; a stage may import every stage before it."""

EXCEPTIONS = {
    ("config", "ledgers.registry"): "the config check reads what each ledger can do; the registry is a "
    "table of declarations that imports nothing of kassebro",
}
SANDBOX = "sandbox"
AIRFLOW_ALLOWED = {"airflow", "demo", "cli"}
AIRFLOW_EXCEPTIONS = {
    "sources/__init__.py": "a POS database's password lives in an Airflow connection (read lazily, in tasks)",
    "core/workfiles.py": "work files go through Airflow's ObjectStoragePath (credentials from a connection), lazily",
}


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _stage(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_belongs_to_a_stage() -> None:
    stray = [str(p.relative_to(PACKAGE)) for p in _modules() if _stage(p) not in (*ORDER, SANDBOX)]
    assert stray == [], f"modules outside the layout's stages: {stray}"


def test_imports_go_one_way() -> None:
    wrong = []
    for path in _modules():
        stage = _stage(path)
        for name, line in _imports(path):
            if not name.startswith("kassebro."):
                continue
            target = name.split(".")[1]
            if target == stage:
                continue
            where = f"{path.relative_to(PACKAGE)}:{line} imports {name}"
            if target == SANDBOX and stage in ("demo", "cli"):
                continue  # the demo runs the sandboxes; `kassebro sandbox` starts one
            if stage == SANDBOX or target == SANDBOX:
                wrong.append(where)
                continue
            if any(stage == a and name.startswith(f"kassebro.{b}") for a, b in EXCEPTIONS):
                continue
            if target not in ORDER or ORDER.index(target) > ORDER.index(stage):
                wrong.append(where)
    assert wrong == [], "imports against the flow (docs/architecture.md):\n" + "\n".join(wrong)


def test_airflow_is_imported_only_by_its_adapters_and_the_programs() -> None:
    wrong = []
    for path in _modules():
        rel = str(path.relative_to(PACKAGE))
        if _stage(path) in AIRFLOW_ALLOWED or rel in AIRFLOW_EXCEPTIONS:
            continue
        wrong += [f"{rel}:{line} imports {name}" for name, line in _imports(path) if name.split(".")[0] == "airflow"]
    assert wrong == [], "\n".join(wrong)


def test_the_rule_catches_an_import_against_the_flow(tmp_path: Path, monkeypatch) -> None:
    """The check itself can fail: a core module importing posting is reported."""
    fake = tmp_path / "kassebro"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from kassebro.posting.journal import Journal\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    try:
        test_imports_go_one_way()
    except AssertionError as exc:
        assert "core/bad.py:1 imports kassebro.posting.journal" in str(exc)
    else:
        raise AssertionError("an import against the flow went unnoticed")


def test_no_module_name_beside_its_plural() -> None:
    """`voucher.py` beside `vouchers.py` said nothing about which holds what."""
    names = {p.relative_to(PACKAGE).with_suffix("").as_posix() for p in _modules()}
    twins = sorted(n for n in names if f"{n}s" in names)
    assert twins == []
