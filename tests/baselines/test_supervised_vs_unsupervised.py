"""On clustered data whose class signal hides under high-variance noise, labels must help."""

from __future__ import annotations

import numpy as np

from hashbench.baselines import BASELINES, SUPERVISED

from .conftest import mean_average_precision

SETTINGS = {"sdh": {"n_anchors": 300, "sigma": None}, "ksh": {"n_anchors": 150}}


def test_supervised_baselines_beat_unsupervised_ones(clustered_data) -> None:
    X, Y = clustered_data
    Xtr, Ytr, Xq, Yq = X[:1200], Y[:1200], X[1200:], Y[1200:]
    scores = {}
    for name, cls in BASELINES.items():
        h = cls(bits=16, **SETTINGS.get(name, {}))
        h.fit(Xtr, Ytr if name in SUPERVISED else None)
        scores[name] = mean_average_precision(h.encode(Xq), h.encode(Xtr), Yq, Ytr)
    sup = [scores[k] for k in SUPERVISED]
    unsup = [v for k, v in scores.items() if k not in SUPERVISED]
    assert min(sup) > max(unsup) + 0.2, scores
    assert min(sup) > 0.5, scores


def test_local_map_helper_on_a_hand_case() -> None:
    q = np.packbits(np.array([[0] * 8], dtype=bool), axis=1)
    db = np.packbits(np.array([[0] * 8, [1] + [0] * 7, [1] * 8], dtype=bool), axis=1)
    qy = np.array([[1, 0]])
    dy = np.array([[1, 0], [0, 1], [1, 0]])
    # ranking: 0 (rel), 1 (not), 2 (rel) -> AP = (1/1 + 2/3) / 2
    assert mean_average_precision(q, db, qy, dy) == (1 + 2 / 3) / 2
