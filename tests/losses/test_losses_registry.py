"""Generic checks over the TERMS / RELAXATIONS registries: every term, the day it is added."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch

import hashbench.losses as L
from hashbench.losses import RELAXATIONS, TERMS, VOCABULARY, Term

KEYS = sorted(TERMS)
PAIRED = [k for k in KEYS if "h_other" in TERMS[k].optional_inputs]
DIFFERENTIABLE = ("h", "h_other", "logits", "x_hat")


def test_registry_covers_every_survey_equation():
    term_eqs = {cls.equation for cls in TERMS.values()}
    relax_eqs = {cls.equation for cls in RELAXATIONS.values()}
    # eqs. 1-22 and 25-27 are objective terms; 23-24 are relaxations (transforms)
    assert {str(i) for i in range(1, 23)} | {"25", "26", "27"} <= term_eqs
    assert relax_eqs == {"23", "24"}
    assert {"KNN", "DHN"} <= term_eqs


def test_everything_exported():
    for cls in list(TERMS.values()) + list(RELAXATIONS.values()):
        assert getattr(L, cls.__name__) is cls
        assert cls.__name__ in L.__all__


@pytest.mark.parametrize("key", KEYS)
def test_inputs_match_forward_signature(key):
    cls = TERMS[key]
    assert issubclass(cls, Term)
    assert isinstance(cls.inputs, tuple) and cls.inputs
    assert isinstance(cls.optional_inputs, tuple)
    names = cls.inputs + cls.optional_inputs
    assert set(names) <= set(VOCABULARY), set(names) - set(VOCABULARY)
    assert len(set(names)) == len(names)
    params = list(inspect.signature(cls.forward).parameters.values())[1:]
    assert [p.name for p in params] == list(names)
    for p in params:
        assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if p.name in cls.optional_inputs:
            assert p.default is None, f"optional input {p.name} must default to None"


@pytest.mark.parametrize("key", KEYS + [f"relax:{k}" for k in sorted(RELAXATIONS)])
def test_constructor_is_a_typed_config(key):
    cls = RELAXATIONS[key[6:]] if key.startswith("relax:") else TERMS[key]
    sig = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    params = list(sig.parameters.values())[1:]
    for p in params:
        assert p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL), f"{cls.__name__}: no **kwargs"
        assert p.default is not p.empty, f"{cls.__name__}.{p.name} needs a default"
        assert p.name in hints, f"{cls.__name__}.{p.name} needs a type hint"
    doc = inspect.getdoc(cls) or ""
    if params:
        assert "Args:" in doc
        for p in params:
            assert f"{p.name}:" in doc, f"{cls.__name__} docstring lacks Args entry for {p.name}"
    cls()  # defaults construct


@pytest.mark.parametrize("key", KEYS)
def test_docstring_has_formula_source_and_reduction(key):
    doc = inspect.getdoc(TERMS[key]) or ""
    assert "``L" in doc or "L_" in doc or "L =" in doc, "formula missing"
    assert any(y in doc for y in ("19", "20")), "source (year) missing"
    assert "Reduction" in doc


@pytest.mark.parametrize(("key", "other"), [(k, False) for k in KEYS] + [(k, True) for k in PAIRED])
def test_finite_scalar_and_backprop(key, other, term_factory, context):
    term = term_factory(key)
    ctx = context(seed=1, other=other)
    for k in DIFFERENTIABLE:
        if k in ctx:
            ctx[k] = ctx[k].clone().requires_grad_(True)
    ctx["weights"] = [w.clone().requires_grad_(True) for w in ctx["weights"]]
    kwargs = term.gather(ctx)
    assert set(term.inputs) <= set(kwargs)
    out = term(**kwargs)
    assert out.ndim == 0 and torch.isfinite(out)
    out.backward()
    grads = [ctx[k].grad for k in DIFFERENTIABLE if k in kwargs]
    if "weights" in kwargs:
        grads += [w.grad for w in kwargs["weights"]]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("key", KEYS)
def test_batch_of_one_item(key, term_factory, context):
    """A batch without pairs: finite value (0 for pairwise terms) and finite gradients."""
    term = term_factory(key)
    ctx = context(n=1, seed=4)
    ctx["h"] = ctx["h"].clone().requires_grad_(True)
    ctx["logits"] = ctx["logits"].clone().requires_grad_(True)
    out = term(**term.gather(ctx))
    assert out.ndim == 0 and torch.isfinite(out)
    if "h_other" in term.optional_inputs:
        assert out.item() == 0.0
    if out.requires_grad:
        out.backward()
        for k in ("h", "logits"):
            assert ctx[k].grad is None or torch.isfinite(ctx[k].grad).all()


@pytest.mark.parametrize("key", KEYS)
def test_gradcheck(key, term_factory, context):
    term = term_factory(key)
    ctx = context(n=4, q=4, c=3, seed=2, dtype=torch.float64)
    kwargs = term.gather(ctx)
    diff = [k for k in DIFFERENTIABLE if k in kwargs]
    if "weights" in kwargs:
        ws = tuple(w.clone().requires_grad_(True) for w in kwargs["weights"])

        def fn(*w):
            return term(**{**kwargs, "weights": list(w)})

        assert torch.autograd.gradcheck(fn, ws)
        return
    tensors = tuple(kwargs[k].clone().requires_grad_(True) for k in diff)

    def fn(*ts):
        return term(**{**kwargs, **dict(zip(diff, ts, strict=True))})

    assert torch.autograd.gradcheck(fn, tensors)


@pytest.mark.parametrize("key", KEYS)
def test_gather_reports_missing_inputs(key, term_factory):
    term = term_factory(key)
    with pytest.raises(KeyError, match=term.inputs[0]):
        term.gather({})


@pytest.mark.parametrize("key", KEYS)
def test_float64_and_float32_agree(key, term_factory, context):
    term = term_factory(key)
    c32 = context(seed=3)
    c64 = context(seed=3, dtype=torch.float64)
    v32 = term(**term.gather(c32))
    v64 = term(**term.gather(c64))
    torch.testing.assert_close(v32.double(), v64, rtol=1e-4, atol=1e-5)
