"""`pip install adstream` without extras runs every command except `infra`.

The base install lacks the `infra` extra (the CDK libraries) and the `dev` extra
(httpx, uvicorn, ...). The subprocess tests make those modules unimportable
(`sys.modules[name] = None`, which `import` and `find_spec` both honour) before importing
adstream; the static tests check every import statement, deferred ones included, against
the dependencies pyproject.toml declares.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "adstream"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

INFRA_EXTRA = ("aws_cdk", "constructs", "cdk_nag", "jsii")
DEV_ONLY = ("httpx", "uvicorn", "playwright", "schemathesis", "pytest", "cfnlint")
WAREHOUSE_EXTRA = ("pyiceberg", "duckdb", "pyarrow")
WAREHOUSE_EXTRA_MODULES = ("table.py", "query.py")
"""Modules of `adstream.warehouse` that need the `warehouse` extra (imported lazily)."""

# Imports the CLI's modules and runs `adstream ARGS...` as if those modules were absent.
WITHOUT_EXTRAS = f"""
import pkgutil, sys
for name in {INFRA_EXTRA + DEV_ONLY + WAREHOUSE_EXTRA!r}:
    sys.modules[name] = None
import adstream
EXTRA_ONLY = ("adstream.warehouse.table", "adstream.warehouse.query")
for module in pkgutil.walk_packages(adstream.__path__, "adstream."):
    if module.name in EXTRA_ONLY:
        continue
    if not module.name.startswith("adstream.infra.") or module.name == "adstream.infra.cli":
        __import__(module.name)
sys.argv = ["adstream", *sys.argv[1:]]
from adstream.cli import main
main()
"""


def run_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("kafka", "--help"),
        ("kafka", "plan", "--help"),
        ("serve", "--help"),
        ("aggregate", "--help"),
        ("keys", "create", "--help"),
        ("sign", "--help"),
        ("connect", "--help"),
        ("warehouse", "query", "--help"),
    ],
    ids=" ".join,
)
def test_base_install_runs_the_non_infra_commands(args: tuple[str, ...]) -> None:
    result = run_without_extras(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_infra_without_the_extra_names_it() -> None:
    result = run_without_extras("infra", "synth", "--profile", "dev")
    assert result.returncode == 2, result.stderr
    assert "pip install 'adstream[infra]'" in result.stderr
    assert "missing: aws_cdk, constructs, cdk_nag" in result.stderr
    assert "Traceback" not in result.stderr


def test_warehouse_query_without_the_extra_names_it(tmp_path: Path) -> None:
    result = run_without_extras("warehouse", "query", "--dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "pip install 'adstream[warehouse]'" in result.stderr
    assert "Traceback" not in result.stderr


def _normalize(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return _normalize(match.group())


def _imports(path: Path) -> Iterator[str]:
    """Top-level names of every absolute import in `path`, at any depth of the module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def _distributions_of(module: str) -> set[str]:
    return {_normalize(d) for d in packages_distributions().get(module, [])}


def _base_modules() -> set[Path]:
    """Modules the base install runs: all but the CDK app (its CLI and marker package stay)
    and the warehouse's pyiceberg/DuckDB modules (its CLI and layout stay)."""
    infra, warehouse = SRC / "infra", SRC / "warehouse"
    return {
        path
        for path in SRC.rglob("*.py")
        if (path.parent != infra or path.name in {"__init__.py", "cli.py"})
        and (path.parent != warehouse or path.name not in WAREHOUSE_EXTRA_MODULES)
    }


BASE = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}


def test_base_modules_import_only_base_dependencies() -> None:
    """Deferred imports too: a `serve` that imports uvicorn at request time fails as well."""
    undeclared = {}
    for path in sorted(_base_modules()):
        for module in set(_imports(path)):
            if module in sys.stdlib_module_names or module == "adstream":
                continue
            if not _distributions_of(module) & BASE:
                undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert undeclared == {}


def test_every_base_dependency_is_used() -> None:
    """A dependency nobody imports (structlog once) is dead weight on every install."""
    imported = set().union(*(_imports(p) for p in SRC.rglob("*.py")))
    used = set().union(*(_distributions_of(m) for m in imported))
    # granian[uvloop]: the extra provides uvloop, which Granian loads by name (Loops.uvloop).
    assert BASE - used == set()
