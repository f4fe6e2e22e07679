"""Benchmark HammingIndex kinds: build time, top-k and radius query throughput, recall.

Usage::

    .venv/bin/python benchmarks/index_search.py                      # 100k and 1M 64-bit codes
    .venv/bin/python benchmarks/index_search.py --sizes 10000 --kinds flat hash --bits 32

Data: ``n_db`` uniformly random codes; each query is a random database code with every bit
flipped with probability ``flip_expect / bits`` (2 flips expected), so radius-2 balls are rarely
empty. Times are wall-clock seconds of one run (after a 10-query warm-up) with Faiss's default
OpenMP thread count unless ``--threads`` is given (on busy shared cores ``--threads 1`` is often
faster). ``build s`` covers construction, training (ivf) and adding. Recall is measured against
the ``flat`` (exact) results when ``flat`` is among the kinds: ``recall@k`` is the overlap of the
returned and the exact top-k *distance* multisets over ``k`` (tie-aware: any item at a tied
distance counts); ``ball recall`` is returned over exact ball sizes. ``hnsw`` above
``--hnsw-max-n`` items is skipped (its graph build alone takes ~30 s per million 64-bit codes on
2 idle cores).

Not run in tests.
"""

from __future__ import annotations

import argparse
import platform
import time

import faiss
import numpy as np

from hashbench.retrieval.index import KINDS, MISSING_DISTANCE, HammingIndex


def make_data(n_db: int, n_queries: int, bits: int, flip_expect: float, seed: int):
    """Random packed database codes and queries near random database items."""
    rng = np.random.default_rng(seed)
    db = rng.integers(0, 256, size=(n_db, bits // 8), dtype=np.uint8)
    src = rng.integers(0, n_db, size=n_queries)
    flips = rng.random((n_queries, bits)) < flip_expect / bits
    queries = db[src] ^ np.packbits(flips, axis=1, bitorder="big")
    return db, queries


def distance_recall(dist: np.ndarray, exact: np.ndarray, bits: int) -> float:
    """Multiset overlap of returned and exact top-k distances, averaged over queries, over k."""

    def counts(d: np.ndarray) -> np.ndarray:
        d = np.where(d == MISSING_DISTANCE, bits + 1, d).astype(np.int64)
        offs = (np.arange(d.shape[0]) * (bits + 2))[:, None]
        return np.bincount((d + offs).ravel(), minlength=d.shape[0] * (bits + 2)).reshape(
            d.shape[0], bits + 2
        )[:, : bits + 1]

    return float(np.minimum(counts(dist), counts(exact)).sum() / exact.size)


def bench_one(kind: str, db: np.ndarray, queries: np.ndarray, args) -> dict:
    t0 = time.perf_counter()
    index = HammingIndex(args.bits, kind, nlist=args.nlist, nprobe=args.nprobe, use_gpu=False)
    index.add(db)
    build = time.perf_counter() - t0
    index.search(queries[:10], args.k)  # warm-up (thread pool, caches)

    t0 = time.perf_counter()
    dist, _ = index.search(queries, args.k)
    knn_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    balls = index.range_search(queries, args.radius)
    range_s = time.perf_counter() - t0
    return {
        "build": build,
        "knn_qps": len(queries) / knn_s,
        "range_qps": len(queries) / range_s,
        "dist": dist,
        "ball_sizes": np.array([len(ids) for _, ids in balls]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--nlist", type=int, default=256)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--hnsw-max-n", type=int, default=200_000, help="0: no limit")
    parser.add_argument("--flip-expect", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=0, help="Faiss OpenMP threads (0: leave Faiss's default)"
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        faiss.omp_set_num_threads(args.threads)

    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, "
        f"{platform.processor() or platform.machine()}; {args.queries} queries, "
        f"{args.bits}-bit codes, k={args.k}, radius={args.radius}, nlist={args.nlist}, "
        f"nprobe={args.nprobe}\n"
    )
    k, r = args.k, args.radius
    print(
        f"| kind | n_db | bits | build s | top-{k} q/s | radius-{r} q/s | recall@{k} "
        "| ball recall |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    kinds = sorted(args.kinds, key=lambda kd: kd != "flat")  # flat first: the exact reference
    for n_db in args.sizes:
        db, queries = make_data(n_db, args.queries, args.bits, args.flip_expect, args.seed)
        exact = None
        for kind in kinds:
            if kind == "hnsw" and args.hnsw_max_n and n_db > args.hnsw_max_n:
                print(f"| hnsw | {n_db:,} | {args.bits} | skipped (> --hnsw-max-n) | | | | |")
                continue
            res = bench_one(kind, db, queries, args)
            if kind == "flat":
                exact = res
            recall = ball = "-"
            if exact is not None:
                recall = f"{distance_recall(res['dist'], exact['dist'], args.bits):.3f}"
                ball = f"{res['ball_sizes'].sum() / max(exact['ball_sizes'].sum(), 1):.3f}"
            print(
                f"| {kind} | {n_db:,} | {args.bits} | {res['build']:.2f} | {res['knn_qps']:,.0f} | "
                f"{res['range_qps']:,.0f} | {recall} | {ball} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
