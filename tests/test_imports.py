"""No import cycles in the package (standard library ``ast`` only).

Two readings of "imports": the module-level statements a reader sees at the top of a
file, and every import statement, those inside functions too — a deferred import still
ties the two modules together (the registry that imported the rule tables which import
the registry; the CLI group that imported its subcommands which import the group).
Imports under ``if TYPE_CHECKING:`` are annotations only and do not count. An import
of ``pkg.mod`` counts as an edge to ``pkg.mod`` (not to every package on its way).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (("analyzer", "model_analyze"), ("plugins", "model_analyze.plugins"))


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for folder, package in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = (path, path.name == "__init__.py")
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _target(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


@functools.cache
def _edges(deep: bool) -> dict[str, dict[str, int]]:
    """``module → {imported module: line}``; ``deep``: imports inside functions and classes too."""
    mods = _modules()
    edges: dict[str, dict[str, int]] = {m: {} for m in mods}

    for module, (path, is_pkg) in mods.items():
        def visit(stmts: list[ast.stmt], module: str = module, is_pkg: bool = is_pkg) -> None:
            for s in stmts:
                if isinstance(s, ast.If):
                    visit(s.orelse)
                    if not _is_type_checking(s.test):
                        visit(s.body)
                elif isinstance(s, ast.Try):
                    for block in (s.body, s.orelse, s.finalbody, *(h.body for h in s.handlers)):
                        visit(block)
                elif isinstance(s, (ast.With, ast.For, ast.While)):
                    visit(s.body)
                elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    if deep:
                        visit(s.body)
                elif isinstance(s, ast.Import):
                    for alias in s.names:
                        if alias.name in mods:
                            edges[module].setdefault(alias.name, s.lineno)
                elif isinstance(s, ast.ImportFrom):
                    base = _target(module, is_pkg, s.level, s.module)
                    for alias in s.names:
                        full = f"{base}.{alias.name}"
                        if full in mods:
                            edges[module].setdefault(full, s.lineno)
                        elif base in mods:
                            edges[module].setdefault(base, s.lineno)

        visit(ast.parse(path.read_text()).body)
    return edges


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _explain(edges: dict[str, dict[str, int]], cycle: list[str]) -> str:
    inside = set(cycle)
    return "\n".join(f"  {a} -> {b} (line {line})" for a in cycle for b, line in edges[a].items() if b in inside)


def test_no_cycles_among_module_level_imports():
    edges = _edges(deep=False)
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n\n".join(_explain(edges, c) for c in cycles)


def test_no_cycles_even_through_imports_inside_functions():
    edges = _edges(deep=True)
    cycles = _cycles(edges)
    assert not cycles, "import cycles (deferred imports included):\n" + \
        "\n\n".join(_explain(edges, c) for c in cycles)


def test_the_checker_sees_a_cycle():
    """The checker itself: a cycle through a deferred import is found, a TYPE_CHECKING one is not."""
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []
    deep, shallow = _edges(deep=True), _edges(deep=False)
    # cli imports analyze_cmd inside the `analyze` command only: a deep edge, not a module-level one
    assert "model_analyze.analyze_cmd" in deep["model_analyze.cli"]
    assert "model_analyze.analyze_cmd" not in shallow["model_analyze.cli"]
    # hookspecs names the descriptors under TYPE_CHECKING only: no edge at all
    assert "model_analyze.descriptors" not in deep["model_analyze.hookspecs"]
