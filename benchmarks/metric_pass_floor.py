"""Is the ``ties="index"`` pass at its floor? The kernel's pass over a row, three ways (issue #17).

    .venv/bin/python benchmarks/metric_pass_floor.py [--queries 200] [--repeat 5]

(``make bench-metrics-floor``.) Most of ``ties="index"`` mAP is one pass of
:func:`hashbench.retrieval.kernels.relevant_ranks` over each row: in tie order, every item bumps
its distance bucket's counter, and a relevant item records (its position in the bucket, its
distance). This script times that pass alone, on the distances and relevance of the first
``--queries`` queries of ``benchmarks/metric_speed.py``'s ``map_all_64`` case (1,000 x 59,000,
64 bits), written three ways:

- ``numba``: the loop as the kernel writes it (branch-free record: always written, the slot
  advances by ``rel``), with ``int32`` counters and records like the C variants (the kernel's
  are ``int64``);
- ``C scalar``: the same loop in C (``cc -O3 -march=native``);
- ``C AVX-512``: 16 items per step - ``VPCONFLICTD`` finds earlier lanes with the same distance
  (their count is the in-vector offset), a gather reads the 16 counters, a scatter writes them
  back (overlapping lanes are written in lane order, so the last one leaves the final count) and a
  compress-store keeps the relevant lanes' records. Needs AVX-512F/CD and VPOPCNTDQ; "n/a" without.

Not part of the package: the C code is compiled into a temporary folder at run time (the script
stops with a message where there is no ``cc``). Every variant must write the same records (checked
before timing). Times are process CPU seconds (``time.process_time``), interleaved repeats, scaled
to 1,000 queries; ns per pair = seconds / (1,000 x 59,000).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

/* items j0..nb-1 of one row, one at a time; returns the records written so far */
static inline int64_t scalar_steps(const uint8_t *d, const uint8_t *r, int64_t j0, int64_t nb,
                                   int32_t *c, int32_t *out, int64_t k) {
    for (int64_t j = j0; j < nb; j++) {
        int dd = d[j];
        int32_t p = c[dd];
        c[dd] = p + 1;
        out[k] = (p << 8) | dd;
        k += r[j];
    }
    return k;
}

/* records: row i at record + i * (nb + 1); ks[i]: its relevant items. Records (p << 8) | d. */
void pass_scalar(const uint8_t *dist, const uint8_t *rel, int64_t nq, int64_t nb, int nk,
                 int32_t *record, int64_t *ks) {
    int32_t c[256];
    for (int64_t i = 0; i < nq; i++) {
        memset(c, 0, sizeof(int32_t) * nk);
        ks[i] = scalar_steps(dist + i * nb, rel + i * nb, 0, nb, c, record + i * (nb + 1), 0);
    }
}

#ifdef WITH_AVX512
void pass_avx512(const uint8_t *dist, const uint8_t *rel, int64_t nq, int64_t nb, int nk,
                 int32_t *record, int64_t *ks) {
    int32_t c[256];
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < nq; i++) {
        memset(c, 0, sizeof(int32_t) * nk);
        const uint8_t *d = dist + i * nb, *r = rel + i * nb;
        int32_t *out = record + i * (nb + 1);
        int64_t k = 0, j = 0;
        for (; j + 16 <= nb; j += 16) {
            __m512i dv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(d + j)));
            __m512i rv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(r + j)));
            __m512i dup = _mm512_popcnt_epi32(_mm512_conflict_epi32(dv));
            __m512i p = _mm512_add_epi32(_mm512_i32gather_epi32(dv, c, 4), dup);
            _mm512_i32scatter_epi32(c, dv, _mm512_add_epi32(p, one), 4);
            __mmask16 m = _mm512_test_epi32_mask(rv, rv);
            _mm512_mask_compressstoreu_epi32(out + k, m,
                                             _mm512_or_si512(_mm512_slli_epi32(p, 8), dv));
            k += __builtin_popcount((unsigned)m);
        }
        ks[i] = scalar_steps(d, r, j, nb, c, out, k);
    }
}
#endif
"""

AVX512_FLAGS = ("avx512f", "avx512cd", "avx512_vpopcntdq")


def has_avx512() -> bool:
    """Whether /proc/cpuinfo lists every flag the AVX-512 variant needs."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return all(f in flags for f in AVX512_FLAGS)


def build(folder: Path, avx512: bool) -> ctypes.CDLL:
    """Compile :data:`C_SOURCE` in ``folder``; the library's functions typed for ctypes."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("metric_pass_floor: no C compiler (cc or gcc) on PATH; install gcc.")
    src, lib = folder / "pass.c", folder / "libpass.so"
    src.write_text(C_SOURCE)
    cmd = [cc, "-O3", "-march=native", "-shared", "-fPIC", "-o", str(lib), str(src)]
    if avx512:
        cmd.insert(1, "-DWITH_AVX512")
    subprocess.run(cmd, check=True)
    dll = ctypes.CDLL(str(lib))
    names = ["pass_scalar"] + (["pass_avx512"] if avx512 else [])
    for name in names:
        fn = getattr(dll, name)
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                       ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
    return dll


def numba_pass():
    """The kernel's pass as a numba function ``f(dist, rel, n_buckets, record, ks)``."""
    from numba import njit

    @njit(nogil=True, cache=False)
    def run(dist, rel, n_buckets, record, ks):
        n_q, nb = dist.shape
        c = np.zeros(n_buckets, np.int32)
        for i in range(n_q):
            c[:] = 0
            d_row, r_row, out = dist[i], rel[i], record[i]
            k = 0
            for j in range(nb):
                d = np.int32(d_row[j])
                p = c[d]
                c[d] = p + 1
                out[k] = (p << 8) | d
                k += r_row[j]
            ks[i] = k

    return run


def c_pass(dll: ctypes.CDLL, name: str):
    """A C variant as ``f(dist, rel, n_buckets, record, ks)``."""
    fn = getattr(dll, name)

    def run(dist, rel, n_buckets, record, ks):
        n_q, nb = dist.shape
        fn(
            dist.ctypes.data,
            rel.ctypes.data,
            n_q,
            nb,
            n_buckets,
            record.ctypes.data,
            ks.ctypes.data,
        )

    return run


def passes(folder: Path) -> dict:
    """Every variant this machine can run: name -> ``f(dist, rel, n_buckets, record, ks)``."""
    avx512 = has_avx512()
    dll = build(folder, avx512)
    out = {"numba": numba_pass(), "C scalar": c_pass(dll, "pass_scalar")}
    if avx512:
        out["C AVX-512"] = c_pass(dll, "pass_avx512")
    return out


def records(run, dist: np.ndarray, rel: np.ndarray, n_buckets: int) -> list[list[int]]:
    """Each row's records, as lists (for comparing variants)."""
    record = np.zeros((dist.shape[0], dist.shape[1] + 1), np.int32)
    ks = np.zeros(dist.shape[0], np.int64)
    run(dist, rel, n_buckets, record, ks)
    return [record[i, : ks[i]].tolist() for i in range(dist.shape[0])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="queries timed (of 1,000)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repeats")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    import metric_speed

    from hashbench.bench.records import git_commit
    from hashbench.retrieval.codes import hamming_distances

    qc, dc, ql, dl = metric_speed.make_data("map_all_64")
    n_q, nb = min(args.queries, qc.shape[0]), dc.shape[0]
    dist = np.ascontiguousarray(hamming_distances(qc[:n_q], dc))
    rel = (dl.argmax(1)[None, :] == ql[:n_q].argmax(1)[:, None]).astype(np.uint8)
    n_buckets = qc.shape[1] * 8 + 1
    git = git_commit(REPO)
    with tempfile.TemporaryDirectory(prefix="metric_pass_floor_") as tmp:
        runs = passes(Path(tmp))
        small = slice(0, min(n_q, 8))
        want = records(runs["numba"], dist[small], rel[small], n_buckets)
        for name, run in runs.items():
            if records(run, dist[small], rel[small], n_buckets) != want:
                raise SystemExit(f"metric_pass_floor: {name} writes other records than numba")
        record = np.zeros((n_q, nb + 1), np.int32)
        ks = np.zeros(n_q, np.int64)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, run in runs.items():
                start = time.process_time()
                run(dist, rel, n_buckets, record, ks)
                times[name].append((time.process_time() - start) * 1000 / n_q)
    dirty = " + uncommitted changes" if git.get("dirty") else ""
    print(f"commit {git.get('commit', '?')[:7]}{dirty}; {n_q} queries x {nb} items, 64 bits, "
          f"scaled to 1,000 queries; CPU s, {args.repeat} interleaved repeats; "
          f"AVX-512 variant: {'yes' if 'C AVX-512' in runs else 'n/a (CPU lacks ' + ', '.join(AVX512_FLAGS) + ')'}\n")  # fmt: skip
    print("| pass | min s | median s | ns per pair (min) |")
    print("| --- | --- | --- | --- |")
    for name, ts in times.items():
        per_pair = min(ts) / (1000 * nb) * 1e9
        print(f"| {name} | {min(ts):.4f} | {statistics.median(ts):.4f} | {per_pair:.2f} |")


if __name__ == "__main__":
    main()
