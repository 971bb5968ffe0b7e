"""The import direction of DESIGN.md: cli/recipes -> methods -> models/losses/benchmarks/metrics
-> layers/data -> config/_registry. Nothing below imports recipes or cli, and the building
blocks (layers, data, metrics, config) never import methods or models."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "lowshot"

#: package part -> parts it must not import
FORBIDDEN = {
    "layers": ("cli", "recipes", "methods", "models", "benchmarks", "comm"),
    "data": ("cli", "recipes", "methods", "models", "benchmarks", "comm"),
    "metrics": ("cli", "recipes", "methods", "models", "benchmarks", "comm", "data"),
    "config": ("cli", "recipes", "methods", "models", "benchmarks", "comm", "data", "layers"),
    "losses": ("cli", "recipes", "methods"),
    "models": ("cli", "recipes", "methods"),
    "benchmarks": ("cli", "recipes"),
    "methods": ("cli", "recipes"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_ones(part):
    offenders = []
    for path in sorted((PACKAGE / part).rglob("*.py")):
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "lowshot" and len(parts) > 1 and parts[1] in FORBIDDEN[part]:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, "\n".join(offenders)
