"""The import layers of docs/architecture.md stay true: no import runs upward, no module circle.

Every ``import hashbench...`` / ``from hashbench... import`` in every module counts, function-level
(lazy) imports included: a lazy import that runs upward is still an upward dependency. Run this
file directly (``python tests/test_layers.py``) to print the package graph and any violation.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hashbench"

#: Bottom (0) to top. A module may import only from a strictly lower layer or its own package.
LAYERS: dict[str, int] = {
    "hashbench": 0,  # __init__, registry.py, files.py: standard-library helpers
    "data": 1,
    "retrieval": 2,
    "losses": 3,
    "models": 3,
    "optim": 3,
    "methods": 4,
    "baselines": 4,
    "training": 5,
    "bench": 6,
    "commands": 7,
    "lightning_cli": 7,
    "cli": 8,
}
#: Modules directly under hashbench/ that belong to the bottom layer.
ROOT_MODULES = {"registry", "files"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The layer unit of a module: its sub-package, or the top-level module's own name."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ROOT_MODULES or parts[1] == "__version__":
        return "hashbench"
    return parts[1]


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The hashbench modules ``path`` imports (``from a import b`` counts ``a.b`` if a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: imports_of(p, set(files)) - {m} for m, p in files.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        a = unit(module)
        for target in sorted(targets):
            b = unit(target)
            if a == b or b == "hashbench":
                continue
            if a not in LAYERS or b not in LAYERS:
                bad.append(f"{module} -> {target}: {a if a not in LAYERS else b} has no layer")
            elif LAYERS[b] >= LAYERS[a]:
                bad.append(
                    f"{module} ({a}, layer {LAYERS[a]}) -> {target} ({b}, layer {LAYERS[b]})"
                )
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        out[unit(module)] |= {unit(t) for t in targets} - {unit(module)}
    return out


# -- tests ------------------------------------------------------------------------------------------
def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in import_graph()}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_runs_upward() -> None:
    assert upward_imports(import_graph()) == []


def test_no_module_circle() -> None:
    assert cycles(import_graph()) == []


def test_the_check_catches_an_upward_import_and_a_circle() -> None:
    graph = {
        "hashbench.data.base": {"hashbench.methods.base"},  # data -> methods: upward
        "hashbench.methods.base": {"hashbench.data.base"},
        "hashbench.bench.a": {"hashbench.bench.b"},
        "hashbench.bench.b": {"hashbench.bench.a"},
    }
    assert upward_imports(graph) == [
        "hashbench.data.base (data, layer 1) -> hashbench.methods.base (methods, layer 4)"
    ]
    assert cycles(graph) == [
        ["hashbench.bench.a", "hashbench.bench.b"],
        ["hashbench.data.base", "hashbench.methods.base"],
    ]


def test_imports_are_found_in_functions_too(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from hashbench.bench import sweep\n    import hashbench.cli\n")
    known = {"hashbench.bench", "hashbench.bench.sweep", "hashbench.cli"}
    assert imports_of(source, known) == known


if __name__ == "__main__":  # pragma: no cover
    g = import_graph()
    for name, targets in sorted(package_graph(g).items(), key=lambda kv: LAYERS.get(kv[0], 99)):
        print(f"{LAYERS.get(name, '?')}  {name:<14} -> {', '.join(sorted(targets)) or '-'}")
    problems = upward_imports(g) + [" <-> ".join(c) for c in cycles(g)]
    print("\n".join(problems) or f"{len(g)} modules: no upward import, no circle")
    sys.exit(1 if problems else 0)
