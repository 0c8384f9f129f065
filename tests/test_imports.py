"""Import hygiene of the package: every module imports on its own, and no import cycle inside ``motion_text/``.

Rerun by hand::

    # each module in a fresh interpreter (slow: one torch import per module)
    for m in $(python -c "from tests.test_imports import MODULES; print(*MODULES)"); do
        python -c "import $m" || echo "FAILED: $m"; done
    # the cycles, as strongly connected components of the static import graph
    python -c "from tests.test_imports import import_graph, cycles; print(*cycles(import_graph()), sep='\\n')"
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "motion_text"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_FILES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES: list[str] = sorted(MODULE_FILES)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names imported anywhere in ``tree`` (function-level imports included, ``if TYPE_CHECKING:`` blocks
    left out since they never run), relative imports resolved against ``module``."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # ``from pkg import submodule``
        stack.extend(ast.iter_child_nodes(node))
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ``motion_text`` it imports (static, from the source files)."""
    graph = {}
    for name, path in MODULE_FILES.items():
        imported = _imports(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py")
        graph[name] = {t for t in imported if t in MODULE_FILES and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_shortest_cycle(graph, comp) for comp in components]


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first inside the component)."""
    start, members = component[0], set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:  # v -> start closes the cycle
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"not a strongly connected component: {component}")


def _component_of(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules reachable from ``start`` that reach it back."""
    def reach(edges: dict[str, set[str]]) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for w in edges[todo.pop()]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    reverse: dict[str, set[str]] = {v: set() for v in graph}
    for v, ws in graph.items():
        for w in ws:
            reverse[w].add(v)
    return reach(graph) & reach(reverse)


def test_graph_walk_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert _component_of(graph, "b") == {"a", "b", "c"}


def test_relative_and_function_level_imports_are_edges():
    src = ("from . import x\nfrom ..b import y\nimport q.r\nfrom typing import TYPE_CHECKING\n"
           "def f():\n    from .c import z\nif TYPE_CHECKING:\n    from .hidden import h\n")
    got = _imports(ast.parse(src), "p.s.m", is_package=False)
    assert {"p.s", "p.s.x", "p.b", "p.b.y", "q.r", "p.s.c", "p.s.c.z"} <= got
    assert not any("hidden" in g for g in got)


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles inside motion_text/ (a shortest cycle, then every module of its strongly " \
        "connected component):\n" + "\n".join(
            f"{' -> '.join(c)}\n    component: {', '.join(sorted(_component_of(graph, c[0])))}" for c in found)


_ISOLATED = """
import importlib, json, sys, traceback
failed = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "motion_text" or m.startswith("motion_text.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own():
    """Each module is imported with no other ``motion_text`` module loaded before it (``sys.modules`` cleared of
    the package between modules; third-party libraries stay loaded, so the run takes one torch import)."""
    out = subprocess.run([sys.executable, "-c", _ISOLATED, *MODULES], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    failed = json.loads(out.stdout.strip().splitlines()[-1])
    assert not failed, "modules that fail to import on their own:\n" + "\n".join(
        f"{name}:\n{tb}" for name, tb in failed.items())


_EXPORTS_CHECK = """
import importlib, json, sys
bad = {}
for name in sys.argv[1:]:
    m = importlib.import_module(name)
    names = getattr(m, "__all__", [])
    table = getattr(m, "_EXPORTS", None)
    if table is not None and sorted(table) != sorted(names):
        bad[name] = "the lazy table and __all__ differ: %s" % sorted(set(table) ^ set(names))
    missing = [n for n in names if not hasattr(m, n)]
    if missing:
        bad[name] = "names of __all__ that do not resolve: %s" % missing
print(json.dumps(bad))
"""


def test_package_exports_resolve():
    """Every package's ``__all__`` lists real objects, and its lazy ``{name: module}`` table agrees with it."""
    packages = sorted(n for n, p in MODULE_FILES.items() if p.name == "__init__.py")
    out = subprocess.run([sys.executable, "-c", _EXPORTS_CHECK, *packages], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    bad = json.loads(out.stdout.strip().splitlines()[-1])
    assert not bad, bad
    assert {"TMR", "MoTCCCL", "DropTriple", "LexicalPretraining", "MDOT", "MotionTextDataModule"} <= set(
        importlib.import_module("motion_text").__all__)


def test_import_motion_text_is_cheap():
    """``import motion_text`` loads no heavy library (the names are resolved lazily)."""
    out = subprocess.run([sys.executable, "-c", "import sys, motion_text; print(sorted({'torch', 'lightning', "
                          "'transformers', 'numpy'} & set(sys.modules)))"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
