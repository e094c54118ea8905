"""The engine's layers only import downward, no two modules import each other, and the engine never
imports streamlit or the dashboard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine import LAYERS

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def engine_graph(root: Path = ENGINE) -> dict[str, set[str]]:
    """module -> the engine modules it imports (names that are not modules, such as a function
    imported from a module, are dropped)."""
    files = {module_name(p): p for p in root.rglob("*.py")}
    return {mod: {name for name in imports_of(path) if name in files and name != mod} for mod, path in files.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a later layer than the importer's own."""
    return sorted(f"{mod} -> {dep}" for mod, deps in graph.items() for dep in deps if layer_of(dep) > layer_of(mod))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan). A module naming its own
    package (``from engine.cli import layout`` inside ``engine.cli``) is no edge to that package."""
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in edges.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_engine_module_sits_in_a_layer() -> None:
    graph = engine_graph()
    loose = sorted(m for m in graph if m != "engine" and layer_of(m) < 0)
    assert not loose, f"engine modules outside the layers {LAYERS}: {loose}"


def test_no_upward_imports() -> None:
    assert upward_imports(engine_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(engine_graph()) == []


def test_engine_never_imports_streamlit_or_the_dashboard() -> None:
    bad = sorted(
        f"{module_name(p)} -> {name}"
        for p in ENGINE.rglob("*.py")
        for name in imports_of(p)
        if name.split(".")[0] in {"streamlit", "dashboard"}
    )
    assert bad == []


def test_dashboard_pages_reach_the_engine_only_downward() -> None:
    """The dashboard may use any engine layer, but never a private name of it."""
    private = sorted(
        f"{module_name(p)} -> {name}"
        for p in (ROOT / "dashboard").rglob("*.py")
        for name in imports_of(p)
        if name.startswith("engine.") and name.rsplit(".", 1)[-1].startswith("_") and not name.endswith("__init__")
    )
    assert private == []


@pytest.mark.parametrize(
    "files, expect",
    [
        ({"engine/__init__.py": "", "engine/data/__init__.py": "", "engine/data/a.py": "from engine.models.b import x",
          "engine/models/__init__.py": "", "engine/models/b.py": "x = 1"}, ("upward", ["engine.data.a -> engine.models.b"])),
        ({"engine/__init__.py": "", "engine/page/__init__.py": "", "engine/page/a.py": "import engine.page.b",
          "engine/page/b.py": "def f():\n    from engine.page import a"}, ("cycle", [["engine.page.a", "engine.page.b"]])),
    ],
)
def test_the_checks_catch_what_they_are_for(tmp_path: Path, files: dict[str, str], expect) -> None:
    """The checks are not vacuous: a planted upward import and a planted cycle are both found."""
    global ROOT
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    saved, ROOT = ROOT, tmp_path
    try:
        graph = engine_graph(tmp_path / "engine")
    finally:
        ROOT = saved
    kind, found = expect
    assert (upward_imports(graph) if kind == "upward" else cycles(graph)) == found
