"""Split presets: sizes, disjointness, determinism and saved split files (PROTOCOL.md, "Splits")."""

from __future__ import annotations

import os
from functools import cache

import numpy as np
import pytest

from hashbench.data import protocols as P
from hashbench.data.base import DatasetArrays, HashDataModule, restrict_to_top_labels
from hashbench.data.protocols import (
    PROTOCOLS,
    Draw,
    Protocol,
    SplitMismatchError,
    draw_split,
    fingerprint,
    get_protocol,
    load_or_create_split,
    register_protocol,
    split_path,
)


# -- synthetic label arrays of the real datasets' sizes --------------------------------------------
def _single_label(
    n_train: int, n_test: int, classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n_train + n_test)
    source = np.array(["train"] * n_train + ["test"] * n_test)
    return np.eye(classes, dtype=np.uint8)[y], source


@cache
def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, source) shaped like dataset ``kind``; cached: treat as read-only."""
    if kind == "cifar10":
        return _single_label(50_000, 10_000, 10, 0)
    if kind == "mnist":
        return _single_label(60_000, 10_000, 10, 1)
    if kind == "svhn":
        return _single_label(73_257, 26_032, 10, 2)
    if kind == "nus-wide":
        # 81 concepts with Zipf-like frequencies; some images carry none, many carry several.
        rng = np.random.default_rng(3)
        n = 100_000
        freq = 0.25 * (np.arange(81) + 1.0) ** -0.8
        labels = (rng.random((n, 81), dtype=np.float32) < freq).astype(np.uint8)
        source = np.where(rng.random(n) < 0.6, "train", "test")
        return labels, source
    raise KeyError(kind)


def _kind(name: str) -> str:
    for prefix, kind in (("cifar10", "cifar10"), ("nus-wide", "nus-wide"), ("svhn", "svhn")):
        if name.startswith(prefix):
            return kind
    return "mnist"  # fashion-mnist-69k, mnist-69k, tiny and anything new of that shape


def _labels_for(protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    labels, source = _dataset(_kind(protocol.name))
    if protocol.top_labels:
        arrays = DatasetArrays(
            np.zeros((len(labels), 1, 1, 1), np.uint8),
            labels,
            source,
            [str(i) for i in range(labels.shape[1])],
        )
        labels = restrict_to_top_labels(arrays, protocol.top_labels).labels
    return labels, source


def _candidates(rule: Draw, pool: np.ndarray, source: np.ndarray) -> np.ndarray:
    if rule.source != "any" and (source == rule.source).any():
        return pool[source[pool] == rule.source]
    return pool


def _expected_size(rule: Draw, labels: np.ndarray, cand: np.ndarray) -> int:
    if rule.count is None:
        return len(cand)
    return rule.count * labels.shape[1] if rule.per_class else rule.count


@cache
def _split(name: str, seed: int) -> dict[str, np.ndarray]:
    protocol = PROTOCOLS[name]
    labels, source = _labels_for(protocol)
    return draw_split(protocol, labels, source, seed)


ALL = sorted(PROTOCOLS)


def test_presets_of_protocol_md_are_registered() -> None:
    for name in (
        "cifar10-54k",
        "cifar10-59k",
        "cifar10-50k",
        "fashion-mnist-69k",
        "mnist-69k",
        "nus-wide-21",
        "nus-wide-81",
        "svhn",
        "tiny",
    ):
        assert name in PROTOCOLS
        assert get_protocol(name).name == name


@pytest.mark.parametrize("name", ALL)
def test_split_sizes(name: str) -> None:
    protocol = PROTOCOLS[name]
    labels, source = _labels_for(protocol)
    split = _split(name, 0)
    n = len(labels)
    pool = np.flatnonzero(labels.any(axis=1)) if protocol.top_labels else np.arange(n)

    for key, idx in split.items():
        assert idx.dtype == np.int64, key
        assert np.all(np.diff(idx) > 0), f"{key} is not sorted and unique"
        assert idx.min(initial=0) >= 0 and idx.max(initial=0) < n
        assert np.isin(idx, pool).all(), f"{key} holds items outside the protocol's pool"

    q_cand = _candidates(protocol.query, pool, source)
    assert len(split["query"]) == _expected_size(protocol.query, labels, q_cand)
    assert np.isin(split["query"], q_cand).all(), "query drawn from the wrong source"
    left = np.setdiff1d(pool, split["query"])
    t_cand = _candidates(protocol.train, left, source)
    if protocol.train.count is not None:  # (a whole-side train gives up its val_query: below)
        assert len(split["train"]) == _expected_size(protocol.train, labels, t_cand)
    assert np.isin(split["train"], t_cand).all(), "train drawn from the wrong source"

    expected_db = {
        "rest": left,
        "rest_minus_train": np.setdiff1d(left, split["train"]),
        "train": np.union1d(split["train"], split["val_query"]),  # the whole training side
    }[protocol.database]
    np.testing.assert_array_equal(split["database"], expected_db)

    # val_query: the train side, held out; where train took its whole side, out of it (train shrinks)
    n_val = _expected_size(P.val_rule(protocol, len(t_cand)), labels, t_cand)
    assert len(split["val_query"]) == n_val
    assert np.isin(split["val_query"], t_cand).all(), "val_query drawn from the wrong side"
    if protocol.train.count is None:
        assert len(split["train"]) == len(t_cand) - n_val
    db = split["database"]
    if np.isin(split["train"], db).all():
        np.testing.assert_array_equal(split["val_database"], split["train"])
    else:
        assert len(split["val_database"]) == min(
            len(split["train"]), len(np.setdiff1d(db, split["val_query"]))
        )
        assert np.isin(split["val_database"], db).all()


@pytest.mark.parametrize("name", ALL)
def test_per_class_counts(name: str) -> None:
    protocol = PROTOCOLS[name]
    labels, _ = _labels_for(protocol)
    split = _split(name, 0)
    single = bool((labels.sum(axis=1) <= 1).all())
    rules = (
        ("query", protocol.query),
        ("train", protocol.train),
        ("val_query", P.val_rule(protocol, len(split["train"]))),
    )
    for key, rule in rules:
        if not rule.per_class:
            continue
        per_class = labels[split[key]].sum(axis=0)
        if single:
            assert (per_class == rule.count).all(), f"{key}: {per_class}"
        else:  # multi-label: each concept's own draw gives at least `count` carrying it
            assert (per_class >= rule.count).all(), f"{key}: {per_class}"


@pytest.mark.parametrize("name", ALL)
def test_disjointness(name: str) -> None:
    protocol = PROTOCOLS[name]
    s = _split(name, 0)

    def disjoint(a: str, b: str) -> bool:
        return len(np.intersect1d(s[a], s[b])) == 0

    assert disjoint("query", "train")
    assert disjoint("query", "database")
    assert disjoint("query", "val_query") and disjoint("query", "val_database")
    assert disjoint("val_query", "val_database")
    assert disjoint("val_query", "train"), "val_query must be held out of train"
    if protocol.database == "rest":
        assert np.isin(s["train"], s["database"]).all(), "database must include train"
    elif protocol.database == "rest_minus_train":
        assert disjoint("train", "database")
    else:  # the database is the whole training side: train plus its held-out val_query
        np.testing.assert_array_equal(s["database"], np.union1d(s["train"], s["val_query"]))


@pytest.mark.parametrize("name", ALL)
def test_determinism(name: str) -> None:
    protocol = PROTOCOLS[name]
    labels, source = _labels_for(protocol)
    a = _split(name, 0)
    again = draw_split(protocol, labels, source, 0)
    for key in P.SPLITS:
        np.testing.assert_array_equal(a[key], again[key])
    other = draw_split(protocol, labels, source, 1)
    # Every preset draws its validation queries at random; random query/train draws differ too.
    assert not np.array_equal(a["val_query"], other["val_query"])
    if protocol.query.count is not None:
        assert not np.array_equal(a["query"], other["query"])
    if protocol.train.count is not None:
        assert not np.array_equal(a["train"], other["train"])


def test_realistic_standard_sizes() -> None:
    """The headline numbers of PROTOCOL.md's table."""
    s = _split("cifar10-54k", 0)
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (1000, 5000, 54000)
    s = _split("cifar10-59k", 0)
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (1000, 5000, 59000)
    assert (len(s["val_query"]), len(s["val_database"])) == (500, 5000)  # 50/class; a db sample
    s = _split("cifar10-50k", 0)
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (10000, 45000, 50000)
    assert (len(s["val_query"]), len(s["val_database"])) == (5000, 45000)
    for name in ("fashion-mnist-69k", "mnist-69k"):
        s = _split(name, 0)
        assert (len(s["query"]), len(s["train"]), len(s["database"])) == (1000, 5000, 69000)
        assert (len(s["val_query"]), len(s["val_database"])) == (500, 5000)
    s = _split("svhn", 0)
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (1000, 5000, 99289 - 1000)
    s = _split("nus-wide-21", 0)
    assert (len(s["query"]), len(s["train"])) == (2100, 10500)
    s = _split("nus-wide-81", 0)
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (5000, 10000, 95000)


def test_too_few_items_is_a_clear_error() -> None:
    labels, source = _single_label(300, 50, 10, 0)  # ~5 test items per class, tiny needs 10
    with pytest.raises(ValueError, match=r"tiny query: class \d+ has \d+ available items"):
        draw_split(PROTOCOLS["tiny"], labels, source, 0)


def test_too_few_items_for_the_held_out_set_names_the_class_and_the_shortfall() -> None:
    # every class has 53 train-side items: 50 go to train, 3 are left for the 5 val_query needs
    y = np.repeat(np.arange(10), 53 + 10)
    source = np.array((["train"] * 53 + ["test"] * 10) * 10)
    labels = np.eye(10, dtype=np.uint8)[y]
    names = [f"digit {c}" for c in range(10)]
    with pytest.raises(P.SplitTooSmallError) as e:
        draw_split(PROTOCOLS["tiny"], labels, source, 0, names)
    assert str(e.value).startswith("tiny val_query: class 'digit 0' has 3 available items")
    assert "lacks 2" in str(e.value)


def test_unknown_and_duplicate_protocols() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'cifar-11'.*cifar10-59k"):
        get_protocol("cifar-11")
    with pytest.raises(ValueError, match="already registered"):
        register_protocol(PROTOCOLS["tiny"])


def test_fingerprint() -> None:
    labels, _ = _single_label(1000, 0, 10, 0)
    fp = fingerprint(labels)
    assert fp.startswith("n=1000;classes=10;")
    assert fingerprint(labels.copy()) == fp
    changed = labels.copy()
    changed[0] = np.roll(changed[0], 1)
    assert fingerprint(changed) != fp
    assert fingerprint(labels[:-1]) != fp


# -- split files -----------------------------------------------------------------------------------
@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    return _single_label(700, 150, 10, 5)


def test_split_file_written_on_first_use_and_reused(tmp_path, small, monkeypatch) -> None:
    labels, source = small
    protocol = PROTOCOLS["tiny"]
    path = split_path(tmp_path / "splits", "tiny", 3)
    assert path == tmp_path / "splits" / "tiny-seed3.npz"
    assert not path.exists()
    first = load_or_create_split(tmp_path / "splits", protocol, labels, source, 3)
    assert path.is_file()
    assert os.listdir(tmp_path / "splits") == ["tiny-seed3.npz"], "temporary file left behind"
    with np.load(path) as f:
        assert str(f["fingerprint"]) == fingerprint(labels, source)

    def no_redraw(*args, **kwargs):
        raise AssertionError("the saved split must be reused, not drawn again")

    monkeypatch.setattr(P, "draw_split", no_redraw)
    second = load_or_create_split(tmp_path / "splits", protocol, labels, source, 3)
    for key in P.SPLITS:
        np.testing.assert_array_equal(first[key], second[key])
        assert second[key].dtype == np.int64


def test_saved_split_is_what_draw_split_gives(tmp_path, small) -> None:
    labels, source = small
    saved = load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 7)
    drawn = draw_split(PROTOCOLS["tiny"], labels, source, 7)
    for key in P.SPLITS:
        np.testing.assert_array_equal(saved[key], drawn[key])


def test_changed_dataset_is_a_mismatch(tmp_path, small) -> None:
    labels, source = small
    load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0)
    relabelled = labels.copy()
    relabelled[0] = np.roll(relabelled[0], 1)  # item 0 moves to the next class
    for changed in (relabelled, labels[:-1]):
        with pytest.raises(SplitMismatchError, match="the dataset changed") as e:
            load_or_create_split(tmp_path, PROTOCOLS["tiny"], changed, source[: len(changed)], 0)
        assert "tiny-seed0.npz" in str(e.value) and "delete" in str(e.value)
    swapped = source.copy()
    swapped[[0, -1]] = swapped[[-1, 0]]  # same labels, an item changed sides
    if swapped[0] != source[0]:
        with pytest.raises(SplitMismatchError, match="the dataset changed"):
            load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, swapped, 0)
    # another seed or protocol is another file, drawn fresh
    load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels[:-1], source[:-1], 1)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04garbage"])
def test_corrupt_split_file_is_a_clear_error(tmp_path, small, content) -> None:
    labels, source = small
    path = split_path(tmp_path, "tiny", 0)
    path.write_bytes(content)
    with pytest.raises(SplitMismatchError, match="unreadable") as e:
        load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0)
    assert str(path) in str(e.value) and "delete it" in str(e.value)


def test_split_file_missing_a_set_is_a_clear_error(tmp_path, small) -> None:
    labels, source = small
    path = split_path(tmp_path, "tiny", 0)
    np.savez(
        path,
        fingerprint=np.array(fingerprint(labels, source)),
        version=np.array(P.SPLIT_VERSION),
        train=np.arange(3),
    )
    with pytest.raises(SplitMismatchError, match="unreadable"):
        load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0)


class _InMemory(HashDataModule):
    name = "in-memory"

    def __init__(self, root: str, labels: np.ndarray, source: np.ndarray, seed: int = 0) -> None:
        super().__init__(root, "tiny", seed)
        self._labels_in, self._source_in = labels, source

    def load(self) -> DatasetArrays:
        n = len(self._labels_in)
        return DatasetArrays(
            np.zeros((n, 1, 2, 2), np.uint8),
            self._labels_in,
            self._source_in,
            [str(c) for c in range(self._labels_in.shape[1])],
        )


def test_datamodule_writes_split_under_root(tmp_path, small) -> None:
    labels, source = small
    dm = _InMemory(str(tmp_path), labels, source, seed=2)
    dm.prepare_data()
    assert (tmp_path / "splits" / "tiny-seed2.npz").is_file()
    assert dm.key == f"in-memory/tiny-seed2-split{P.SPLIT_VERSION}"
    again = _InMemory(str(tmp_path), labels, source, seed=2)
    np.testing.assert_array_equal(again.split["query"], dm.split["query"])
    np.testing.assert_array_equal(dm.labels("query"), labels[dm.split["query"]])
    changed = labels.copy()
    changed[:5] = np.roll(changed[:5], 1, axis=1)
    with pytest.raises(SplitMismatchError):
        _ = _InMemory(str(tmp_path), changed, source, seed=2).split


def test_old_layout_split_file_is_redrawn_with_a_note(tmp_path, small, capsys) -> None:
    """A layout-1 file (validation inside train, no version field) is recognised, never mixed in."""
    labels, source = small
    path = split_path(tmp_path, "tiny", 0)
    old = draw_split(PROTOCOLS["tiny"], labels, source, 0)
    old["val_query"] = old["train"][:5]  # what layout 1 did: validation items out of train
    np.savez(path, fingerprint=np.array(fingerprint(labels, source)), **old)
    notes: list[str] = []
    split = load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0, echo=notes.append)
    assert len(notes) == 1 and str(path) in notes[0] and "layout 1" in notes[0]
    assert len(np.intersect1d(split["val_query"], split["train"])) == 0
    with np.load(path) as f:
        assert int(f["version"]) == P.SPLIT_VERSION  # rewritten: the next load is silent
    load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0, echo=notes.append)
    assert len(notes) == 1
    np.savez(path, fingerprint=np.array(fingerprint(labels, source)), **old)
    load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hashbench: split file") and "layout 1" in err


def test_newer_layout_is_an_error(tmp_path, small) -> None:
    labels, source = small
    path = split_path(tmp_path, "tiny", 0)
    np.savez(
        path,
        fingerprint=np.array(fingerprint(labels, source)),
        version=np.array(P.SPLIT_VERSION + 1),
        **draw_split(PROTOCOLS["tiny"], labels, source, 0),
    )
    with pytest.raises(SplitMismatchError, match="newer than this hashbench"):
        load_or_create_split(tmp_path, PROTOCOLS["tiny"], labels, source, 0)


@pytest.mark.parametrize("name", ALL)
def test_same_query_train_and_database_as_layout_1(name: str) -> None:
    """Test figures stay comparable: layout 2 only adds the held-out set (cifar10-50k's train
    gives up its val_query)."""
    protocol = PROTOCOLS[name]
    labels, source = _labels_for(protocol)
    s = _split(name, 0)
    rng = np.random.default_rng(0)
    pool = np.flatnonzero(labels.any(axis=1)) if protocol.top_labels else np.arange(len(labels))
    query = P._draw(protocol.query, pool, labels, source, rng, "q")
    train = P._draw(protocol.train, np.setdiff1d(pool, query), labels, source, rng, "t")
    np.testing.assert_array_equal(s["query"], query)
    if protocol.train.count is None:
        np.testing.assert_array_equal(np.union1d(s["train"], s["val_query"]), train)
    else:
        np.testing.assert_array_equal(s["train"], train)
