"""DHIH (seed 004): the margin loss against plain-loop references, its limits, gradients, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hashbench.methods.dhih import DHIH, margin_logits


def _data(n: int = 6, q: int = 8, c: int = 4, multi: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.tanh(torch.randn(n, q, generator=g, dtype=torch.float64))
    w = torch.randn(c, q, generator=g, dtype=torch.float64)
    y = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        y[i, i % c] = 1
        if multi and i % 2 == 0:
            y[i, (i + 1) % c] = 1
    return h, w, y


def _psi(theta: float, m: float) -> float:
    k = math.floor(theta * m / math.pi)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def _ref_logits(h, w, y, s, m, kind="cosine", normalize=True) -> list[list[float]]:
    out = []
    for i in range(h.shape[0]):
        row = []
        hn = math.sqrt(sum(float(v) ** 2 for v in h[i]))
        for c in range(w.shape[0]):
            wn = math.sqrt(sum(float(v) ** 2 for v in w[c]))
            dot = sum(float(a) * float(b) for a, b in zip(h[i], w[c], strict=True))
            cos = dot / (hn * wn)
            pos = y[i, c] > 0
            if normalize:
                if not pos:
                    v = cos
                elif kind == "cosine":
                    v = cos - m
                else:
                    v = _psi(math.acos(cos), m)
            elif not pos:
                v = dot
            elif kind == "cosine":
                v = dot - m
            else:
                v = hn * wn * _psi(math.acos(cos), m)
            row.append(s * v)
        out.append(row)
    return out


def _ref_softmax(logits, y) -> float:
    total = 0.0
    for row, lab in zip(logits, y, strict=True):
        t = int(lab.argmax())
        total += -(row[t] - math.log(sum(math.exp(v) for v in row)))
    return total / len(logits)


def _ref_bce(logits, y) -> float:
    total = 0.0
    for row, lab in zip(logits, y, strict=True):
        for v, t in zip(row, lab, strict=True):
            p = 1 / (1 + math.exp(-v))
            total += -(float(t) * math.log(p) + (1 - float(t)) * math.log(1 - p))
    return total / len(logits)


def _ref_quant(h) -> float:
    total = 0.0
    for row in h:
        for v in row:
            b = 1.0 if v >= 0 else -1.0
            total += (float(v) - b) ** 2
    return total / len(h)


def _ref_balance(h) -> float:
    n, q = h.shape
    return sum((sum(float(h[i, k]) for i in range(n)) / n) ** 2 for k in range(q))


def _model(c: int = 4, **kw) -> DHIH:
    return DHIH(bits=8, num_classes=c, **kw).double()


@pytest.mark.parametrize("kind,m", [("cosine", 0.3), ("angular", 2.0), ("angular", 3.5)])
@pytest.mark.parametrize("normalize", [True, False])
def test_logits_match_reference(kind: str, m: float, normalize: bool) -> None:
    h, w, y = _data(multi=True)
    got = margin_logits(h, w, y, 5.0, m, kind, normalize)
    torch.testing.assert_close(
        got, torch.tensor(_ref_logits(h, w, y, 5.0, m, kind, normalize), dtype=torch.float64)
    )


@pytest.mark.parametrize("kind,m", [("cosine", 0.25), ("angular", 2.0)])
def test_single_label_loss_matches_reference(kind: str, m: float) -> None:
    h, w, y = _data()
    model = _model(
        scale=7.0, margin=m, margin_type=kind, quantization_weight=0.3, balance_weight=0.2
    )
    model.multi_label = False
    with torch.no_grad():
        model.class_weight.copy_(w)
    out = model.loss(h, y)
    cls = _ref_softmax(_ref_logits(h, w, y, 7.0, m, kind), y)
    expected = cls + 0.3 * _ref_quant(h) + 0.2 * _ref_balance(h)
    assert out["classification"].item() == pytest.approx(cls, rel=1e-10)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-10)


def test_multi_label_loss_matches_reference() -> None:
    h, w, y = _data(multi=True)
    model = _model(scale=4.0, margin=0.2, quantization_weight=0.1)
    with torch.no_grad():
        model.class_weight.copy_(w)
    out = model.loss(h, y)  # multi_label None: detected from the batch
    cls = _ref_bce(_ref_logits(h, w, y, 4.0, 0.2), y)
    assert out["classification"].item() == pytest.approx(cls, rel=1e-10)
    assert out["loss"].item() == pytest.approx(cls + 0.1 * _ref_quant(h), rel=1e-10)
    assert "balance" not in out
    model.multi_label = True  # forced BCE on single-label data too
    h1, w1, y1 = _data()
    with torch.no_grad():
        model.class_weight.copy_(w1)
    cls1 = _ref_bce(_ref_logits(h1, w1, y1, 4.0, 0.2), y1)
    assert model.loss(h1, y1)["classification"].item() == pytest.approx(cls1, rel=1e-10)


def test_no_margin_no_normalisation_is_plain_softmax() -> None:
    h, w, y = _data(n=9, c=5)
    model = _model(c=5, scale=1.0, margin=0.0, normalize=False, quantization_weight=0.0)
    with torch.no_grad():
        model.class_weight.copy_(w)
    expected = F.cross_entropy(h @ w.T, y.argmax(1))
    torch.testing.assert_close(model.loss(h, y)["loss"], expected)
    # the angular multiplier 1 is no margin either
    a = margin_logits(h, w, y, 3.0, 1.0, "angular", True)
    torch.testing.assert_close(a, margin_logits(h, w, y, 3.0, 0.0, "cosine", True))


@pytest.mark.parametrize("kind,m", [("cosine", 0.3), ("angular", 2.0)])
@pytest.mark.parametrize("multi", [False, True])
def test_margin_raises_loss_of_a_correct_example(kind: str, m: float, multi: bool) -> None:
    w = torch.eye(3, 4, dtype=torch.float64)
    h = torch.tensor([[0.9, 0.2, -0.1, 0.3]], dtype=torch.float64)  # closest to class 0
    y = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    base = margin_logits(h, w, y, 10.0, 0.0 if kind == "cosine" else 1.0, kind)
    assert base.argmax().item() == 0  # correctly classified without margin
    with_margin = margin_logits(h, w, y, 10.0, m, kind)
    loss = F.binary_cross_entropy_with_logits if multi else F.cross_entropy
    target = y if multi else y.argmax(1)
    assert loss(with_margin, target) > loss(base, target)


@pytest.mark.parametrize("kind,m", [("cosine", 0.35), ("angular", 2.0), ("angular", 4.0)])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("multi", [False, True])
def test_gradcheck_float64(kind: str, m: float, normalize: bool, multi: bool) -> None:
    h, w, y = _data(n=4, q=6, c=3, multi=multi, seed=3)
    model = _model(
        c=3,
        scale=3.0,
        margin=m,
        margin_type=kind,
        normalize=normalize,
        multi_label=multi,
        quantization_weight=0.1,
        balance_weight=0.1,
    )

    def f(hh, ww):
        logits = margin_logits(hh, ww, y, 3.0, m, kind, normalize)
        cls = (
            model.bce(logits=logits, labels=y) if multi else model.softmax(logits=logits, labels=y)
        )
        return cls + 0.1 * model.quantization(h=hh) + 0.1 * model.balance(h=hh)

    assert torch.autograd.gradcheck(
        f, (h.clone().requires_grad_(), w.clone().requires_grad_()), eps=1e-6, atol=1e-5
    )


def test_loss_is_unary() -> None:
    """Without the batch statistic (bit balance) the batch loss is the mean of per-image losses."""
    h, w, y = _data(n=8)
    model = _model(quantization_weight=0.2)
    model.multi_label = False
    with torch.no_grad():
        model.class_weight.copy_(w)
    per_image = torch.stack([model.loss(h[i : i + 1], y[i : i + 1])["loss"] for i in range(8)])
    torch.testing.assert_close(model.loss(h, y)["loss"], per_image.mean())


def test_training_step_updates_hash_layer_and_class_weights() -> None:
    torch.manual_seed(0)
    model = DHIH(bits=16, num_classes=10)
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    labels = torch.eye(10)[torch.arange(16) % 10]
    batch = {"image": images, "label": labels, "index": torch.arange(16)}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = [p.detach().clone() for p in (model.hash_head.linear.weight, model.class_weight)]
    model.training_step = DHIH.training_step.__get__(model)  # no trainer: skip logging
    model.log_dict = lambda *a, **k: None
    loss = model.training_step(batch, 0)
    loss.backward()
    opt.step()
    after = (model.hash_head.linear.weight, model.class_weight)
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="angle multiplier"):
        DHIH(margin_type="angular", margin=0.5)
    with pytest.raises(ValueError, match="scale"):
        DHIH(scale=0)
    with pytest.raises(ValueError, match="cosine margin"):
        DHIH(margin=-0.1)
    with pytest.raises(ValueError, match="num_classes"):
        DHIH(num_classes=0)
    model = DHIH()
    with pytest.raises(ValueError, match="num_classes"):
        model.loss(torch.zeros(2, 32), torch.eye(2))
    with pytest.raises(ValueError, match="multi-hot"):
        margin_logits(torch.zeros(2, 4), torch.ones(3, 4), torch.eye(2), 1.0, 0.0)
