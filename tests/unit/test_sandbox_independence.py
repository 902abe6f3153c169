"""The ledger sandboxes are independent of kassebro: no module of kassebro.sandbox imports a kassebro
module outside kassebro.sandbox (booking, money, VAT, vouchers, frames...). A sandbox that asked
kassebro how to compute an amount would always agree with it, and a disagreement with the real
system could never show.

Read with `ast`, not by importing: every `import`, `from ... import` (relative ones resolved
against the package) and `importlib.import_module`/`__import__` with a literal name, anywhere in
a module (also inside functions).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = "kassebro.sandbox"


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations, f"{PACKAGE} not found"
    return Path(next(iter(spec.submodule_search_locations)))


def module_name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, the module being `module`."""
    is_package = module == PACKAGE
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base_parts = parts if is_package else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "kassebro":  # `from kassebro import money` is kassebro.core.money; `... import sandbox` fine
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def outside_imports(source: str, module: str) -> list[str]:
    """The imports of kassebro modules outside kassebro.sandbox, as "line: name"."""
    bad = []
    for line, name in imported_modules(source, module):
        if name == "kassebro" or (name.startswith("kassebro.") and not _inside(name)):
            bad.append(f"{line}: {name}")
    return sorted(set(bad))


def _inside(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def sandbox_modules() -> list[Path]:
    return sorted(package_dir().rglob("*.py"))


def test_the_package_has_the_five_sandboxes():
    names = {module_name(p) for p in sandbox_modules()}
    assert {f"{PACKAGE}.{system}" for system in ("tripletex", "fiken", "poweroffice", "xledger", "duett")} <= names


@pytest.mark.parametrize("path", sandbox_modules(), ids=lambda p: p.name)
def test_no_sandbox_module_imports_kassebro_outside_the_sandbox_package(path: Path):
    bad = outside_imports(path.read_text(encoding="utf-8"), module_name(path))
    assert bad == [], f"{path.name} imports kassebro outside {PACKAGE}: {bad}"


@pytest.mark.parametrize(
    "source",
    [
        "from kassebro.core.money import vat_from_gross",
        "import kassebro.booking.voucher",
        "import kassebro",
        "from kassebro import money",
        "def f():\n    from kassebro.core.saft_codes import standard_vat_codes",
        "from .. import booking",
        "from ..frames import x",
        "import importlib\nimportlib.import_module('kassebro.booking.rules')",
        "__import__('kassebro.core.money')",
    ],
)
def test_the_check_sees_every_way_in(source: str):
    assert outside_imports(source, f"{PACKAGE}.tripletex")


@pytest.mark.parametrize(
    "source",
    [
        "from kassebro.sandbox.common import FaultInjector",
        "from kassebro.sandbox import amounts",
        "from kassebro import sandbox",
        "import kassebro.sandbox.server",
        "from . import amounts",
        "from .admin import SandboxApp",
        "from decimal import Decimal",
    ],
)
def test_the_check_lets_the_sandbox_package_and_the_standard_library_be(source: str):
    assert outside_imports(source, f"{PACKAGE}.tripletex") == []
