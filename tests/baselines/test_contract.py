"""The Hasher contract, parametrised over the registry: new baselines are checked on arrival."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

from hashbench.baselines import BASELINES, SUPERVISED, Hasher, NotFittedError, get_baseline
from hashbench.retrieval.codes import pack_bits

from .conftest import multilabel

# Small but valid settings so the whole contract suite stays fast.
FAST: dict[str, dict] = {
    "ksh": {"n_anchors": 40, "n_labeled": 200, "max_opt_iter": 30},
    "ws_ksh": {"n_anchors": 40, "n_labeled": 200, "max_opt_iter": 30},
    "sdh": {"n_anchors": 60, "sigma": None},
    "sph": {"max_iter": 300},
}
RANDOMISED = ["lsh", "itq", "sph", "itq_cca", "ksh", "sdh", "ws_ksh"]


def make(name: str, **kwargs) -> Hasher:
    return BASELINES[name](**{**FAST.get(name, {}), **kwargs})


def fit(name: str, X: np.ndarray, Y: np.ndarray, **kwargs) -> Hasher:
    return make(name, **kwargs).fit(X, Y if name in SUPERVISED else None)


def test_registry_keys_and_supervision() -> None:
    assert list(BASELINES) == [
        "lsh", "pcah", "sh", "itq", "sph", "itq_cca", "ksh", "sdh", "ws_ksh"
    ]  # fmt: skip
    assert SUPERVISED == {"itq_cca", "ksh", "sdh", "ws_ksh"}
    for name, cls in BASELINES.items():
        assert issubclass(cls, Hasher)
        assert cls.supervised == (name in SUPERVISED)
    assert get_baseline("itq") is BASELINES["itq"]
    with pytest.raises(KeyError, match="unknown baseline"):
        get_baseline("nope")


@pytest.mark.parametrize("name", list(BASELINES))
def test_constructor_is_the_config(name: str) -> None:
    cls = BASELINES[name]
    sig = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    assert [p.name for p in params][:1] == ["bits"]
    assert "random_state" in sig.parameters
    for p in params:
        assert p.kind is p.POSITIONAL_OR_KEYWORD, f"{name}: no *args/**kwargs ({p.name})"
        assert p.default is not p.empty, f"{name}.{p.name} has no default"
        assert p.name in hints, f"{name}.{p.name} has no type hint"
    h = cls()
    assert h.bits == 32 and h.random_state == 0
    assert repr(h).startswith(cls.__name__ + "(")


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("bits", [0, 7, 12, -8, 8.0, True])
def test_bad_bits_rejected_at_construction(name: str, bits) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        BASELINES[name](bits=bits)


@pytest.mark.parametrize("name", list(BASELINES))
def test_unfitted_use_is_a_clear_error(name: str, small_data) -> None:
    X, _ = small_data
    h = make(name, bits=8)
    for method in (h.project, h.encode):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            method(X)
    assert issubclass(NotFittedError, RuntimeError)


@pytest.mark.parametrize("name", list(BASELINES))
def test_fit_project_encode_shapes(name: str, small_data) -> None:
    X, Y = small_data
    h = make(name, bits=16)
    before = set(vars(h))
    assert h.fit(X, Y if name in SUPERVISED else None) is h
    new = set(vars(h)) - before
    assert new and all(a.endswith("_") for a in new), f"fitted state must end with '_': {new}"
    P = h.project(X[:37])
    assert P.shape == (37, 16) and P.dtype == np.float32
    assert np.isfinite(P).all()
    C = h.encode(X[:37])
    assert C.shape == (37, 2) and C.dtype == np.uint8
    np.testing.assert_array_equal(C, pack_bits(P >= 0))
    # float64 / integer / torch inputs are accepted and give the same codes as float32
    np.testing.assert_array_equal(h.encode(X[:37].astype(np.float64)), C)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(h.encode(torch.from_numpy(X[:37])), C)
    # bits are not all constant on the training data
    bits = np.unpackbits(h.encode(X), axis=1)
    assert (bits.min(axis=0) != bits.max(axis=0)).sum() >= 8


@pytest.mark.parametrize("name", list(BASELINES))
def test_wrong_feature_width_is_a_clear_error(name: str, small_data) -> None:
    X, Y = small_data
    h = fit(name, X, Y, bits=8)
    with pytest.raises(ValueError, match=rf"expected {X.shape[1]}, got {X.shape[1] + 1}"):
        h.project(np.hstack([X[:5], X[:5, :1]]))
    with pytest.raises(ValueError, match="2-d"):
        h.encode(X[0])
    with pytest.raises(ValueError, match="NaN"):
        h.encode(np.full((2, X.shape[1]), np.nan, dtype=np.float32))


@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_supervised_need_multi_hot_labels(name: str, small_data) -> None:
    X, Y = small_data
    with pytest.raises(ValueError, match="supervised and needs labels"):
        make(name, bits=8).fit(X)
    with pytest.raises(ValueError, match="one-hot encode"):
        make(name, bits=8).fit(X, Y.argmax(axis=1))
    with pytest.raises(ValueError, match="rows"):
        make(name, bits=8).fit(X, Y[:-1])
    with pytest.raises(ValueError, match="multi-hot"):
        make(name, bits=8).fit(X, Y * 2)


@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_supervised_accept_multi_label(name: str) -> None:
    X, Y = multilabel()
    assert (Y.sum(axis=1) > 1).any()
    h = make(name, bits=16).fit(X, Y)
    assert h.encode(X).shape == (X.shape[0], 2)
    h_bool = make(name, bits=16).fit(X, Y.astype(bool))
    np.testing.assert_array_equal(h_bool.encode(X), h.encode(X))


@pytest.mark.parametrize("name", list(BASELINES))
def test_determinism_under_random_state(name: str, small_data) -> None:
    X, Y = small_data
    a = fit(name, X, Y, bits=16, random_state=3)
    b = fit(name, X, Y, bits=16, random_state=3)
    np.testing.assert_array_equal(a.project(X), b.project(X))
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    if name in RANDOMISED:
        c = fit(name, X, Y, bits=16, random_state=4)
        assert not np.array_equal(a.project(X), c.project(X))


@pytest.mark.parametrize("name", ["pcah", "itq", "itq_cca"])
def test_linear_methods_need_enough_dimensions(name: str) -> None:
    X = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[np.arange(50) % 2]
    if name == "itq_cca":  # CCA directions beyond the feature width do not exist either
        h = make(name, bits=8).fit(X, Y)  # ... but are zero-padded, as the authors' cca.m
        assert np.allclose(h.cca_components_[:, 1:], 0.0)
        return
    with pytest.raises(ValueError, match="at least 8 feature dimensions"):
        make(name, bits=8).fit(X)


@pytest.mark.filterwarnings(
    "ignore:SpH. overlap tolerances"
)  # 16 spheres cannot be independent in 3-d
def test_sh_lsh_sph_work_with_fewer_dimensions_than_bits() -> None:
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    for name in ("sh", "lsh", "sph"):
        h = make(name, bits=16).fit(X)
        assert h.encode(X).shape == (200, 2)
