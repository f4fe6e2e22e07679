"""KNN neighbourhood (Faiss, sparse) against a brute-force dense construction, and the L_N term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbench.losses import (
    KNNGraphLoss,
    knn_lists,
    knn_neighbourhood,
    neighbourhood_matrix,
)

N_ITEMS, DIM = 30, 6


def features(seed: int = 0, n: int = N_ITEMS, d: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def brute_force_ranking(x: np.ndarray) -> list[list[int]]:
    """Every item's other items by decreasing cosine similarity (self excluded), float64."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = xn @ xn.T
    ranking = []
    for i in range(len(x)):
        others = [j for j in range(len(x)) if j != i]
        others.sort(key=lambda j: -sims[i, j])
        ranking.append(others)
    return ranking


def assert_no_near_ties(x: np.ndarray, k: int) -> None:
    """Guard: the brute force and Faiss (float32) agree only without near-ties at the cut."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = xn @ xn.T
    np.fill_diagonal(sims, -np.inf)
    s = -np.sort(-sims, axis=1)
    assert np.min(s[:, k - 1] - s[:, k]) > 1e-5


def brute_force_matrix(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Dense M by the rule: M[i,j] = 1 iff j in K1NN(i) or j in K1NN(p) for a p in K2NN(i);
    M[i,i] = 1 (resolved)."""
    ranking = brute_force_ranking(x)
    n = len(x)
    m = -np.ones((n, n))
    for i in range(n):
        k1nn = set(ranking[i][:k1])
        for j in range(n):
            if j == i:
                m[i, j] = 1
            elif j in k1nn or any(j in ranking[p][:k1] for p in ranking[i][:k2]):
                m[i, j] = 1
    return m


@pytest.mark.parametrize(("k1", "k2"), [(3, 2), (5, 5), (4, 0), (2, 6)])
def test_neighbourhood_matches_brute_force(k1, k2):
    x = features(1)
    assert_no_near_ties(x, max(k1, k2))
    nb = knn_neighbourhood(x, k1, k2)
    ranking = brute_force_ranking(x)
    assert nb.knn1.tolist() == [r[:k1] for r in ranking]
    assert nb.knn2.tolist() == [r[:k2] for r in ranking]
    dense = brute_force_matrix(x, k1, k2)
    idx = torch.arange(N_ITEMS)
    got = neighbourhood_matrix(nb, idx, idx)
    assert got.shape == (N_ITEMS, N_ITEMS) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), dense)
    # sparse storage: exactly the off-diagonal +1 pairs
    assert nb.nnz == int((dense == 1).sum()) - N_ITEMS
    for i in (0, 7, 29):
        assert nb.neighbours_of(i).tolist() == [
            j for j in range(N_ITEMS) if j != i and dense[i, j] == 1
        ]


def test_batch_lookup_is_a_submatrix():
    x = features(2)
    nb = knn_neighbourhood(torch.from_numpy(x), 4, 3)  # tensors are accepted too
    dense = torch.from_numpy(brute_force_matrix(x, 4, 3))
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, N_ITEMS, (9,), generator=g)  # duplicates allowed
    b = torch.randint(0, N_ITEMS, (5,), generator=g)
    got = neighbourhood_matrix(nb, a, b, dtype=torch.float64)
    torch.testing.assert_close(got, dense[a][:, b])
    torch.testing.assert_close(neighbourhood_matrix(nb, a.tolist(), b.numpy()).double(), got)


def test_self_is_never_listed_even_with_duplicate_features():
    x = features(3, n=12)
    x[5] = x[4]  # identical features: Faiss may return either first
    lists = knn_lists(x, 3)
    for i, row in enumerate(lists):
        assert i not in row and len(set(row.tolist())) == 3
    assert 5 in lists[4] and 4 in lists[5]
    nb = knn_neighbourhood(x, 3, 2)
    for i in range(12):
        assert i not in nb.neighbours_of(i).tolist()


def test_neighbourhood_is_not_symmetric_in_general():
    x = features(4)
    m = neighbourhood_matrix(
        knn_neighbourhood(x, 2, 1), torch.arange(N_ITEMS), torch.arange(N_ITEMS)
    )
    assert not torch.equal(m, m.T)


def test_neighbourhood_bad_input():
    x = features(5, n=5)
    with pytest.raises(ValueError, match="items"):
        knn_neighbourhood(x, 5, 1)
    with pytest.raises(ValueError, match="k1"):
        knn_neighbourhood(x, 0, 1)
    nb = knn_neighbourhood(x, 2, 1)
    with pytest.raises(ValueError, match="outside"):
        neighbourhood_matrix(nb, torch.tensor([0, 5]), torch.tensor([1]))
    with pytest.raises(ValueError, match="NaN"):
        knn_neighbourhood(np.full((4, 2), np.nan), 1, 1)


# --- the loss ------------------------------------------------------------------------------------


def _loss_setup(seed: int = 6, n: int = 7, q: int = 8):
    x = features(seed)
    nb = knn_neighbourhood(x, 4, 2)
    dense = brute_force_matrix(x, 4, 2)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(N_ITEMS, generator=g)[:n]
    h = torch.randn(n, q, generator=g, dtype=torch.float64).tanh()
    return x, nb, dense, idx, h


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_knn_loss_reference(reduction):
    x, nb, dense, idx, h = _loss_setup()
    n, q = h.shape
    hl = h.tolist()
    vals = []
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            ip = sum(a * b for a, b in zip(hl[i], hl[j], strict=True)) / q
            vals.append(0.5 * (ip - dense[idx[i], idx[j]]) ** 2)
    ref = sum(vals) / len(vals) if reduction == "mean" else sum(vals)
    term = KNNGraphLoss(4, 2, reduction).build(x)
    torch.testing.assert_close(term(h=h, index=idx), torch.tensor(ref, dtype=torch.float64))
    term2 = KNNGraphLoss(reduction=reduction).set_neighbourhood(nb)
    torch.testing.assert_close(term2(h=h, index=idx), torch.tensor(ref, dtype=torch.float64))


def test_knn_loss_with_second_set_counts_all_pairs():
    x, nb, dense, idx, h = _loss_setup(7)
    g = torch.Generator().manual_seed(1)
    idx2 = torch.cat([idx[:2], torch.randint(0, N_ITEMS, (3,), generator=g)])  # shares 2 items
    h2 = torch.randn(5, h.shape[1], generator=g, dtype=torch.float64)
    q = h.shape[1]
    vals = []
    for i in range(len(idx)):
        for j in range(len(idx2)):
            ip = float(h[i] @ h2[j]) / q
            vals.append(0.5 * (ip - dense[idx[i], idx2[j]]) ** 2)
    term = KNNGraphLoss().set_neighbourhood(nb)
    out = term(h=h, index=idx, h_other=h2, index_other=idx2)
    torch.testing.assert_close(out, torch.tensor(sum(vals) / len(vals), dtype=torch.float64))


def test_knn_loss_zero_for_codes_matching_the_graph():
    """Two tight, far-apart clusters of k1 + 1 items: M = +1 inside a cluster, -1 across; codes
    +1 for one cluster and -1 for the other reproduce M exactly."""
    rng = np.random.default_rng(8)
    k1 = 4
    centre = np.zeros(DIM)
    centre[0] = 10.0
    a = centre + 0.01 * rng.standard_normal((k1 + 1, DIM))
    b = -centre + 0.01 * rng.standard_normal((k1 + 1, DIM))
    x = np.concatenate([a, b])
    term = KNNGraphLoss(k1=k1, k2=2).build(x)
    idx = torch.arange(2 * (k1 + 1))
    m = neighbourhood_matrix(term.neighbourhood, idx, idx)
    same = (idx[:, None] < k1 + 1) == (idx[None, :] < k1 + 1)
    assert torch.equal(m, torch.where(same, 1.0, -1.0))
    h = torch.ones(2 * (k1 + 1), 8, dtype=torch.float64)
    h[k1 + 1 :] = -1.0
    torch.testing.assert_close(term(h=h, index=idx), torch.tensor(0.0, dtype=torch.float64))
    assert term(h=-h[torch.randperm(len(h))] * 0.5, index=idx) > 0


def test_knn_loss_needs_a_neighbourhood():
    with pytest.raises(RuntimeError, match="build"):
        KNNGraphLoss()(h=torch.zeros(2, 4), index=torch.tensor([0, 1]))
    term = KNNGraphLoss(2, 1).build(features(9, n=6))
    with pytest.raises(ValueError, match="index"):
        term(h=torch.zeros(3, 4), index=torch.tensor([0, 1]))
