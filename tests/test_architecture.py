"""The house rules of docs/architecture.md, checked on the source: imports go one way (server -> hooks ->
cql_equivalents), no module imports itself back through others (late imports inside functions included), and a
module over 300 lines says at its top why it is that long."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "hooks", "cql_equivalents")
# a package may import only those after it: server uses hooks and the engine; hooks use the engine; the engine
# uses neither
LAYER = {name: rank for rank, name in enumerate(PACKAGES)}
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module `name` imports, at the top or inside a function (a late import is still an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from package import module` names a module; `from module import name` names the module
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]
        else:
            continue
        edges.update(target for target in targets if target in MODULES and target != name)
    return edges


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_packages_are_found():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert len(MODULES) > 80  # server, hooks and the engine with their sub-packages


def test_imports_go_one_way():
    upward = sorted(f"{source} imports {target}" for source, targets in GRAPH.items() for target in targets
                    if LAYER[target.split(".")[0]] < LAYER[source.split(".")[0]])
    assert upward == []


def test_no_import_circle():
    # Tarjan's strongly connected components: any component of more than one module is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert circles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_long_module_says_why(name):
    path = MODULES[name]
    text = path.read_text()
    if text.count("\n") <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "300 lines" in docstring, f"{path.relative_to(REPO)}: over {MAX_LINES} lines with no reason at its top"
