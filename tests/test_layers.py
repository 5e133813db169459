"""The import graph of the four packages: no circle between modules, and imports at the top of modules.

`lint-imports` (pyproject's [tool.importlinter]) checks the layers (experiments > ray_jobs > dataprep >
v2s_models); it cannot see a circle between two files of one layer, which the first test finds with grimp (the
graph import-linter itself builds). The second parses every module with `ast`: an import of a project module
inside a function hides the graph from readers and tools, so it is allowed only for a module that loads a heavy
library (torch, PyAV, MLflow, Ray) where the importer must stay light, marked `# lazy: <reason>` on the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("v2s_models", "dataprep", "ray_jobs", "experiments")
LAZY = "# lazy:"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        # iterative depth-first search: (module, its remaining successors)
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    """One circle of the component, spelled out with the import lines that close it."""
    first = component[0]
    inside = set(component)
    for nxt in sorted(graph.find_modules_directly_imported_by(first) & inside):
        path = graph.find_shortest_chain(importer=nxt, imported=first)
        if path:
            chain = [first, *path]
            steps = []
            for a, b in zip(chain, chain[1:], strict=False):
                lines = graph.get_import_details(importer=a, imported=b)
                where = ", ".join(f"l.{d['line_number']}" for d in lines) or "?"
                steps.append(f"{a} -> {b} ({where})")
            return "; ".join(steps)
    return " <-> ".join(component)


def test_no_import_circle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES)
    cycles = _cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(_describe(graph, c) for c in cycles)


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b", line_number=1, line_contents="import p.b")
    graph.add_import(importer="p.b", imported="p.c", line_number=1, line_contents="import p.c")
    graph.add_import(importer="p.c", imported="p.a", line_number=1, line_contents="import p.a")
    graph.add_import(importer="p.c", imported="p.d", line_number=2, line_contents="import p.d")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]
    assert _describe(graph, ["p.a", "p.b", "p.c"]) == "p.a -> p.b (l.1); p.b -> p.c (l.1); p.c -> p.a (l.1)"


def _project(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] in PACKAGES


def local_imports(path: Path) -> list[str]:
    """`path:line: import` for every import of a project module inside a function without a `# lazy:` reason."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and _project(node.module, node.level):
                names = f"from {'.' * node.level}{node.module or ''} import ..."
            elif isinstance(node, ast.Import) and any(_project(a.name, 0) for a in node.names):
                names = f"import {', '.join(a.name for a in node.names)}"
            else:
                continue
            text = "\n".join(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
            if LAZY not in text:
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: {names}")
    return sorted(set(out))


def test_project_modules_are_imported_at_the_top() -> None:
    offenders = [
        hit for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py")) for hit in local_imports(p)
    ]
    assert not offenders, (
        f"{len(offenders)} imports of project modules inside functions (move them to the top, or mark a heavy "
        f"one `{LAZY} <reason>`):\n" + "\n".join(offenders)
    )


def test_the_local_import_finder(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "import os\n"
        "from v2s_models import audio\n"
        "def f():\n"
        "    import json\n"
        "    from v2s_models import generation\n"
        "    from . import sibling\n"
        "    from v2s_models import registry  # lazy: MLflow\n"
        "    def g():\n"
        "        import dataprep.decode\n"
    )
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert local_imports(f) == [
            "m.py:5: from v2s_models import ...",
            "m.py:6: from . import ...",
            "m.py:9: import dataprep.decode",
        ]
    finally:
        REPO = saved
