"""Objective-term library: every term of the survey's section 4 as an ``nn.Module``.

Source: Shen, Lin, Jiang, "Survey of Deep Learning Hashing" (深度学习哈希综述), *Journal of Chinese
Computer Systems* 41(10), 2020 (seed 001), equations 1-27; the KNN-graph term of Peng, Wu, Zi,
*Laser & Optoelectronics Progress* 55(10), 2018 (seed 000); DHN's smooth quantisation (Zhu, Long,
Wang, Cao, AAAI 2016). Each class's docstring gives its formula, its source, its reduction, and
every place where the survey's printed formula was fixed ("Defect in the survey: ... Implemented:
...") or interpreted ("Interpretation:" / "Resolved:").

Convention (followed by every term)
-----------------------------------

Tensors (the input vocabulary, :data:`VOCABULARY`):

- ``h``: relaxed codes ``(n, q)`` float - the real network outputs or their ``tanh``. Terms the
  survey writes on binary codes ``B`` are applied to ``h`` (``B`` has no gradient); pass +-1 codes
  as ``h`` to evaluate the printed value on binary codes.
- ``b``: binary codes in {-1, +1} ``(n, q)``. Where a term needs them and they are not given,
  ``b = where(h >= 0, +1, -1)``, detached (:func:`binary_codes`; bit ``1[h >= 0]``, never ``sign``).
- ``labels``: multi-hot ``(n, c)`` float (single-label data is one-hot). The pairwise similarity is
  ``s_ij = 1`` if the label vectors share at least one label, else 0
  (:func:`pairwise_similarity`); graded terms use the number of shared labels
  (:func:`shared_label_counts`).
- ``sim``: an explicit ``(n, m)`` similarity (0/1, graded, or the +-1 of a graph) replacing the
  label-derived one where the survey uses a similarity matrix (eqs. 13-19, 27).
- ``logits``: classifier outputs ``(n, c)``. Classification terms (eqs. 20, 21, 22, 26) take
  logits and own no parameters; the method owns its classifier (e.g. ``nn.Linear(q, c)`` on ``h``).
- ``x``, ``x_hat``: inputs and reconstructions ``(n, ...)`` (eq. 1).
- ``features``: input features of the batch ``(n, d)`` (Laplacian affinities, eq. 13).
- ``index``: dataset indices ``(n,)`` int64 of the batch items (KNN-graph lookup).
- ``weights``: a list of parameter tensors (eq. 10).
- ``classifier_weight``: a classifier's weight matrix ``(c, q)``; reserved (no term needs it
  while classification terms take ``logits``).
- ``h_other``, ``labels_other``, ``features_other``, ``index_other``: a second set ``(m, ...)``
  (e.g. a memory bank) for batch x second-set pairs.

Pairs: taken within the mini-batch - the ordered pairs ``i != j`` - or between the batch and a
second set (all ``n x m`` pairs). No term ever builds an ``N x N`` matrix for the training set; the
KNN graph is stored sparse and looked up per batch (:func:`knn_neighbourhood`,
:func:`neighbourhood_matrix`).

Reduction: by default the mean over the pairs (pairwise terms), triplets (ranking terms) or items
(per-item terms) of the batch; ``reduction="sum"`` where offered. Terms that are one statistic of
the batch (bit independence / balance, sparsity KL, the KL of eq. 18, parameter norms) say so.

Calling convention: each term class has ``inputs`` (the keyword tensors ``forward`` requires) and
``optional_inputs``; ``forward`` takes exactly those keyword arguments. A composite method calls
``term(**{k: context[k] for k in term.inputs})`` (plus any optional input present), or simply
``term(**term.gather(context))``. Constructor arguments are the term's hyper-parameters (typed,
defaulted); term weights belong to the composite, not to the term.

Registries (:class:`~hashbench.registry.Registry`): :data:`TERMS` maps a key to each scalar
objective term; :data:`RELAXATIONS` holds the transforms of eqs. 23-24, which are not objective terms.
"""

from __future__ import annotations

from torch import nn

from hashbench.losses.base import (
    VOCABULARY,
    Term,
    binary_codes,
    pair_mask,
    pairwise_similarity,
    relaxed_hamming,
    shared_label_counts,
)
from hashbench.losses.cauchy import (
    CauchyCrossEntropyLoss,
    CauchyQuantizationLoss,
    CosineCrossEntropyLoss,
    CosineQuantizationLoss,
)
from hashbench.losses.classification import (
    HingeSoftmaxLoss,
    LinearClassificationLoss,
    MultiLabelBCELoss,
    SoftmaxLoss,
)
from hashbench.losses.constraints import (
    AbsL1ConstraintLoss,
    BitBalanceSumLoss,
    BitIndependenceLoss,
    BitMeanLoss,
    BitVarianceLoss,
    ClampedConstraintLoss,
    NearestBinaryLoss,
    ParameterRegularizationLoss,
    QuantizationLoss,
    SmoothQuantizationLoss,
    SparsityKLLoss,
    SparsityL1Loss,
)
from hashbench.losses.knn import (
    KNNGraphLoss,
    KNNNeighbourhood,
    knn_lists,
    knn_neighbourhood,
    neighbourhood_matrix,
)
from hashbench.losses.reconstruction import ReconstructionLoss
from hashbench.losses.relaxation import (
    InnerProductRelaxation,
    L1ToBinaryLoss,
    ScheduledTanh,
    inner_product_similarity,
)
from hashbench.losses.similarity import (
    ClassSeparationLoss,
    ContrastiveLoss,
    KLSimilarityLoss,
    LaplacianLoss,
    OrderSensitiveRankingLoss,
    PairwiseLikelihoodLoss,
    PairwiseMSELoss,
    RankingTripletLoss,
)
from hashbench.registry import Registry

#: Every scalar objective term, by key (survey equation in the comment).
TERMS: Registry[type[Term]] = Registry(
    "loss term",
    {
        "reconstruction": ReconstructionLoss,  # 1
        "quantization": QuantizationLoss,  # 2
        "smooth_quantization": SmoothQuantizationLoss,  # DHN
        "bit_independence": BitIndependenceLoss,  # 3
        "bit_balance_sum": BitBalanceSumLoss,  # 4
        "bit_variance": BitVarianceLoss,  # 5
        "bit_balance_mean": BitMeanLoss,  # 6
        "hash_constraint_l1": AbsL1ConstraintLoss,  # 7
        "hash_constraint_nearest": NearestBinaryLoss,  # 8
        "hash_constraint_clamp": ClampedConstraintLoss,  # 9
        "parameter_regularization": ParameterRegularizationLoss,  # 10
        "sparsity_kl": SparsityKLLoss,  # 11
        "sparsity_l1": SparsityL1Loss,  # 12
        "laplacian": LaplacianLoss,  # 13
        "knn_graph": KNNGraphLoss,  # 4.3.1-2, seed 000 eq. 9
        "pairwise_mse": PairwiseMSELoss,  # 14
        "pairwise_likelihood": PairwiseLikelihoodLoss,  # 15 (DPSH)
        "class_separation": ClassSeparationLoss,  # 16
        "contrastive": ContrastiveLoss,  # 17 (DSH)
        "kl_similarity": KLSimilarityLoss,  # 18
        "ranking_triplet": RankingTripletLoss,  # 19
        "order_sensitive_ranking": OrderSensitiveRankingLoss,  # 27
        "softmax": SoftmaxLoss,  # 20
        "multilabel_bce": MultiLabelBCELoss,  # 21
        "linear_classification": LinearClassificationLoss,  # 22
        "hinge_softmax": HingeSoftmaxLoss,  # 26
        "l1_to_binary": L1ToBinaryLoss,  # 25 (DSH regulariser)
        "cauchy_cross_entropy": CauchyCrossEntropyLoss,  # DCH / seed 003 eq. 15
        "cauchy_quantization": CauchyQuantizationLoss,  # DCH / seed 003 eq. 16
        "cosine_cross_entropy": CosineCrossEntropyLoss,  # HashGAN
        "cosine_quantization": CosineQuantizationLoss,  # HashGAN
    },
)

#: Relaxations (transforms, not objective terms), by key.
RELAXATIONS: Registry[type[nn.Module]] = Registry(
    "relaxation",
    {
        "scheduled_tanh": ScheduledTanh,  # 23
        "inner_product": InnerProductRelaxation,  # 24
    },
)

__all__ = [
    "RELAXATIONS",
    "TERMS",
    "VOCABULARY",
    "AbsL1ConstraintLoss",
    "BitBalanceSumLoss",
    "BitIndependenceLoss",
    "BitMeanLoss",
    "BitVarianceLoss",
    "CauchyCrossEntropyLoss",
    "CauchyQuantizationLoss",
    "ClampedConstraintLoss",
    "ClassSeparationLoss",
    "ContrastiveLoss",
    "CosineCrossEntropyLoss",
    "CosineQuantizationLoss",
    "HingeSoftmaxLoss",
    "InnerProductRelaxation",
    "KLSimilarityLoss",
    "KNNGraphLoss",
    "KNNNeighbourhood",
    "L1ToBinaryLoss",
    "LaplacianLoss",
    "LinearClassificationLoss",
    "MultiLabelBCELoss",
    "NearestBinaryLoss",
    "OrderSensitiveRankingLoss",
    "PairwiseLikelihoodLoss",
    "PairwiseMSELoss",
    "ParameterRegularizationLoss",
    "QuantizationLoss",
    "RankingTripletLoss",
    "ReconstructionLoss",
    "ScheduledTanh",
    "SmoothQuantizationLoss",
    "SoftmaxLoss",
    "SparsityKLLoss",
    "SparsityL1Loss",
    "Term",
    "binary_codes",
    "inner_product_similarity",
    "knn_lists",
    "knn_neighbourhood",
    "neighbourhood_matrix",
    "pair_mask",
    "pairwise_similarity",
    "relaxed_hamming",
    "shared_label_counts",
]
