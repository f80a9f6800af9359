"""Dependencies point one way: cli -> app -> routes -> services -> repository/hub -> models.

Nothing in the package imports `chat.routes` or `chat.app` except `chat.app` and the command
line (`chat.cli`, `__main__`). Only `chat.metrics` knows prometheus_client; the writer and the
broadcast layer report through small protocols of their own and never import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chat"

# module -> prefixes it must never import
FORBIDDEN = {
    "chat.models": ("chat.",),
    "chat.settings": ("chat.",),
    "chat.schemas": ("chat.repository", "chat.services", "chat.routes", "chat.app", "chat.db"),
    "chat.wire": ("chat.",),
    # The uvicorn protocol knows wire frames, nothing of the application.
    "chat.transport": ("chat.app", "chat.routes", "chat.services", "chat.broadcast", "chat.db"),
    "chat.rendering": ("chat.",),
    "chat.repository": (
        "chat.services",
        "chat.routes",
        "chat.app",
        "chat.broadcast",
        "chat.metrics",
    ),
    "chat.broadcast": (
        "chat.services",
        "chat.routes",
        "chat.app",
        "chat.repository",
        "chat.metrics",
    ),
    "chat.writer": ("chat.services", "chat.routes", "chat.app", "chat.broadcast", "chat.metrics"),
    "chat.services": ("chat.routes", "chat.app"),
    "chat.resources": ("chat.",),
    "chat.logs": ("chat.",),
    "chat.startup": ("chat.",),
    "chat.migrate": ("chat.routes", "chat.app", "chat.services", "chat.broadcast", "chat.cli"),
    # Metrics are a leaf: everything may record into them, they depend on nothing of ours.
    "chat.metrics": ("chat.",),
    "chat.requestmetrics": ("chat.services", "chat.routes", "chat.app", "chat.broadcast"),
}
# third-party package -> the only modules that may import it
CONFINED = {"prometheus_client": ("chat.metrics",)}
ONLY_ENTRY_POINTS_IMPORT = ("chat.routes", "chat.app", "chat.cli")
COMMAND_LINE = ("chat.cli", "chat.__main__")


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


ALL_IMPORTS = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}
MODULES = {
    module: {name for name in imported if name == "chat" or name.startswith("chat.")}
    for module, imported in ALL_IMPORTS.items()
}


def test_the_package_was_found() -> None:
    assert {"chat.app", "chat.services", "chat.repository", "chat.models"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_one_way(module: str) -> None:
    imported = MODULES[module]
    for owner, prefixes in FORBIDDEN.items():
        if module == owner or module.startswith(owner + "."):
            bad = sorted(name for name in imported if name.startswith(prefixes))
            assert not bad, f"{module} must not import {bad}"
    if not module.startswith(ONLY_ENTRY_POINTS_IMPORT + COMMAND_LINE):
        bad = sorted(name for name in imported if name.startswith(ONLY_ENTRY_POINTS_IMPORT))
        assert not bad, f"{module} must not import {bad}"


@pytest.mark.parametrize("package", sorted(CONFINED))
def test_third_party_packages_stay_confined(package: str) -> None:
    importers = sorted(
        module
        for module, imported in ALL_IMPORTS.items()
        if any(name == package or name.startswith(package + ".") for name in imported)
    )
    assert importers, f"nothing imports {package}: is the table out of date?"
    assert set(importers) <= set(CONFINED[package]), f"{package} imported by {importers}"
