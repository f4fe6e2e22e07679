"""Composite's spec parser / serialiser (hashbench/methods/composite_spec.py)."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import hashbench.methods.composite as composite
from hashbench.losses import (
    TERMS,
    ClassSeparationLoss,
    ContrastiveLoss,
    KLSimilarityLoss,
    PairwiseLikelihoodLoss,
    QuantizationLoss,
    ScheduledTanh,
    Term,
)
from hashbench.methods.composite_spec import (
    WeightedTerm,
    build_module,
    coerce_terms,
    module_spec,
    spec_or_object,
    term_names,
    term_specs,
)


class ScaledTerm(Term):
    """Test term: ``scale * mean(h)``; keeps its argument under its own name."""

    inputs = ("h",)
    equation = "test"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, h):
        return self.scale * h.mean()


class HiddenArgTerm(ScaledTerm):
    """Keeps its argument under another name: no spec."""

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__(2.0 * factor)


def test_module_spec_rebuilds_terms() -> None:
    spec = module_spec(PairwiseLikelihoodLoss(scale=0.25, reduction="sum"))
    assert spec == {
        "class_path": "hashbench.losses.similarity.PairwiseLikelihoodLoss",
        "init_args": {"scale": 0.25, "reduction": "sum"},
    }
    assert module_spec(ScaledTerm(3.0))["init_args"] == {"scale": 3.0}
    with pytest.raises(ValueError, match="keeps no attribute 'factor'"):
        module_spec(HiddenArgTerm(1.0))


@pytest.mark.parametrize("key", sorted(TERMS))
def test_every_registered_term_round_trips(key: str) -> None:
    term = TERMS[key]()
    spec = module_spec(term)
    rebuilt = build_module(spec, Term, "test")
    assert type(rebuilt) is type(term) and module_spec(rebuilt) == spec


def test_pairwise_terms_keep_their_config_keys() -> None:
    """The pairwise base adds no constructor argument: the specs are the terms' own arguments."""
    assert module_spec(ClassSeparationLoss(0.5))["init_args"] == {"between_weight": 0.5}
    assert module_spec(KLSimilarityLoss(2.0))["init_args"] == {"temperature": 2.0}
    assert module_spec(ContrastiveLoss(margin=3.0, distance="l1"))["init_args"] == {
        "margin": 3.0,
        "distance": "l1",
        "reduction": "mean",
    }


def test_schedule_step_is_not_configuration() -> None:
    schedule = ScheduledTanh(beta0=1.0, schedule="power", gamma=0.1)
    schedule.set_step(7)
    spec = module_spec(schedule)
    assert spec["class_path"] == "hashbench.losses.relaxation.ScheduledTanh"
    assert "step" not in spec["init_args"]


def test_build_module_from_object_mapping_and_registry_key() -> None:
    q = QuantizationLoss()
    assert build_module(q, Term, "t") is q
    built = build_module(
        {"class_path": "quantization", "init_args": {"reduction": "sum"}}, Term, "t"
    )
    assert isinstance(built, QuantizationLoss) and built.reduction == "sum"
    with pytest.raises(ValueError, match="t: class_path 'torch.nn.Linear' is not a Term"):
        build_module({"class_path": "torch.nn.Linear"}, Term, "t")
    with pytest.raises(ValueError, match="cannot build QuantizationLoss"):
        build_module({"class_path": "quantization", "init_args": {"beta": 1}}, Term, "t")
    with pytest.raises(ValueError, match="must be a Term or a mapping"):
        build_module(3, Term, "t")


def test_coerce_terms_default_mappings_and_errors() -> None:
    default = coerce_terms(None)
    assert [type(w.term) for w in default] == [PairwiseLikelihoodLoss, QuantizationLoss]
    assert [w.weight for w in default] == [1.0, 0.002]
    out = coerce_terms(
        [
            {"term": {"class_path": "hashbench.losses.QuantizationLoss"}, "weight": 2},
            WeightedTerm(ScaledTerm(2.0), 0.5, "s"),
        ]
    )
    assert isinstance(out[0].term, QuantizationLoss) and out[0].weight == 2.0
    assert out[1].name == "s" and out[1].term.scale == 2.0
    with pytest.raises(ValueError, match="list of"):
        coerce_terms({"term": {}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected the keys"):
        coerce_terms([{"term": {"class_path": "quantization"}, "wieght": 1.0}])
    with pytest.raises(ValueError, match="finite"):
        coerce_terms([WeightedTerm(QuantizationLoss(), float("inf"))])
    with pytest.raises(ValueError, match="at least one term"):
        coerce_terms([])


def test_term_names_registry_keys_and_repeats() -> None:
    terms = [
        WeightedTerm(QuantizationLoss()),
        WeightedTerm(QuantizationLoss()),
        WeightedTerm(ScaledTerm()),
        WeightedTerm(QuantizationLoss(), name="q"),
    ]
    assert term_names(terms) == ["quantization", "quantization_2", "ScaledTerm", "q"]
    with pytest.raises(ValueError, match="identifier"):
        term_names([WeightedTerm(QuantizationLoss(), name="not ok")])


def test_term_specs_are_plain_data_or_the_object_with_a_warning() -> None:
    weighted = [WeightedTerm(QuantizationLoss(), 0.5, "q"), WeightedTerm(HiddenArgTerm(), 1.0)]
    objective = [w.term for w in weighted]
    with pytest.warns(UserWarning, match="keeps the object itself"):
        specs = term_specs(objective, [0.5, 1.0], weighted)
    assert specs[0] == {
        "term": {
            "class_path": "hashbench.losses.constraints.QuantizationLoss",
            "init_args": {"reduction": "mean"},
        },
        "weight": 0.5,
        "name": "q",
    }
    assert specs[1]["term"] is objective[1] and specs[1]["name"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert spec_or_object(QuantizationLoss()) == module_spec(QuantizationLoss())


def test_composite_keeps_its_class_path_and_arguments() -> None:
    """Configs name ``hashbench.methods.composite.Composite``; its arguments are config keys."""
    cls = composite.Composite
    assert f"{cls.__module__}.{cls.__qualname__}" == "hashbench.methods.composite.Composite"
    assert composite.WeightedTerm is WeightedTerm and composite.module_spec is module_spec
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    assert params == [
        "bits",
        "backbone",
        "pretrained",
        "activation",
        "terms",
        "classifier",
        "num_classes",
        "tanh_beta_schedule",
        "optim",
        "ties",
    ]


def test_composite_objective_is_built_from_specs() -> None:
    model = composite.Composite(
        bits=8,
        terms=[{"term": {"class_path": "quantization", "init_args": {"reduction": "sum"}}}],
    )
    assert model.hparams["terms"] == [
        {
            "term": {
                "class_path": "hashbench.losses.constraints.QuantizationLoss",
                "init_args": {"reduction": "sum"},
            },
            "weight": 1.0,
            "name": None,
        }
    ]
    h = torch.tensor([[0.5, -2.0]])
    assert model.objective[0](h=h).item() == pytest.approx(0.25 + 1.0)
