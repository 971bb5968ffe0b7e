"""Docstring and tensor-shape coverage of the public API of ``src/lowshot``.

Usage::

    python tools/doc_coverage.py                 # totals and per-package table
    python tools/doc_coverage.py --missing       # also list every undocumented public object
    python tools/doc_coverage.py --min-doc 90 --min-shapes 90   # exit 1 below the thresholds

Counted (static, with ``ast``; nothing is imported):

* **public objects**: modules, classes, and functions / methods whose name and every enclosing
  class name have no leading underscore (``__init__`` and other dunders are not counted; a
  class's docstring documents its constructor). Overrides of a documented base method are counted
  like any other method.
* **documented**: the object has a docstring.
* **tensor signatures**: public functions whose parameter or return annotations mention
  ``Tensor`` (``torch.Tensor``, ``Tensor | None``, ``tuple[Tensor, ...]``, ...).
* **with shapes**: such a function's docstring (or, for a method, its class docstring) states a
  shape: a bracketed or parenthesised dimension list such as ``[B, D]``, ``(N, C_s)``,
  ``(B,)``, or the word "shape"/"scalar".
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lowshot"
_DIM = r"[A-Za-z_][A-Za-z0-9_']*(?:\s*[+*/-]\s*[A-Za-z0-9_]+)*|\d+|\.\.\.|…"
SHAPE = re.compile(rf"[\[(]\s*(?:{_DIM})\s*(?:,\s*(?:{_DIM})\s*)*,?\s*[\])]|\bshape\b|\bscalar\b", re.I)


@dataclass(frozen=True)
class Entry:
    """One public object: where it is, whether it is documented and its tensor-shape status."""

    package: str
    qualname: str
    kind: str  # module | class | function
    documented: bool
    tensor_signature: bool
    has_shapes: bool


def _mentions_tensor(node: ast.AST | None) -> bool:
    return node is not None and "Tensor" in ast.unparse(node)


def _tensor_signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs, fn.args.vararg, fn.args.kwarg]
    return _mentions_tensor(fn.returns) or any(a is not None and _mentions_tensor(a.annotation) for a in args)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _walk(body: list[ast.stmt], package: str, prefix: str, class_doc: str | None) -> Iterator[Entry]:
    for node in body:
        if isinstance(node, ast.ClassDef) and _public(node.name):
            doc = ast.get_docstring(node)
            qual = f"{prefix}{node.name}"
            yield Entry(package, qual, "class", bool(doc), False, False)
            yield from _walk(node.body, package, f"{qual}.", doc or "")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name):
            doc = ast.get_docstring(node) or ""
            tensors = _tensor_signature(node)
            shapes = tensors and bool(SHAPE.search(doc) or (class_doc and SHAPE.search(class_doc)))
            yield Entry(package, f"{prefix}{node.name}", "function", bool(doc), tensors, shapes)


def entries(root: Path = PACKAGE) -> list[Entry]:
    """Every public object under ``root`` (a package directory)."""
    out: list[Entry] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        parts = rel.with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        module = ".".join(p for p in parts if p != "__init__")
        package = ".".join(parts[:2]) if len(parts) > 2 else parts[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if tree.body or path.name != "__init__.py":
            out.append(Entry(package, module, "module", bool(ast.get_docstring(tree)), False, False))
        out.extend(_walk(tree.body, package, f"{module}:", None))
    return out


def _pct(num: int, den: int) -> float:
    return 100.0 * num / den if den else 100.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--missing", action="store_true", help="list undocumented objects and shape-less tensor signatures")
    p.add_argument("--min-doc", type=float, default=None, help="fail below this docstring percentage")
    p.add_argument("--min-shapes", type=float, default=None, help="fail below this tensor-shape percentage")
    args = p.parse_args(argv)

    found = entries()
    per: dict[str, list[Entry]] = defaultdict(list)
    for e in found:
        per[e.package].append(e)
    print(f"{'package':28s} {'public':>6s} {'doc %':>6s} {'tensor sigs':>11s} {'shapes %':>8s}")
    for pkg in sorted(per):
        es = per[pkg]
        ts = [e for e in es if e.tensor_signature]
        print(f"{pkg:28s} {len(es):6d} {_pct(sum(e.documented for e in es), len(es)):6.1f} "
              f"{len(ts):11d} {_pct(sum(e.has_shapes for e in ts), len(ts)):8.1f}")
    tensor = [e for e in found if e.tensor_signature]
    doc_pct = _pct(sum(e.documented for e in found), len(found))
    shape_pct = _pct(sum(e.has_shapes for e in tensor), len(tensor))
    print(f"{'TOTAL':28s} {len(found):6d} {doc_pct:6.1f} {len(tensor):11d} {shape_pct:8.1f}")
    if args.missing:
        for e in found:
            if not e.documented:
                print(f"no docstring: {e.qualname} ({e.kind})")
        for e in tensor:
            if not e.has_shapes:
                print(f"no shapes:    {e.qualname}")
    failed = (args.min_doc is not None and doc_pct < args.min_doc) or (
        args.min_shapes is not None and shape_pct < args.min_shapes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
