"""Composite: objective assembled from weighted library terms, configs, errors, checkpoints."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import yaml

from hashbench.cli import main
from hashbench.losses import (
    BitBalanceSumLoss,
    PairwiseLikelihoodLoss,
    QuantizationLoss,
    ReconstructionLoss,
    ScheduledTanh,
    SmoothQuantizationLoss,
    SoftmaxLoss,
    Term,
)
from hashbench.methods.composite import Composite, WeightedTerm
from hashbench.methods.composite_spec import module_spec
from tests.fixtures import fixture_data_args, quick_trainer_args

REPO = Path(__file__).resolve().parents[2]


def _batch(n: int = 10, classes: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.eye(classes)[torch.randint(0, classes, (n,), generator=g)]
    return {"image": images, "label": labels, "index": torch.arange(100, 100 + n)}


NO_LOGGER = ["--trainer.logger", "false"]


class RecordingTerm(Term):
    """Test term: ``scale * mean(logits)``, keeping what it was called with."""

    inputs = ("logits", "labels")
    optional_inputs = ("b",)
    equation = "test"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.seen: dict = {}

    def forward(self, logits, labels, b=None):
        self.seen = {"logits": logits, "labels": labels, "b": b}
        return self.scale * logits.mean()


# -- slow references -----------------------------------------------------------------------------
def _dpsh_reference(h: torch.Tensor, labels: torch.Tensor, eta: float) -> float:
    """DPSH written with loops: mean over ordered pairs i != j, quantisation mean over images."""
    n = len(h)
    pairs = []
    for i, j in itertools.permutations(range(n), 2):
        s = float((labels[i] * labels[j]).sum() > 0)
        theta = 0.5 * float(h[i] @ h[j])
        pairs.append(math.log1p(math.exp(theta)) - s * theta)
    quant = []
    for i in range(n):
        b = [1.0 if float(v) >= 0 else -1.0 for v in h[i]]
        quant.append(sum((float(v) - bb) ** 2 for v, bb in zip(h[i], b, strict=True)))
    return sum(pairs) / len(pairs) + eta * sum(quant) / n


def _dhn_reference(h: torch.Tensor, labels: torch.Tensor, lam: float) -> float:
    n = len(h)
    pairs = []
    for i, j in itertools.permutations(range(n), 2):
        s = float((labels[i] * labels[j]).sum() > 0)
        ip = float(h[i] @ h[j])
        pairs.append(math.log1p(math.exp(ip)) - s * ip)
    quant = [sum(math.log(math.cosh(abs(float(v)) - 1.0)) for v in h[i]) for i in range(n)]
    return sum(pairs) / len(pairs) + lam * sum(quant) / n


# -- objective -----------------------------------------------------------------------------------
def test_objective_is_the_hand_summed_weighted_terms() -> None:
    torch.manual_seed(0)
    terms = [
        WeightedTerm(PairwiseLikelihoodLoss(scale=0.5), 1.0),
        WeightedTerm(QuantizationLoss(), 0.3),
        WeightedTerm(BitBalanceSumLoss(), 0.7, name="balance"),
        WeightedTerm(QuantizationLoss(reduction="sum"), -0.01),
    ]
    model = Composite(bits=16, terms=terms)
    batch = _batch()
    ctx = model.context(batch)
    out = model.objective_terms(ctx)
    h = model(batch["image"])
    torch.testing.assert_close(ctx["h"], h)
    manual = {
        "pairwise_likelihood": PairwiseLikelihoodLoss(scale=0.5)(h=h, labels=batch["label"]),
        "quantization": QuantizationLoss()(h=h),
        "balance": BitBalanceSumLoss()(h=h),
        "quantization_2": QuantizationLoss(reduction="sum")(h=h),
    }
    assert list(out) == ["loss", *manual]
    for name, value in manual.items():
        torch.testing.assert_close(out[name], value)
    weights = [1.0, 0.3, 0.7, -0.01]
    total = sum(w * v for w, v in zip(weights, manual.values(), strict=True))
    torch.testing.assert_close(out["loss"], total)
    out["loss"].backward()  # differentiable end to end
    assert model.hash_head.linear.weight.grad is not None


def test_default_objective_is_dpsh_against_loop_reference() -> None:
    model = Composite(bits=16)  # terms=None: DPSH, eta / N = 0.002
    batch = _batch(n=9)
    h = model(batch["image"]).detach() * 3  # spread the outputs
    ctx = {"h": h, "labels": batch["label"]}
    got = model.objective_terms(ctx)["loss"].item()
    assert got == pytest.approx(_dpsh_reference(h, batch["label"], 0.002), rel=1e-5)


@pytest.mark.parametrize(
    "key, reference, weight", [("dpsh", _dpsh_reference, 0.002), ("dhn", _dhn_reference, 0.01)]
)
def test_paper_configs_match_loop_references(
    key, reference, weight, fashion_mnist_root: Path
) -> None:
    from hashbench.lightning_cli import HashbenchCLI

    cli = HashbenchCLI(
        args=[
            "--config",
            str(REPO / f"configs/methods/{key}.yaml"),
            "--model.init_args.bits",
            "16",
            *fixture_data_args(fashion_mnist_root),
            *NO_LOGGER,
        ],
        run=False,
    )
    model = cli.model
    assert isinstance(model, Composite)
    assert model.hash_head.activation == ("identity" if key == "dpsh" else "tanh")
    assert model.term_weights[1] == weight
    batch = _batch(n=9, seed=3)
    h = model(batch["image"]).detach() * (3 if key == "dpsh" else 1)
    got = model.objective_terms({"h": h, "labels": batch["label"]})["loss"].item()
    assert got == pytest.approx(reference(h, batch["label"], weight), rel=1e-5)


def test_sigmoid_terms_see_centred_codes() -> None:
    model = Composite(bits=8, activation="sigmoid", terms=[WeightedTerm(QuantizationLoss())])
    batch = _batch()
    out = model(batch["image"])
    assert model.threshold == 0.5 and out.min() >= 0
    h = model.context(batch)["h"]
    torch.testing.assert_close(h, 2 * out - 1)
    assert torch.equal(h >= 0, out >= 0.5)  # same bits


def test_tanh_beta_schedule_relaxes_linear_outputs() -> None:
    schedule = ScheduledTanh(beta0=1.0, schedule="step", factor=2.0, every=10)
    model = Composite(
        bits=8, tanh_beta_schedule=schedule, terms=[WeightedTerm(SmoothQuantizationLoss())]
    )
    batch = _batch()
    z = model.hash_head(model.features(batch["image"]))
    schedule.set_step(25)  # beta = 4
    torch.testing.assert_close(model(batch["image"]), torch.tanh(4.0 * z))
    torch.testing.assert_close(model.context(batch)["h"], torch.tanh(4.0 * z))
    with pytest.raises(ValueError, match="activation: identity"):
        Composite(bits=8, activation="tanh", tanh_beta_schedule=ScheduledTanh())


# -- logits / inputs -----------------------------------------------------------------------------
def test_term_needing_logits_gets_them() -> None:
    recorder = RecordingTerm(scale=2.0)
    model = Composite(
        bits=16,
        num_classes=4,
        terms=[WeightedTerm(recorder, 0.5), WeightedTerm(SoftmaxLoss(), 1.0)],
    )
    assert model.use_classifier and model.classifier.out_features == 4
    batch = _batch()
    ctx = model.context(batch)
    out = model.objective_terms(ctx)
    logits = model.classifier(ctx["h"])
    torch.testing.assert_close(recorder.seen["logits"], logits)
    assert recorder.seen["labels"] is batch["label"]
    assert torch.equal(recorder.seen["b"], torch.where(ctx["h"] >= 0, 1.0, -1.0))
    ce = F.cross_entropy(logits, batch["label"].argmax(1))
    torch.testing.assert_close(out["softmax"], ce)
    torch.testing.assert_close(out["loss"], 0.5 * 2.0 * logits.mean() + ce)
    assert ctx["classifier_weight"] is model.classifier.weight
    assert ctx["weights"] == [model.hash_head.linear.weight, model.classifier.weight]


def test_classifier_is_built_from_the_datamodule_at_setup() -> None:
    model = Composite(bits=16, terms=[WeightedTerm(SoftmaxLoss())])
    assert model.use_classifier and model.classifier is None
    with pytest.raises(ValueError, match="num_classes"):
        model.context(_batch())
    model._datamodule = lambda: SimpleNamespace(num_classes=4)
    model.setup("fit")
    assert model.classifier.out_features == 4 and model.hparams["num_classes"] == 4
    assert model.objective_terms(model.context(_batch()))["loss"].isfinite()
    bad = Composite(bits=16, num_classes=3, terms=[WeightedTerm(SoftmaxLoss())])
    bad._datamodule = lambda: SimpleNamespace(num_classes=4)
    with pytest.raises(ValueError, match="4 classes"):
        bad.setup("fit")


def test_no_classifier_without_logits_terms() -> None:
    model = Composite(bits=16, num_classes=4)
    assert not model.use_classifier and model.classifier is None
    assert "logits" not in model.context(_batch())


def test_bad_objectives_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="classifier: true"):
        Composite(bits=16, classifier=False, terms=[WeightedTerm(SoftmaxLoss())])
    with pytest.raises(ValueError, match=r"needs \['x_hat'\]"):
        Composite(bits=16, terms=[WeightedTerm(ReconstructionLoss())])
    with pytest.raises(ValueError, match="at least one term"):
        Composite(bits=16, terms=[])
    with pytest.raises(ValueError, match="finite"):
        Composite(bits=16, terms=[WeightedTerm(QuantizationLoss(), float("nan"))])
    with pytest.raises(ValueError, match="other than 'loss'"):
        Composite(bits=16, terms=[WeightedTerm(QuantizationLoss(), 1.0, "loss")])
    with pytest.raises(ValueError, match="activation"):
        Composite(bits=16, activation="relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of 8"):
        Composite(bits=12)


def test_term_specs_as_mappings_and_unknown_class() -> None:
    model = Composite(
        bits=8,
        terms=[
            {
                "weight": 2.0,
                "term": {
                    "class_path": "hashbench.losses.QuantizationLoss",
                    "init_args": {"reduction": "sum"},
                },
            },
            {"term": {"class_path": "pairwise_likelihood"}},  # a hashbench.losses.TERMS key
        ],
    )
    assert isinstance(model.objective[0], QuantizationLoss)
    assert model.objective[0].reduction == "sum" and model.term_weights == [2.0, 1.0]
    assert isinstance(model.objective[1], PairwiseLikelihoodLoss)
    with pytest.raises(ValueError, match=r"NoSuchLoss.*not a Term subclass.*QuantizationLoss"):
        Composite(bits=8, terms=[{"term": {"class_path": "hashbench.losses.NoSuchLoss"}}])
    with pytest.raises(ValueError, match="torch.nn.Linear.*not a Term subclass"):
        Composite(bits=8, terms=[{"term": {"class_path": "torch.nn.Linear"}}])
    with pytest.raises(ValueError, match="cannot build QuantizationLoss"):
        Composite(
            bits=8,
            terms=[
                {
                    "term": {
                        "class_path": "hashbench.losses.QuantizationLoss",
                        "init_args": {"beta": 1},
                    }
                }
            ],
        )


# -- YAML / CLI ----------------------------------------------------------------------------------
CUSTOM = """
model:
  class_path: hashbench.methods.composite.Composite
  init_args:
    bits: 16
    activation: identity
    terms:
      - weight: 1.0
        term:
          class_path: hashbench.losses.ContrastiveLoss
          init_args: {margin: 8.0}
      - weight: 0.5
        name: cls
        term: {class_path: hashbench.losses.SoftmaxLoss}
      - weight: 0.01
        term: {class_path: hashbench.losses.L1ToBinaryLoss}
    tanh_beta_schedule:
      class_path: hashbench.losses.ScheduledTanh
      init_args: {beta0: 1.0, schedule: power, gamma: 0.1}
"""


def _write(tmp_path: Path, text: str, name: str = "method.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("key", ["composite", "dpsh", "dhn"])
def test_print_config_of_method_yaml(key: str, fashion_mnist_root: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(
            [
                "fit",
                "--config",
                str(REPO / f"configs/methods/{key}.yaml"),
                *fixture_data_args(fashion_mnist_root),
                "--print_config",
            ]
        )
    assert e.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    model = printed["model"]
    assert model["class_path"] == "hashbench.methods.composite.Composite"
    paths = [t["term"]["class_path"] for t in model["init_args"]["terms"]]
    assert paths[0] == "hashbench.losses.PairwiseLikelihoodLoss"
    assert paths[1] in (
        "hashbench.losses.QuantizationLoss",
        "hashbench.losses.SmoothQuantizationLoss",
    )


def test_custom_yaml_parses_and_instantiates(
    tmp_path: Path, fashion_mnist_root: Path, capsys
) -> None:
    from hashbench.lightning_cli import HashbenchCLI

    config = _write(tmp_path, CUSTOM)
    with pytest.raises(SystemExit) as e:
        main(
            [
                "fit",
                "--config",
                str(config),
                *fixture_data_args(fashion_mnist_root),
                "--print_config",
            ]
        )
    assert e.value.code == 0
    assert "hashbench.losses.ContrastiveLoss" in capsys.readouterr().out
    cli = HashbenchCLI(
        args=["--config", str(config), *fixture_data_args(fashion_mnist_root), *NO_LOGGER],
        run=False,
    )
    model = cli.model
    assert [type(t).__name__ for t in model.objective] == [
        "ContrastiveLoss",
        "SoftmaxLoss",
        "L1ToBinaryLoss",
    ]
    assert model.term_names == ["contrastive", "cls", "l1_to_binary"]
    assert model.term_weights == [1.0, 0.5, 0.01] and model.objective[0].margin == 8.0
    assert model.use_classifier and model.relaxation.schedule == "power"


@pytest.mark.parametrize(
    "class_path, message",
    [
        ("hashbench.losses.NoSuchLoss", "NoSuchLoss"),
        ("torch.nn.Linear", "torch.nn.Linear"),
    ],
)
def test_unknown_term_class_in_yaml_is_a_clear_error(
    class_path: str, message: str, tmp_path: Path, fashion_mnist_root: Path, capsys
) -> None:
    config = _write(tmp_path, CUSTOM.replace("hashbench.losses.ContrastiveLoss", class_path))
    argv = [
        "fit",
        "--config",
        str(config),
        *fixture_data_args(fashion_mnist_root),
        "--print_config",
    ]
    assert main(argv) == 2  # bad input: one readable block, no traceback (docs: exit codes)
    err = capsys.readouterr().err
    assert message in err and "terms" in err


# -- checkpoints ---------------------------------------------------------------------------------
def _assert_same_objective(a: Composite, b: Composite) -> None:
    assert [type(t) for t in a.objective] == [type(t) for t in b.objective]
    assert [module_spec(t) for t in a.objective] == [module_spec(t) for t in b.objective]
    assert a.term_weights == b.term_weights and a.term_names == b.term_names
    assert a.hash_head.activation == b.hash_head.activation


def test_checkpoint_round_trip_through_the_cli(tmp_path: Path, fashion_mnist_root: Path) -> None:
    from hashbench.lightning_cli import HashbenchCLI

    config = _write(tmp_path, CUSTOM)
    method = ["--config", str(config)]
    assert (
        main(
            ["fit", *method, *fixture_data_args(fashion_mnist_root), *quick_trainer_args(tmp_path)]
        )
        == 0
    )
    ckpt = tmp_path.rglob("last.ckpt").__next__()
    stored = torch.load(ckpt, weights_only=True)  # plain-data hyper-parameters only
    assert stored["hyper_parameters"]["num_classes"] == 10
    restored = Composite.load_from_checkpoint(ckpt)
    reference = HashbenchCLI(
        args=["--config", str(config), *fixture_data_args(fashion_mnist_root), *NO_LOGGER],
        run=False,
    ).model
    _assert_same_objective(restored, reference)
    assert restored.classifier.out_features == 10
    assert restored.relaxation.schedule == "power" and restored.relaxation.gamma == 0.1
    for k, v in restored.state_dict().items():
        torch.testing.assert_close(v, stored["state_dict"][k])
    assert (
        main(
            [
                "test",
                *method,
                *fixture_data_args(fashion_mnist_root),
                *quick_trainer_args(tmp_path),
                "--ckpt_path",
                str(ckpt),
            ]
        )
        == 0
    )


def test_checkpoint_round_trip_from_python(tmp_path: Path, fashion_mnist_root: Path) -> None:
    import lightning as L

    from hashbench.data.fashion_mnist import FashionMNISTDataModule

    terms = [
        WeightedTerm(PairwiseLikelihoodLoss(scale=0.25), 1.0, "pairs"),
        WeightedTerm(SoftmaxLoss(), 0.2),
        WeightedTerm(QuantizationLoss(reduction="sum"), 0.003),
    ]
    model = Composite(bits=16, activation="tanh", terms=terms)
    dm = FashionMNISTDataModule(
        root=str(fashion_mnist_root), protocol="tiny", download=False, batch_size=32
    )
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    hp = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hp["terms"][0] == {
        "term": {
            "class_path": "hashbench.losses.similarity.PairwiseLikelihoodLoss",
            "init_args": {"scale": 0.25, "reduction": "mean"},
        },
        "weight": 1.0,
        "name": "pairs",
    }
    restored = Composite.load_from_checkpoint(path)
    _assert_same_objective(restored, model)
    images = _batch()["image"]
    torch.testing.assert_close(restored.eval()(images), model.eval()(images))
