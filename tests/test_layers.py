"""The floors of the code: no import circle, and no stage importing a stage above it.

Every module of ``decoders/`` and ``addons/`` is parsed with :mod:`ast` (nothing is imported,
so a module that cannot be imported here is still checked) and every import statement counts:
at the top, inside functions, under ``TYPE_CHECKING`` (a type-only import is still knowledge of
the other floor). ``from package import name`` is an import of ``package.name`` when that is a
module, else of ``package``.

The floors, bottom to top (:data:`FLOORS`): the shared bottom (``decoders`` itself,
``errors``, ``outputs``, ``chromium``), then wire -> session -> media -> audit -> report, the
lab (it records calls and measures them with the stages below) beside the addon's classes and
runtime (``decoders/addon``: the lab finds the addon script there), and on top the command line
and the script mitmproxy loads (``addons/``), which expose all of it. A module may import its
own floor or any floor below it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FLOORS: Mapping[str, int] = {
    "decoders": 0,  # decoders/__init__.py, errors.py, outputs.py, chromium.py
    "decoders.wire": 1,
    "decoders.session": 2,
    "decoders.media": 3,
    "decoders.audit": 4,
    "decoders.report": 5,
    "decoders.lab": 6,
    "decoders.live": 6,  # the live audit: it runs the lab's pieces against any URL
    "decoders.addon": 6,  # the addon's classes and runtime; the lab finds its script here
    "decoders.corpus": 6,  # many sessions at once: the analysis and report.json as tables
    "decoders.cli": 7,
    "addons": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    """Every module of decoders/ and addons/, by dotted name."""
    return {
        module_name(path): path
        for top in ("decoders", "addons")
        for path in sorted((ROOT / top).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def package_of(module: str, modules: Mapping[str, Path]) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to itself)."""
    if modules[module].name == "__init__.py":
        return module
    return module.rpartition(".")[0] or module


def floor_of(module: str) -> str:
    """The floor (a key of :data:`FLOORS`) of a module: its stage package, or the bottom."""
    parts = module.split(".")
    if parts[0] == "addons":
        return "addons"
    stage = ".".join(parts[:2])
    return stage if stage in FLOORS else "decoders"


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name``, or the nearest module of ours that holds it (``a.b.attr``: ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, modules: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import statement of ``module``."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                target = _known(f"{base}.{alias.name}", modules)
                if target is None or target == _known(base, modules):
                    target = _known(base, modules)
                if target is not None:
                    yield target, node.lineno


@functools.cache
def _graph(root: Path) -> dict[str, dict[str, int]]:
    modules = source_modules()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name in modules:
        for target, line in imports_of(name, modules):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, our modules only, self-imports left out."""
    return _graph(ROOT)


def circles(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, str]]:
    """package -> {imported package: "module -> module" naming one import that makes the edge}."""
    modules = source_modules()
    packages: dict[str, dict[str, str]] = {}
    for module, targets in graph.items():
        source = package_of(module, modules)
        edges = packages.setdefault(source, {})
        for target in targets:
            other = package_of(target, modules)
            if other != source:
                edges.setdefault(other, f"{module} -> {target}")
    return packages


def upward_imports(graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Each import of a module by a module on a lower floor, as ``a (floor) -> b (floor)``."""
    modules = source_modules()
    found = []
    for module, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            below, above = floor_of(module), floor_of(target)
            if FLOORS[above] > FLOORS[below]:
                where = modules[module].relative_to(ROOT)
                found.append(f"{where}:{line}: {module} ({below}) imports {target} ({above})")
    return found


def test_no_circle_between_modules() -> None:
    found = circles(import_graph())
    assert not found, "modules importing each other (directly or round a circle): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_no_circle_between_packages() -> None:
    packages = package_graph(import_graph())
    found = circles(packages)
    details = [
        ", ".join(packages[a][b] for a in circle for b in circle if b in packages.get(a, {}))
        for circle in found
    ]
    assert not found, "packages importing each other:\n" + "\n".join(details)


def test_no_stage_imports_a_stage_above_it() -> None:
    found = upward_imports(import_graph())
    assert not found, "imports reaching up a floor:\n" + "\n".join(found)


def test_every_module_has_a_floor() -> None:
    """A new top-level package must be placed on a floor here, not fall to the bottom silently."""
    strays = [m for m in source_modules() if floor_of(m) == "decoders" and m.count(".") > 1]
    assert not strays, f"modules in a package with no floor in FLOORS: {strays}"


# -- the checker itself, on small made-up trees --------------------------------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_a_circle_an_upward_import_and_a_package_circle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(
        tmp_path,
        {
            "decoders/__init__.py": "",
            "decoders/errors.py": "",
            "decoders/wire/__init__.py": "",
            "decoders/wire/a.py": "from decoders.wire import b\n",
            "decoders/wire/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from . import a\n"
                "def f() -> None:\n    from decoders.session.c import thing\n"
            ),
            "decoders/session/__init__.py": "",
            "decoders/session/c.py": "import decoders.wire.a\nfrom decoders import errors\n",
            "addons/top.py": "from decoders.session import c\n",
        },
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    graph = import_graph()
    assert graph["decoders.wire.a"] == {"decoders.wire.b": 1}
    assert graph["decoders.wire.b"] == {"decoders.wire.a": 3, "decoders.session.c": 5}
    assert graph["addons.top"] == {"decoders.session.c": 1}
    assert circles(graph) == [["decoders.session.c", "decoders.wire.a", "decoders.wire.b"]]
    assert circles(package_graph(graph)) == [["decoders.session", "decoders.wire"]]
    assert upward_imports(graph) == [
        "decoders/wire/b.py:5: decoders.wire.b (decoders.wire) imports decoders.session.c "
        "(decoders.session)"
    ]
