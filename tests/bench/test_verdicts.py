"""The claim rule (hashbench.bench.verdicts) on constructed per-query values."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.bench import verdicts as V


def _runs(
    means: dict[str, float], seeds: int = 3, nq: int = 400, noise: float = 0.2, seed: int = 0
):
    rng = np.random.default_rng(seed)
    return {
        m: np.clip(mu + noise * rng.standard_normal((seeds, nq)), 0, 1) for m, mu in means.items()
    }


def test_a_win_at_every_length_holds() -> None:
    per_length = [
        V.judge_length(b, _runs({"a": 0.7, "b": 0.5, "c": 0.45}, seed=b), ["a"], ["b", "c"])
        for b in (16, 32, 64)
    ]
    assert [v.verdict for v in per_length] == ["holds"] * 3
    assert V.judge_claim(per_length) == "holds"
    v = per_length[0]
    assert v.low <= v.diff <= v.high and v.seeds == {"a": 3, "b": 3, "c": 3}


def test_one_clear_loss_fails_the_claim() -> None:
    wins = [V.judge_length(b, _runs({"a": 0.7, "b": 0.5}, seed=b), ["a"], ["b"]) for b in (16, 32)]
    loss = V.judge_length(64, _runs({"a": 0.4, "b": 0.6}, seed=64), ["a"], ["b"])
    assert loss.verdict == "fails"
    assert V.judge_claim([*wins, loss]) == "fails"  # an average over lengths would say "holds"


def test_overlapping_intervals_are_inconclusive_and_a_partial_win_is_mixed() -> None:
    tie = V.judge_length(32, _runs({"a": 0.5, "b": 0.5}, nq=50, noise=0.3), ["a"], ["b"])
    assert tie.verdict == "inconclusive" and tie.low < 0 < tie.high
    win = V.judge_length(16, _runs({"a": 0.8, "b": 0.5}), ["a"], ["b"])
    assert V.judge_claim([tie]) == "inconclusive"
    assert V.judge_claim([win, tie]) == "mixed"


def test_a_missing_length_is_not_measured_not_dropped() -> None:
    runs = _runs({"a": 0.8, "b": 0.5})
    missing = V.judge_length(48, {"a": runs["a"]}, ["a"], ["b"])
    assert missing.verdict == "not measured" and missing.diff is None
    win = V.judge_length(32, runs, ["a"], ["b"])
    assert V.judge_claim([win, missing]) == "mixed"
    assert V.judge_claim([missing]) == "not measured"


def test_stated_difference_is_the_threshold() -> None:
    runs = _runs({"a": 0.6, "b": 0.5}, nq=2000, noise=0.05)
    assert V.judge_length(32, runs, ["a"], ["b"], min_diff=0.0).verdict == "holds"
    assert V.judge_length(32, runs, ["a"], ["b"], min_diff=0.2).verdict == "fails"


def test_difference_and_degenerate_interval_by_hand() -> None:
    # constant per-query values: every resample gives the same difference
    runs = {"a": np.full((2, 5), 0.6), "b": np.full((3, 5), 0.25), "c": np.full((1, 5), 0.4)}
    assert V.difference(runs, ["a"], ["b", "c"]) == pytest.approx(0.2)
    low, high = V.bootstrap_interval(runs, ["a"], ["b", "c"], n_resamples=50)
    assert low == pytest.approx(0.2) and high == pytest.approx(0.2)
    # a group on the A side is judged by its worst member
    runs["d"] = np.full((1, 5), 0.5)
    assert V.difference(runs, ["a", "d"], ["b", "c"]) == pytest.approx(0.1)


def test_queries_are_resampled_jointly() -> None:
    """Paired: when A and B share their per-query pattern, the interval is narrow even though the
    queries differ a lot - an unpaired bootstrap would be about as wide as the query spread."""
    rng = np.random.default_rng(5)
    base = rng.random(300)
    runs = {"a": (base + 0.05)[None, :], "b": base[None, :]}
    low, high = V.bootstrap_interval(runs, ["a"], ["b"])
    assert low == pytest.approx(0.05) and high == pytest.approx(0.05)


def test_mismatched_queries_are_an_error() -> None:
    with pytest.raises(ValueError, match="same queries"):
        V.bootstrap_interval({"a": np.ones((1, 4)), "b": np.ones((1, 5))}, ["a"], ["b"])


def test_vectorised_bootstrap_matches_the_resampling_loop() -> None:
    """The weighted (vectorised) form draws the same distribution as resampling the seeds and the
    queries by index, one resample at a time."""
    runs = _runs({"a": 0.6, "b": 0.5, "c": 0.48}, seeds=3, nq=300, noise=0.2, seed=7)
    runs["c"] = runs["c"][:1]  # one seed
    rng = np.random.default_rng(99)
    diffs = []
    for _ in range(4000):
        q = rng.integers(0, 300, 300)
        means = {
            m: arr[rng.integers(0, len(arr), len(arr))][:, q].mean() for m, arr in runs.items()
        }
        diffs.append(means["a"] - max(means["b"], means["c"]))
    ref_low, ref_high = np.percentile(diffs, [2.5, 97.5])
    low, high = V.bootstrap_interval(runs, ["a"], ["b", "c"], n_resamples=4000)
    width = ref_high - ref_low
    assert abs(low - ref_low) < 0.1 * width and abs(high - ref_high) < 0.1 * width
    # and it is deterministic
    assert (low, high) == V.bootstrap_interval(runs, ["a"], ["b", "c"], n_resamples=4000)
