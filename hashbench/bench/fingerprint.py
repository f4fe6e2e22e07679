"""A method's behaviour fingerprint: the code its numbers depend on, hashed without its docs.

A record keeps the fingerprint of the code that made it; when the method's code changes in a way
that can alter what it computes, the fingerprint changes and the sweep reports the record as stale
and recomputes it (``docs/bench.md``, "Stale records"). The fingerprint of a cell is the SHA-256 of
the abstract syntax trees (:func:`ast.dump`, which ignores comments, blank lines and formatting;
docstrings are removed too) of:

- the module that defines the method (a deep method's LightningModule or a baseline's estimator)
  and the module of the cell's DataModule, and
- every ``hashbench`` module they import, directly or through each other, lazy imports included,
  inside the packages that decide what a method computes (:data:`BEHAVIOUR_PACKAGES`: methods,
  losses, models, optim, baselines, data).

Outside them on purpose: ``hashbench.retrieval`` (the metrics are exact: a faster engine gives the
same numbers), ``hashbench.bench``, ``hashbench.training`` and the CLI (the resolved configuration,
hashed separately, says what they pass), and the registries (``hashbench.methods`` and
``hashbench.baselines`` package files, which import every method). A change outside the fingerprint
that alters numbers needs ``--rerun``.

Reads source files only; imports nothing.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

#: Packages whose modules enter a fingerprint.
BEHAVIOUR_PACKAGES = (
    "hashbench.methods",
    "hashbench.losses",
    "hashbench.models",
    "hashbench.optim",
    "hashbench.baselines",
    "hashbench.data",
)

#: Registry modules: they import every method, so they would tie every fingerprint together.
REGISTRIES = ("hashbench.methods", "hashbench.baselines")

_ROOT = Path(__file__).resolve().parents[1]  # the hashbench package folder


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` inside the ``hashbench`` package (``None``: not one)."""
    parts = name.split(".")
    if parts[0] != "hashbench":
        return None
    base = _ROOT.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _in_scope(name: str) -> bool:
    if name in REGISTRIES:
        return False
    return any(name == p or name.startswith(p + ".") for p in BEHAVIOUR_PACKAGES)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Modules named by every import statement of ``tree`` (lazy ones included)."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            # `from pkg import submodule` names a module too
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in out if module_file(m) is not None}


def source_digest(text: str, filename: str = "<source>") -> str:
    """SHA-256 of the docstring-free AST of Python source ``text`` (comments and layout do not
    count)."""
    tree = _strip_docstrings(ast.parse(text, filename=filename))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


@cache
def _module_digest(name: str) -> tuple[str, frozenset[str]]:
    """``(source_digest, modules it imports)`` of one module."""
    path = module_file(name)
    assert path is not None
    text = path.read_text(encoding="utf-8")
    imports = frozenset(
        _imports(ast.parse(text, filename=str(path)), name, path.name == "__init__.py")
    )
    return source_digest(text, str(path)), imports


def closure(modules: tuple[str, ...]) -> dict[str, str]:
    """Every in-scope module reachable from ``modules`` -> its digest (sorted by name)."""
    seen: dict[str, str] = {}
    todo = [m for m in modules if module_file(m) is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        digest, imports = _module_digest(name)
        seen[name] = digest
        todo.extend(m for m in imports if _in_scope(m) and m not in seen)
    return dict(sorted(seen.items()))


def fingerprint(modules: tuple[str, ...]) -> dict:
    """``{"sha": 16 hex digits, "modules": {name: 12 hex digits}}`` of :func:`closure`."""
    parts = closure(tuple(modules))
    sha = hashlib.sha256("\n".join(f"{k} {v}" for k, v in parts.items()).encode()).hexdigest()
    return {"sha": sha[:16], "modules": {k: v[:12] for k, v in parts.items()}}


def changed_modules(old: dict | None, new: dict) -> list[str]:
    """Modules whose digest differs between two fingerprints (added or removed ones too)."""
    before = (old or {}).get("modules") or {}
    after = new.get("modules") or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
