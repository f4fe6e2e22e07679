"""How fast could compiled code make ``ties="index"`` mAP@all? A measured floor for issue #17.

    .venv/bin/python benchmarks/metric_floor_c.py [--repeat 5] [--cases map_all_16,map_all_64]

Not part of the package: the script writes a small C kernel to a temporary folder, compiles it
with the system's ``cc -O3 -march=native`` (it stops with a message when there is none) and calls
it through ``ctypes``, beside :func:`hashbench.retrieval.metrics.mean_average_precision` and the
CalcTopMap port of ``benchmarks/metric_speed.py``, on that script's seeded data (single-label
cases only), interleaved, one thread, CPU time (``time.process_time``), min and median.

The kernel is the direct algorithm of the ``index`` rule: the database is put in tie order once
(``db[perm]``, ``perm`` the protocol's seeded shuffle), then per query one pass computes every
distance (``popcount`` of 64-bit words) and the per-distance counts of all and of relevant items,
and a second pass walks the items in tie order, so an item's rank is the count of items at smaller
distances plus those of its distance seen so far, and AP sums (relevant so far) / rank over the
relevant items. Two passes over the ``nq x nb`` pairs, scalar code; its value must equal the
engine's (checked, printed).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

KERNEL = r"""
#include <stdint.h>
#include <string.h>
double map_all_index(const uint64_t *q, const uint64_t *db, const int32_t *ql,
                     const int32_t *dl, int64_t nq, int64_t nb, int nw, uint8_t *dist) {
    double total = 0.0;
    int bits = nw * 64;
    for (int64_t i = 0; i < nq; i++) {
        int64_t all[513], rel[513];
        memset(all, 0, sizeof all);
        memset(rel, 0, sizeof rel);
        const uint64_t *qi = q + i * nw;
        int32_t label = ql[i];
        for (int64_t j = 0; j < nb; j++) {
            int d = 0;
            for (int w = 0; w < nw; w++) d += __builtin_popcountll(qi[w] ^ db[j * nw + w]);
            dist[j] = (uint8_t)d;
            all[d]++;
            rel[d] += (dl[j] == label);
        }
        int64_t n_all = 0, n_rel = 0;
        for (int d = 0; d <= bits; d++) {
            int64_t a = all[d], r = rel[d];
            all[d] = n_all; rel[d] = n_rel;  /* items at smaller distances */
            n_all += a; n_rel += r;
        }
        if (n_rel == 0) continue;
        double ap = 0.0;
        for (int64_t j = 0; j < nb; j++) {
            int d = dist[j];
            int64_t rank = ++all[d];
            if (dl[j] == label) ap += (double)(++rel[d]) / (double)rank;
        }
        total += ap / (double)n_rel;
    }
    return total / (double)nq;
}
"""


def _metric_speed():
    spec = importlib.util.spec_from_file_location(
        "metric_speed", REPO / "benchmarks/metric_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_kernel(folder: Path):
    """Compile the kernel; its ``ctypes`` function."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("metric_floor_c: no C compiler (cc / gcc) on PATH; install one (e.g. Debian gcc)")
    source, library = folder / "map_index.c", folder / "libmap_index.so"
    source.write_text(KERNEL)
    flags = ["-O3", "-march=native", "-shared", "-fPIC"]
    subprocess.run([cc, *flags, "-o", str(library), str(source)], check=True)
    fn = ctypes.CDLL(str(library)).map_all_index
    fn.restype = ctypes.c_double
    p = ctypes.c_void_p
    fn.argtypes = [p, p, p, p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int, p]
    return fn


def compiled_map(fn, qc, dc, ql, dl, seed: int = 0) -> float:
    """mAP@all, ``index`` ties, single-label, through the compiled kernel."""
    nb = dc.shape[0]
    perm = np.random.default_rng(seed).permutation(nb)  # hashbench's tie order (tie_order)
    pad = (-qc.shape[1]) % 8  # whole 64-bit words; zero bytes add no distance
    q = np.ascontiguousarray(np.pad(qc, ((0, 0), (0, pad)))).view(np.uint64)
    d = np.ascontiguousarray(np.pad(dc[perm], ((0, 0), (0, pad)))).view(np.uint64)
    q_label = np.ascontiguousarray(ql.argmax(1), dtype=np.int32)
    d_label = np.ascontiguousarray(dl[perm].argmax(1), dtype=np.int32)
    scratch = np.empty(nb, np.uint8)
    args = (q.ctypes.data, d.ctypes.data, q_label.ctypes.data, d_label.ctypes.data)
    return fn(*args, q.shape[0], nb, q.shape[1], scratch.ctypes.data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="map_all_16,map_all_64")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from hashbench.bench.records import git_commit
    from hashbench.retrieval.metrics import mean_average_precision

    ms = _metric_speed()
    git = git_commit(REPO)
    commit = git["commit"][:7] + (" + uncommitted changes" if git["dirty"] else "")
    print(f"commit {commit}; one thread; CPU seconds (time.process_time), {args.repeat} repeats\n")
    print(
        "| case | implementation | min s | median s | CalcTopMap port / this (min) | mAP | load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        fn = build_kernel(Path(tmp))
        for case in args.cases.split(","):
            if ms.CASES[case][4]:
                sys.exit(f"metric_floor_c: {case} is multi-label; the kernel is single-label")
            qc, dc, ql, dl = ms.make_data(case)
            data = (qc, dc, ql, dl)
            runs = {
                "compiled (C, scalar)": partial(compiled_map, fn, *data),
                "hashbench": partial(mean_average_precision, *data, ties="index"),
                "calctopmap": partial(ms.calctopmap_port, *data, None),
            }
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            values: dict[str, float] = {}
            for _ in range(args.repeat):
                for name, run in runs.items():
                    t0 = time.process_time()
                    values[name] = float(run())
                    seconds[name].append(time.process_time() - t0)
            ref = min(seconds["calctopmap"])
            load = os.getloadavg()[0]
            for name in runs:
                best, med = min(seconds[name]), statistics.median(seconds[name])
                print(
                    f"| {case} | {name} | {best:.3f} | {med:.3f} | {ref / best:.1f}x | "
                    f"{values[name]:.10f} | {load:.2f} |"
                )
            gap = abs(values["compiled (C, scalar)"] - values["hashbench"])
            if gap > 1e-12:
                sys.exit(f"metric_floor_c: the kernel and the engine differ by {gap:.3g} on {case}")


if __name__ == "__main__":
    main()
