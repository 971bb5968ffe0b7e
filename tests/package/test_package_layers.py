"""The import direction of DESIGN.md, checked on every module of ``src/lowshot``.

Levels, top to bottom. A module may import modules of its own package and of packages on
*lower* levels; packages that share a level never import each other::

    cli                          the command: glue only
    sweep                        settings x seeds over the catalog's recipes (run dirs, locks, Ray)
    catalog                      the recipe index: imports every recipe module by name
    recipes | reports            one loop per family (comm's too); reports read run dirs
    methods | comm               method = model + loss terms; comm = the communicating-agent library
    models | losses | protocols  models, objectives, split definitions and protocol runners
      | extract                  encoders: raw inputs -> features (registered in ENCODERS)
    layers | data | metrics      building blocks: nn layers, readers, pure metric functions
    config                       schemas, strict YAML, overrides, paper presets
    utils | _registry            atomic I/O, checkpoints, run dirs, seeds; the Registry class
    errors | lowshot             exception types; the root ``__init__`` (version)

Where this refines DESIGN.md's one-line direction (cli -> recipes -> methods ->
models/losses/protocols/metrics -> layers/data -> config/_registry/utils):

* ``catalog`` knows every recipe module (``lowshot list``, ``load_recipe``), so it sits just
  under ``cli`` and above every recipe.
* ``comm`` is the library of the communicating-agent family: its environments, agents and
  the reusable adaptation loop; its recipe is ``recipes.comm`` like every other recipe. It
  sits beside ``methods`` (neither imports the other) and builds on everything below
  (losses, config, utils, ...). Inside ``comm`` only cycles are checked.
* ``reports`` turn finished run directories into tables and figures. They sit beside the
  recipes whose outputs they read: they may rebuild a method (``methods`` and below), never
  import a recipe or the CLI; a recipe never imports a report (the CLI glues the two).
* ``metrics`` are pure functions the protocols call, so they sit under ``protocols``.
* ``extract`` holds the pluggable encoders (``nn.Module`` s like models) that read their
  weight files and write features through ``data``; ``data`` never imports an encoder.
* ``config`` writes its YAML through ``utils`` (atomic writes), so it sits above ``utils``;
  ``utils`` never imports ``config``.

Every file counts: absolute and relative imports, imports inside functions (a lazy import
is still a dependency), imports under ``TYPE_CHECKING``, and string constants that name a
lowshot module (``importlib.import_module`` targets). Besides the direction, no two modules
may import each other, directly or through others (an import cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "lowshot"

#: top to bottom; a package may import only packages of lower levels (and itself)
LEVELS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("sweep",),
    ("catalog",),
    ("recipes", "reports"),
    ("methods", "comm"),
    ("models", "losses", "protocols", "extract"),
    ("layers", "data", "metrics"),
    ("config",),
    ("utils", "_registry"),
    ("errors", ""),  # "" = the root package's __init__
)

#: import cycles that exist and are known; each entry is removed with the fix, and a stale
#: entry fails ``test_known_cycles_still_exist`` so that the list only ever shrinks.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()

Graph = dict[str, dict[str, tuple[Path, int]]]  # module -> {dependency: (file, line)}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted names relative to the package (``data.gzsl``; ``""`` = the root ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _known(name: str, modules: Iterable[str]) -> str | None:
    """``name`` or its longest prefix that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_names(
    path: Path, package: list[str], pkg: str, modules: Iterable[str]
) -> list[tuple[str, int]]:
    """(dotted name, line) of everything ``path`` imports; ``package`` anchors relative imports.

    ``from a.b import c`` yields ``a.b.c`` (``c`` may be a module or a name in ``a.b``); a
    string constant counts when it is exactly the name of one of ``modules``.
    """
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join([pkg, *base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            names += [(f"{source}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(pkg + ".") and node.value[len(pkg) + 1 :] in modules:
                names.append((node.value, node.lineno))  # an importlib target
    return names


def import_graph(root: Path) -> Graph:
    """Every intra-package dependency of every module, with the file and line that makes it."""
    pkg = root.name
    modules = module_names(root)
    graph: Graph = {}
    for mod, path in modules.items():
        package = mod.split(".") if mod else []
        if path.name != "__init__.py":
            package = package[:-1]
        deps: dict[str, tuple[Path, int]] = {}
        for name, line in imported_names(path, package, pkg, modules):
            if name == pkg:
                target: str | None = ""
            elif name.startswith(pkg + "."):
                target = _known(name[len(pkg) + 1 :], modules)
            else:
                continue
            if target is not None and target != mod:
                deps.setdefault(target, (path, line))
        graph[mod] = deps
    return graph


def part(module: str) -> str:
    return module.split(".")[0]


def level_of(package: str) -> int | None:
    return next((i for i, level in enumerate(LEVELS) if package in level), None)


def _where(root: Path, site: tuple[Path, int]) -> str:
    return f"{site[0].relative_to(root.parent)}:{site[1]}"


def unplaced(graph: Graph) -> list[str]:
    return sorted({f"{part(m) or '(root)'}" for m in graph if level_of(part(m)) is None})


def direction_offenders(root: Path, graph: Graph) -> list[str]:
    """One line per import that goes sideways or up, e.g. ``protocols -> methods``."""
    out = []
    for mod, deps in sorted(graph.items()):
        mine = level_of(part(mod))
        for dep, site in sorted(deps.items()):
            theirs = level_of(part(dep))
            if part(dep) == part(mod) or mine is None or theirs is None or theirs > mine:
                continue
            how = "beside" if theirs == mine else "above"
            out.append(
                f"{_where(root, site)}: {root.name}.{mod} imports {root.name}.{dep} "
                f"({part(mod)} must not import {part(dep)}, which sits {how} it)"
            )
    return out


def cycles(graph: Graph) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def describe_cycle(root: Path, graph: Graph, component: frozenset[str]) -> str:
    """One concrete loop through the component, with the line of each import."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first, inside the component, back to start
        nxt = []
        for node in frontier:
            for dep in sorted(graph[node]):
                if dep == start:
                    loop = [*paths[node], start]
                    sites = ", ".join(_where(root, graph[a][b]) for a, b in zip(loop, loop[1:]))
                    arrows = " -> ".join(f"{root.name}.{m}" for m in loop)
                    return f"cycle {arrows} ({sites})" + (
                        f"; component: {sorted(component)}" if len(component) > len(loop) - 1 else ""
                    )
                if dep in component and dep not in paths:
                    paths[dep] = [*paths[node], dep]
                    nxt.append(dep)
        frontier = nxt
    raise AssertionError(f"no loop through {start}")  # cannot happen for a component


def new_cycles(root: Path, graph: Graph, known: Iterable[frozenset[str]] = ()) -> list[str]:
    known = set(known)
    return [describe_cycle(root, graph, c) for c in cycles(graph) if c not in known]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(PACKAGE)


def test_every_package_has_a_level(graph: Graph) -> None:
    missing = unplaced(graph)
    assert not missing, f"place these packages in LEVELS (and say why in the docstring): {missing}"


def test_imports_point_down(graph: Graph) -> None:
    offenders = direction_offenders(PACKAGE, graph)
    assert not offenders, "imports against DESIGN.md's direction:\n" + "\n".join(offenders)


def test_no_new_import_cycles(graph: Graph) -> None:
    offenders = new_cycles(PACKAGE, graph, KNOWN_CYCLES)
    assert not offenders, "import cycles:\n" + "\n".join(offenders)


def test_known_cycles_still_exist(graph: Graph) -> None:
    present = set(cycles(graph))
    stale = [sorted(c) for c in KNOWN_CYCLES if c not in present]
    assert not stale, f"fixed cycles: remove them from KNOWN_CYCLES: {stale}"


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The violations found on main (issue #10), rebuilt in a tiny package: each is reported.

    Each uses another form of import: top-level absolute, function-local, relative, under
    ``TYPE_CHECKING``, and an ``importlib`` target.
    """
    files = {
        "__init__.py": "",
        "protocols/robustness.py": "from pkg.methods.base import Batch\n",
        "methods/base.py": "Batch = 1\n",
        "recipes/gzsl.py": "X = 1\n",
        "reports/tsne.py": "def run():\n    from pkg.recipes.gzsl import X\n",
        "config/schema.py": "def save():\n    from pkg.utils.io import write\n",
        "utils/io.py": "write = 1\n",
        "utils/rundir.py": "from pkg.config.schema import save\n",
        "data/gzsl.py": "def open_source():\n    from .safe_format import Converted\n",
        "data/safe_format.py": "from pkg.data.gzsl import open_source\nConverted = 1\n",
        "comm/agents.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.comm.games import E\n",
        "comm/games.py": "from pkg.comm import agents\nE = 1\n",
        "layers/mlp.py": "import importlib\nimportlib.import_module('pkg.cli.main')\n",
        "cli/main.py": "",
    }
    root = tmp_path / "pkg"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    g = import_graph(root)
    assert direction_offenders(root, g) == [
        "pkg/layers/mlp.py:2: pkg.layers.mlp imports pkg.cli.main (layers must not import cli, which sits above it)",
        "pkg/protocols/robustness.py:1: pkg.protocols.robustness imports pkg.methods.base "
        "(protocols must not import methods, which sits above it)",
        "pkg/reports/tsne.py:2: pkg.reports.tsne imports pkg.recipes.gzsl "
        "(reports must not import recipes, which sits beside it)",
        "pkg/utils/rundir.py:1: pkg.utils.rundir imports pkg.config.schema "
        "(utils must not import config, which sits above it)",
    ]
    assert new_cycles(root, g) == [
        "cycle pkg.comm.agents -> pkg.comm.games -> pkg.comm.agents "
        "(pkg/comm/agents.py:3, pkg/comm/games.py:1)",
        "cycle pkg.data.gzsl -> pkg.data.safe_format -> pkg.data.gzsl "
        "(pkg/data/gzsl.py:2, pkg/data/safe_format.py:1)",
    ]
    assert new_cycles(root, g, [frozenset({"comm.agents", "comm.games"})]) == [
        "cycle pkg.data.gzsl -> pkg.data.safe_format -> pkg.data.gzsl "
        "(pkg/data/gzsl.py:2, pkg/data/safe_format.py:1)",
    ]
    (root / "newpart").mkdir()
    (root / "newpart/x.py").write_text("")
    assert unplaced(import_graph(root)) == ["newpart"]
