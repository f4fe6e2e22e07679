"""The one registry mechanism (:mod:`hashbench.registry`) and the project's registries built on it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import pytest

from hashbench.registry import Registry, UnknownNameError

# A standard-library module no test imports, so a lazy entry's import can be observed.
LAZY_MODULE = "xml.dom.pulldom"


def test_register_and_get() -> None:
    reg: Registry[int] = Registry("number")
    assert reg.register("one", 1) == 1
    reg.register("two", 2)
    assert reg.get("one") == 1
    assert reg["two"] == 2
    assert reg.path("one") is None
    assert "one" in reg and "three" not in reg and 1 not in reg and [] not in reg


def test_lazy_path_is_imported_on_first_get_only() -> None:
    sys.modules.pop(LAZY_MODULE, None)
    reg: Registry[type] = Registry("parser", {"pulldom": f"{LAZY_MODULE}:PullDOM"})
    reg.register("dotted", f"{LAZY_MODULE}.DOMEventStream")
    # registering, membership, iteration, names and path never import
    assert "pulldom" in reg and list(reg) == ["pulldom", "dotted"] and len(reg) == 2
    assert reg.names() == ("dotted", "pulldom")
    assert reg.path("pulldom") == f"{LAZY_MODULE}:PullDOM"
    assert reg.path("dotted") == f"{LAZY_MODULE}.DOMEventStream"
    assert LAZY_MODULE not in sys.modules
    cls = reg.get("pulldom")
    assert LAZY_MODULE in sys.modules
    module = sys.modules[LAZY_MODULE]
    assert cls is module.PullDOM
    assert reg["dotted"] is module.DOMEventStream
    assert reg.get("pulldom") is cls
    assert reg.path("pulldom") == f"{LAZY_MODULE}:PullDOM"  # still known once resolved


def test_lazy_path_errors() -> None:
    reg: Registry[object] = Registry("thing")
    with pytest.raises(ValueError, match="lazy path"):
        reg.register("bad", "no_dots_or_colon")
    assert "bad" not in reg
    reg.register("missing", "json:NoSuchThing")
    with pytest.raises(ImportError, match="NoSuchThing"):
        reg.get("missing")
    reg.register("nomodule", "hashbench.no_such_module:X")
    with pytest.raises(ImportError):
        reg.get("nomodule")


def test_decorator_form() -> None:
    reg: Registry[type] = Registry("widget")

    @reg.register("plain")
    class Plain:
        pass

    assert Plain.__name__ == "Plain"  # the decorator returns its target
    assert reg.get("plain") is Plain
    assert reg.path("plain") is None


def test_duplicate_name_is_an_error() -> None:
    reg: Registry[int] = Registry("number", {"one": 1})
    with pytest.raises(ValueError, match="number 'one' is already registered"):
        reg.register("one", 11)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("one", "json:loads")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("one")(11)
    assert reg["one"] == 1


def test_unknown_name_error() -> None:
    reg: Registry[int] = Registry("number", {"two": 2, "one": 1, "three": 3})
    for lookup in (reg.get, reg.__getitem__, reg.path):
        with pytest.raises(UnknownNameError) as info:
            lookup("four")
        err = info.value
        assert isinstance(err, KeyError) and isinstance(err, ValueError)
        assert str(err) == "unknown number 'four'; registered: one, three, two"
        assert (err.kind, err.name, err.valid) == ("number", "four", ("one", "three", "two"))
    with pytest.raises(KeyError):
        reg["four"]
    with pytest.raises(ValueError, match="unknown number 'four'.*one, three, two"):
        reg.get("four")
    assert str(UnknownNameError("thing", "x", ())) == "unknown thing 'x'; registered: (none)"


def test_mapping_behaviour() -> None:
    reg: Registry[int] = Registry("number", {"b": 2, "a": 1})
    reg.register("c", "math:pi")
    assert isinstance(reg, Mapping)
    assert list(reg) == ["b", "a", "c"]  # registration order
    assert list(reg.keys()) == ["b", "a", "c"]
    assert reg.names() == ("a", "b", "c")  # sorted
    assert len(reg) == 3
    import math

    assert list(reg.values()) == [2, 1, math.pi]
    assert dict(reg.items()) == {"b": 2, "a": 1, "c": math.pi}
    assert dict(reg) == {"b": 2, "a": 1, "c": math.pi}
    assert reg.get("zzz", None) is None and reg.get("zzz", 0) == 0  # Mapping.get with a default
    assert reg.get("a", 0) == 1
    assert sorted(reg) == ["a", "b", "c"] and set(reg) == {"a", "b", "c"}
    assert "Registry('number'" in repr(reg)


def test_registry_is_the_bottom_layer() -> None:
    """``hashbench.registry`` imports no third-party package; protocols stay free of torch."""
    code = (
        "import sys\n"
        "import hashbench.registry\n"
        "print(sorted(m for m in ('numpy', 'torch', 'lightning') if m in sys.modules))\n"
        "import hashbench.data, hashbench.data.protocols\n"
        "heavy = ('torch', 'lightning', 'hashbench.data.base', 'hashbench.data.cifar10')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


def _project_registries() -> list:
    from hashbench.baselines import BASELINES
    from hashbench.data import DATAMODULES
    from hashbench.data.protocols import PROTOCOLS
    from hashbench.losses import RELAXATIONS, TERMS
    from hashbench.methods import METHODS
    from hashbench.models.backbones import BACKBONES

    return [
        pytest.param(METHODS, "method", id="METHODS"),
        pytest.param(DATAMODULES, "dataset", id="DATAMODULES"),
        pytest.param(BASELINES, "baseline", id="BASELINES"),
        pytest.param(BACKBONES, "backbone", id="BACKBONES"),
        pytest.param(TERMS, "loss term", id="TERMS"),
        pytest.param(RELAXATIONS, "relaxation", id="RELAXATIONS"),
        pytest.param(PROTOCOLS, "protocol", id="PROTOCOLS"),
    ]


@pytest.mark.parametrize(("registry", "kind"), _project_registries())
def test_every_project_registry_resolves(registry: Registry, kind: str) -> None:
    assert isinstance(registry, Registry)
    assert registry.kind == kind
    assert len(registry) > 0
    for name in registry:
        assert registry.get(name) is not None
    with pytest.raises(UnknownNameError, match=f"unknown {kind} 'no-such-name'"):
        registry.get("no-such-name")
