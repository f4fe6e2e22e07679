"""Eqs. 20-22 and 26 against slow loop references, plus their properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hashbench.losses import (
    HingeSoftmaxLoss,
    LinearClassificationLoss,
    MultiLabelBCELoss,
    SoftmaxLoss,
)

N, C = 6, 4


def data(seed: int = 0, multi: bool = True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, generator=g, dtype=torch.float64) * 2
    if multi:
        y = (torch.rand(N, C, generator=g) < 0.4).double()
        y[torch.arange(N), torch.randint(0, C, (N,), generator=g)] = 1.0
    else:
        y = F.one_hot(torch.randint(0, C, (N,), generator=g), C).double()
    return logits, y


def softmax_row(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def close(a: torch.Tensor, b: float) -> None:
    torch.testing.assert_close(a, torch.tensor(b, dtype=a.dtype), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("multi", [False, True])
def test_softmax_reference(multi):
    logits, y = data(1, multi)
    vals = []
    for i in range(N):
        p = softmax_row(logits[i].tolist())
        pos = [c for c in range(C) if y[i, c] > 0]
        vals.append(-sum(math.log(p[c]) for c in pos) / len(pos))
    close(SoftmaxLoss()(logits=logits, labels=y), sum(vals) / N)
    close(SoftmaxLoss("sum")(logits=logits, labels=y), sum(vals))


def test_softmax_equals_cross_entropy_for_one_hot_and_skips_unlabelled():
    logits, y = data(2, multi=False)
    torch.testing.assert_close(
        SoftmaxLoss()(logits=logits, labels=y), F.cross_entropy(logits, y.argmax(1))
    )
    y2 = y.clone()
    y2[0] = 0.0
    torch.testing.assert_close(
        SoftmaxLoss()(logits=logits, labels=y2), F.cross_entropy(logits[1:], y.argmax(1)[1:])
    )
    confident = 50.0 * (2 * y - 1)
    assert SoftmaxLoss()(logits=confident, labels=y) < 1e-12


def test_bce_reference():
    logits, y = data(3)
    total = 0.0
    for i in range(N):
        for c in range(C):
            p = 1 / (1 + math.exp(-logits[i, c].item()))
            t = y[i, c].item()
            total -= t * math.log(p) + (1 - t) * math.log(1 - p)
    close(MultiLabelBCELoss()(logits=logits, labels=y), total / N)
    close(MultiLabelBCELoss("sum")(logits=logits, labels=y), total)
    assert MultiLabelBCELoss()(logits=60.0 * (2 * y - 1), labels=y) < 1e-12


def test_linear_classification_reference():
    logits, y = data(4)
    total = sum((y[i, c].item() - logits[i, c].item()) ** 2 for i in range(N) for c in range(C))
    close(LinearClassificationLoss()(logits=logits, labels=y), total / N)
    close(LinearClassificationLoss()(logits=y.clone(), labels=y), 0.0)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.4])
def test_hinge_softmax_reference(multi, margin):
    logits, y = data(5, multi)
    vals = []
    for i in range(N):
        p = softmax_row(logits[i].tolist())
        neg = [p[c] for c in range(C) if y[i, c] == 0]
        for c in range(C):
            if y[i, c] == 0:
                continue
            if not neg or p[c] >= max(neg) + margin:
                vals.append(0.0)
            else:
                vals.append(-math.log(p[c]))
    close(HingeSoftmaxLoss(margin)(logits=logits, labels=y), sum(vals) / len(vals))
    close(HingeSoftmaxLoss(margin, "sum")(logits=logits, labels=y), sum(vals))


def test_hinge_softmax_zero_once_the_margin_is_met():
    y = torch.tensor([[1.0, 0.0, 0.0]])
    met = torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64)  # p_y ~ 0.78, others ~ 0.11
    close(HingeSoftmaxLoss(0.5)(logits=met, labels=y), 0.0)
    missed = HingeSoftmaxLoss(0.7)(logits=met, labels=y)
    close(missed, -math.log(softmax_row([2.0, 0.0, 0.0])[0]))
    close(HingeSoftmaxLoss()(logits=met, labels=torch.ones(1, 3)), 0.0)  # no competitor


def test_labels_must_be_multi_hot():
    logits, _ = data(6)
    with pytest.raises(ValueError, match="multi-hot"):
        SoftmaxLoss()(logits=logits, labels=torch.zeros(N, dtype=torch.long))
