"""One registry mechanism for every named family of hashbench (methods, datasets, baselines, ...).

A :class:`Registry` maps a name to an object. An entry is either the object itself or a *lazy
path*, a string ``"package.module:Attr"`` (or ``"package.module.Attr"``) imported on the first
:meth:`~Registry.get`, so registering a family never imports its heavy modules. A registry is a
read-only :class:`~collections.abc.Mapping` from name to object: ``name in REG`` and iteration
(registration order) never import anything; ``REG[name]``, ``values()`` and ``items()`` resolve.

An unknown name raises :class:`UnknownNameError` (a ``KeyError`` and a ``ValueError``), whose
message names the registry's kind and lists the valid names::

    METHODS = Registry("method", {"dsh": "hashbench.methods.dsh.DSH"})

    @METHODS.register("dsh2")
    class DSH2(HashingMethod): ...

    METHODS.get("nope")  # UnknownNameError: unknown method 'nope'; registered: dsh, dsh2

This module sits at the bottom of the layers (standard library only): every package may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")

_MISSING: Any = object()


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; the message lists the registered ones.

    Subclasses both ``KeyError`` (the mapping protocol) and ``ValueError`` (a bad argument value),
    so callers written against either keep working.

    Args:
        kind: what the registry holds (``"method"``, ``"dataset"``, ...).
        name: the name that was looked up.
        valid: the registered names.
    """

    def __init__(self, kind: str, name: object, valid: tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.valid = valid
        choices = ", ".join(valid) if valid else "(none)"
        super().__init__(f"unknown {kind} {name!r}; registered: {choices}")

    def __str__(self) -> str:
        # KeyError.__str__ would quote the message (repr of the key).
        return str(self.args[0])


def _split_path(path: str) -> tuple[str, str]:
    """``"pkg.mod:Attr"`` or ``"pkg.mod.Attr"`` -> ``("pkg.mod", "Attr")``."""
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr or ":" in attr:
        raise ValueError(
            f"lazy path {path!r}: expected 'package.module:Attr' or 'package.module.Attr'"
        )
    return module, attr


def _import_path(path: str) -> Any:
    """The object at lazy ``path`` (``Attr`` may be dotted: ``"pkg.mod:Outer.Inner"``)."""
    module, attr = _split_path(path)
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(
                f"cannot import {attr!r} from {module!r} (lazy path {path!r})"
            ) from None
    return obj


class Registry(Mapping[str, T], Generic[T]):
    """Names -> objects (or lazy import paths of objects) of one kind.

    Args:
        kind: what the registry holds, used in error messages (``"method"``, ``"dataset"``,
            ``"baseline"``, ``"backbone"``, ``"loss term"``, ``"protocol"``, ...).
        entries: initial ``name -> object or lazy path`` entries, registered in order.
    """

    def __init__(self, kind: str, entries: Mapping[str, T | str] | None = None) -> None:
        self.kind = kind
        self._objects: dict[str, T] = {}
        self._paths: dict[str, str] = {}
        self._order: list[str] = []
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T | str) -> T | str: ...

    def register(self, name: str, obj: Any = _MISSING) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator that registers its target.

        A string ``obj`` is a lazy path (``"package.module:Attr"`` or ``"package.module.Attr"``),
        imported on the first :meth:`get`; any other object is stored as is.

        Args:
            name: the new name.
            obj: the object or its lazy path.

        Returns:
            ``obj`` (or the decorator, which returns its target unchanged).

        Raises:
            ValueError: ``name`` is already registered, or a lazy path is malformed.
        """
        if obj is _MISSING:

            def decorator(target: T) -> T:
                self.register(name, target)
                return target

            return decorator
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._order:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if isinstance(obj, str):
            _split_path(obj)  # fail now on a malformed path, not at the first lookup
            self._paths[name] = obj
        else:
            self._objects[name] = obj
        self._order.append(name)
        return obj

    def get(self, name: str, default: Any = _MISSING) -> T:  # type: ignore[override]
        """The object registered under ``name``, imported now if it was registered lazily.

        Args:
            name: a registered name.
            default: returned for an unknown name instead of raising (``Mapping.get``).

        Raises:
            UnknownNameError: ``name`` is not registered (and no ``default`` was given).
        """
        if name not in self:
            if default is not _MISSING:
                return default
            raise UnknownNameError(self.kind, name, self.names())
        if name in self._objects:
            return self._objects[name]
        obj = _import_path(self._paths[name])
        self._objects[name] = obj
        return obj

    def path(self, name: str) -> str | None:
        """The lazy path ``name`` was registered with (``None`` if registered as an object).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        if name not in self:
            raise UnknownNameError(self.kind, name, self.names())
        return self._paths.get(name)

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._order))

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self._order)!r})"
