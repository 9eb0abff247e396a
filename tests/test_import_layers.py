"""The house is layered: imports go down the floors of DESIGN.md, never up, never in a circle.

The imports are read from the source with ``ast`` (function-level imports included, since
a lazy import is still a dependency); imports under ``if TYPE_CHECKING:`` never run and are
left out. A module may import its own subpackage and any lower floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "textdecade"

#: The floors, lowest first. Names on one floor that depend on each other are listed in
#: their order inside the floor (a tuple), so even there the arrows point one way.
FLOORS: list[tuple[str, ...]] = [
    ("errors", "extras", "io", "config"),  # the ground, in that order
    ("tokenizer",),
    ("data",),
    ("models",),
    ("pretrain",),
    ("embedding", "interop", "eval"),  # pooling < file formats < scoring
    (
        "st_compat",
        "init_from",
        "api",
        "quick_train",
        "__init__",
    ),  # the public surface loads through api
    ("decade", "lab"),
    ("commands", "cli", "__main__"),  # the command line, in that order
]
RANK = {
    name: (floor, order) for floor, names in enumerate(FLOORS) for order, name in enumerate(names)
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The textdecade modules that ``module`` imports (a ``from X import name`` of a
    submodule counts as importing that submodule)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("textdecade"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("textdecade"):
                subs = {f"{target}.{a.name}" for a in node.names} & known
                found.update(subs or {target})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {_module_name(p) for p in paths}

    def resolve(name: str) -> str:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for path in paths:
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = _imports(tree, module, path.name == "__init__.py", known)
        graph[module] = {resolve(d) for d in deps} - {module}
    return graph


def _room(module: str) -> str:
    """The top-level name a module lives under ("models" for textdecade.models.gpt)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _graph()}
    assert rooms <= set(RANK), f"rooms without a floor in this test: {sorted(rooms - set(RANK))}"


def test_imports_go_down_the_floors():
    upward = []
    for module, deps in _graph().items():
        for dep in deps:
            here, there = _room(module), _room(dep)
            if here != there and RANK[there] >= RANK[here]:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from textdecade.eval import vectors", {"textdecade.eval.vectors"}),
        ("def f():\n    from textdecade.api import load", {"textdecade.api"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import textdecade.api", set()),
        ("from . import base", {"textdecade.models.base"}),
    ],
)
def test_the_reader_sees_lazy_and_relative_imports(source, expected):
    known = {"textdecade.eval.vectors", "textdecade.models.base"}
    found = _imports(ast.parse(source), "textdecade.models.gpt", False, known)
    assert found == expected
