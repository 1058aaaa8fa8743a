"""What a plugin author is promised: typed signatures in the public API, and a core whose
renderers know no analyzer by name (a plugin's section is drawn like a built-in's).

Both are read from the source with the standard library's ``ast``, so a new ``Any`` in a
public signature, or a renderer branching on ``"hotspots"``, fails here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from types import ModuleType

from model_analyze import plugin_api
from model_analyze.manager import get_plugin_manager
from model_analyze.report import HEADLINES

ROOT = Path(__file__).resolve().parent.parent

ANY_LEFT = {
    # An ONNX attribute is any of int, float, string, their lists, a tensor or a graph:
    # what the op's spec says, which the rule knows and the type checker does not. The
    # typed readers (Node.int_attr, ints_attr, float_attr, str_attr) raise on a wrong type.
    "Node.attr -> Any", "Node.attr(default: Any)", "Node.attrs -> dict[str, Any]",
    "CostCtx.attr -> Any", "CostCtx.attr(default: Any)", "FlowCtx.attr -> Any", "FlowCtx.attr(default: Any)",
    "ShapeCtx.attr -> Any", "ShapeCtx.attr(default: Any)",
    # ONNX graph vertices: name → the fields of one node or value, heterogeneous by kind.
    "ModelGraph.vertices -> dict[str, dict[str, Any]]",
    # int-or-symbolic arithmetic over values the caller may hold as Fraction or Expr.
    "dims.normalize -> Any", "dims.normalize(d: Any)", "dims.prod(values: Any)", "dims.subs -> Any",
    "dims.subs(d: Any)", "dims.minmax_args -> tuple[Any, ...] | None",
}
"""``Any`` still in the public API, each with the reason it stays. Shrink it, never grow it."""


def _signatures(owner: str, tree: ast.AST) -> list[str]:
    """Every ``Any`` in a public function's annotations under ``tree``: ``owner.fn(arg: T)`` / ``owner.fn -> T``."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("_") and node.name != "__init__":
            continue
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        for a in args:
            if a.annotation is not None and "Any" in ast.unparse(a.annotation):
                out.append(f"{owner}.{node.name}({a.arg}: {ast.unparse(a.annotation)})")
        if node.returns is not None and "Any" in ast.unparse(node.returns):
            out.append(f"{owner}.{node.name} -> {ast.unparse(node.returns)}")
    return out


def _class_any(name: str, cls: ast.ClassDef) -> set[str]:
    """``Any`` in a class's public fields and methods."""
    fields = [n for n in cls.body if isinstance(n, ast.AnnAssign)]
    found = {f"{name}.{ast.unparse(f.target)}: {ast.unparse(f.annotation)}" for f in fields
             if not ast.unparse(f.target).startswith("_") and "Any" in ast.unparse(f.annotation)}
    return found | set(_signatures(name, cls))


def _public_any(names: dict[str, object]) -> set[str]:
    found: set[str] = set()
    for name, obj in names.items():
        if isinstance(obj, ModuleType):
            for n in ast.parse(inspect.getsource(obj)).body:
                if isinstance(n, ast.FunctionDef) and not n.name.startswith("_"):
                    found.update(_signatures(name, n))
                elif isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
                    found |= _class_any(f"{name}.{n.name}", n)
        elif inspect.isclass(obj) or inspect.isfunction(obj):
            top = ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]
            if isinstance(top, ast.ClassDef):
                found |= _class_any(name, top)
            else:
                found.update(s.replace(f"_.{top.name}", name, 1) for s in _signatures("_", top))
    return found


def test_the_public_api_has_no_any_but_node_attributes_and_dim_algebra():
    names = {n: getattr(plugin_api, n) for n in plugin_api.__all__}
    found = _public_any(names)
    assert found - ANY_LEFT == set(), "new Any in the public plugin API"
    assert ANY_LEFT - found == set(), "an Any left ANY_LEFT's reasons: remove it from the list"


def test_the_any_scan_sees_an_any():
    """The scanner itself: an ``Any`` argument, return and field are found; private ones are not."""
    tree = ast.parse(textwrap.dedent('''
        class Probe:
            payload: Any
            _cache: Any = None
            count: int = 0

            def get(self, key: str, default: Any = None) -> int: ...
            def items(self) -> list[Any]: ...
            def _private(self) -> Any: ...
    '''))
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    assert _class_any("Probe", cls) == {"Probe.payload: Any", "Probe.get(default: Any)", "Probe.items -> list[Any]"}


def test_renderers_know_no_analyzer_by_name():
    """No string in ``render/`` names a built-in analyzer, except the headline keys that
    every analyzer (a plugin's too) may publish under, and the verdict's ``serving`` row label."""
    names = {a.name for _, a in get_plugin_manager().analyzers()[0]}
    assert {"receptive-field", "hotspots", "attention"} <= names
    allowed = set(HEADLINES) | {"serving"}
    named = []
    for path in sorted((ROOT / "analyzer" / "render").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names - allowed:
                named.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert named == []
    html = (ROOT / "analyzer" / "render" / "html.py").read_text()
    assert not [n for n in names if f'"{n}"' in html or f"'{n}'" in html]


def test_text_and_markdown_point_to_every_chart_they_cannot_draw():
    """convnet.onnx has 3 Conv and 2 MaxPool nodes (onnx counts them below), so the receptive
    field's growth chart has 5 points; text and Markdown cannot draw it and say where it is."""
    import onnx

    from model_analyze.render import markdown, text
    from model_analyze.runner import analyze

    ops = [n.op_type for n in onnx.load(str(ROOT / "samples" / "convnet.onnx")).graph.node]
    assert ops.count("Conv") + ops.count("MaxPool") == 5
    report = analyze(str(ROOT / "samples" / "convnet.onnx"))
    [chart] = report.section("receptive-field").charts
    pointer = f"(chart in the HTML report: {chart.title}, 5 points)"
    assert f"_{pointer}_" in markdown.render(report).splitlines()
    assert pointer in " ".join(line.strip() for line in text.render(report).splitlines())
