"""Speed of the exact metric engine against the per-query algorithm most hashing papers use.

Usage: ``python benchmarks/metric_speed.py [--repeat 3] [--cases map_all_64,nus_5000] [--threads 1]``
(``make bench-metrics``). Prints a Markdown table (the one in ``docs/metric_speed.md``).

Implementations, each timed on the same synthetic, seeded data:

- ``hashbench``: :func:`hashbench.retrieval.metrics.mean_average_precision` (``ties="index"``
  and ``ties="expected"``), or :func:`~hashbench.retrieval.metrics.evaluate` with every leaderboard
  group of the case (``evaluation.metric_groups``; ``evaluate`` and ``evaluate-expected`` rows);
  the table's "evaluate / mAP" column is the cost of all those metrics at once over mAP alone
  (same tie rule); ``hashbench-t2`` / ``evaluate-t2``: the same with the engine's query chunks on
  2 threads (``evaluate(..., threads=2)``, BLAS still at ``--threads``) - the multi-threaded
  option; the single-thread rows are the headline. These rows use the engine as installed (the
  compiled kernels when numba imports; the "engine" column says which); the ``-numpy`` rows force
  the numpy engine (``HASHBENCH_METRICS_BACKEND=numpy``) in the same run. Each hashbench worker
  first runs the same call on 2 queries x 64 items, untimed, so the table times the computation,
  not numba's import and kernel compilation or cache load; that first call is reported apart
  ("first call s": cache load, or compilation on a cold cache);
- ``calctopmap``: a port of the algorithm of ``CalcTopMap`` in DeepHash-pytorch, written here from
  its description: per query, Hamming distances from the +-1 codes by an inner product, relevance
  from the label inner product, a full ``argsort``, take the top ``k``, precision at each relevant
  rank, mean over the relevant items of the top ``k`` (0 for a query with none);
  After the table, the port's time by step (relevance, distances, ``argsort``, the rest),
  :data:`STEP_RUNS` more runs per case: the port's cost depends on the CPU's ``argsort`` and matrix-vector speed, so
  the ratios do too;
- ``torchmetrics``: ``torchmetrics.retrieval.RetrievalMAP`` over every (query, item) pair with
  score ``b + 1 - distance``, only where the pairs fit in memory (``nq * nb <= 60e6``).

Every (case, implementation, repeat) runs in its own subprocess, so the peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is that run's; the data are generated once per
case (in a subprocess too: Linux carries a process's peak RSS across ``fork`` and ``exec``, so the
driver is kept small) and loaded by each worker, and the table also gives the RSS after loading
them (interpreter, numpy and the data). Repeats are interleaved
(every implementation once, then again), and the table gives the min and the median. The headline
runs single-threaded: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` are set to
``--threads`` (default 1) before numpy is imported, and ``torch.set_num_threads`` too. The machine
may be shared: ``os.getloadavg()`` is recorded per case, the process CPU time
(``time.process_time``, which does not count the time other jobs hold the cores) is recorded next
to the wall time, and the ratios (same run, interleaved) are the robust figure.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (queries, database, bits, classes, multi_label, k)
CASES: dict[str, tuple[int, int, int, int, bool, int | None]] = {
    "map_all_16": (1000, 59000, 16, 10, False, None),
    "map_all_32": (1000, 59000, 32, 10, False, None),
    "map_all_48": (1000, 59000, 48, 10, False, None),
    "map_all_64": (1000, 59000, 64, 10, False, None),
    "nus_5000": (2100, 193734, 64, 21, True, 5000),
}
IMPLS = (
    "hashbench",
    "hashbench-expected",
    "evaluate",
    "evaluate-expected",
    "hashbench-numpy",
    "hashbench-expected-numpy",
    "evaluate-numpy",
    "evaluate-expected-numpy",
    "calctopmap",
    "torchmetrics",
    "hashbench-t2",
    "evaluate-t2",
)
#: ``evaluate`` rows are compared with mAP alone under the same tie rule and engine
EVALUATE_BASE = {
    "evaluate": "hashbench",
    "evaluate-expected": "hashbench-expected",
    "evaluate-numpy": "hashbench-numpy",
    "evaluate-expected-numpy": "hashbench-expected-numpy",
    "evaluate-t2": "hashbench-t2",
}
NUMPY_SUFFIX = "-numpy"
#: the ``-t2`` rows: the engine's own query-chunk threads (``evaluate(..., threads=2)``); BLAS stays
#: at ``--threads``
ENGINE_THREADS = 2
TORCHMETRICS_MAX_PAIRS = 60_000_000
#: the CalcTopMap port's steps, timed apart by the ``calctopmap-steps`` worker
STEPS = ("relevance", "distances", "argsort", "rest")
STEPS_IMPL = "calctopmap-steps"
#: timed runs of the port's steps per case (after the table)
STEP_RUNS = 2


# ------------------------------------------------------------------------------------------------
# Data (generated inside each worker)
# ------------------------------------------------------------------------------------------------


def make_data(case: str, seed: int = 0):
    """Seeded codes and labels of a case: codes near a per-class centre, labels one- or multi-hot."""
    import numpy as np

    nq, nb, bits, n_cls, multi, _ = CASES[case]
    rng = np.random.default_rng(seed)
    n = nq + nb
    if multi:  # NUS-WIDE-like: about 2 of 21 labels per item, at least one
        labels = rng.random((n, n_cls)) < 0.09
        labels[np.arange(n), rng.integers(0, n_cls, n)] = True
        first = labels.argmax(1)
    else:
        first = rng.integers(0, n_cls, n)
        labels = np.eye(n_cls, dtype=bool)[first]
    centres = rng.random((n_cls, bits)) < 0.5
    code_bits = centres[first] ^ (rng.random((n, bits)) < 0.3)
    codes = np.packbits(code_bits, axis=1)
    labels = labels.astype(np.uint8)
    return codes[:nq], codes[nq:], labels[:nq], labels[nq:]


# ------------------------------------------------------------------------------------------------
# Reference implementations
# ------------------------------------------------------------------------------------------------


def calctopmap_port(qc, dc, ql, dl, k, steps: dict | None = None):
    """The CalcTopMap algorithm (DeepHash-pytorch), re-written: one query at a time.

    With ``steps`` (a dict), the seconds spent in each step are added to it: ``relevance`` (label
    inner product), ``distances`` (code inner product), ``argsort`` and ``rest``.
    """
    import numpy as np

    q_sign = np.unpackbits(qc, axis=1).astype(np.float32) * 2 - 1
    d_sign = np.unpackbits(dc, axis=1).astype(np.float32) * 2 - 1
    bits = q_sign.shape[1]
    q_lab, d_lab = ql.astype(np.float32), dl.astype(np.float32)
    depth = dc.shape[0] if k is None else k
    clock = time.perf_counter if steps is not None else None
    total = 0.0
    for i in range(qc.shape[0]):
        t0 = clock() if clock else 0.0
        relevant = (d_lab @ q_lab[i] > 0).astype(np.float32)
        t1 = clock() if clock else 0.0
        distance = 0.5 * (bits - d_sign @ q_sign[i])
        t2 = clock() if clock else 0.0
        order = np.argsort(distance)
        t3 = clock() if clock else 0.0
        ranked = relevant[order][:depth]
        n_hits = int(ranked.sum())
        if n_hits:
            hit_ranks = np.flatnonzero(ranked) + 1.0
            total += float(np.mean(np.arange(1, n_hits + 1) / hit_ranks))
        if clock:
            t4 = clock()
            for name, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[name] = steps.get(name, 0.0) + seconds
    return total / qc.shape[0]


def torchmetrics_map(qc, dc, ql, dl, k):
    import numpy as np
    import torch
    from torchmetrics.retrieval import RetrievalMAP

    from hashbench.retrieval.codes import hamming_distances
    from hashbench.retrieval.metrics import relevance

    dist = hamming_distances(qc, dc)
    bits = qc.shape[1] * 8  # score bits + 1 - distance: torchmetrics ranks positive scores only
    preds = torch.from_numpy((bits + 1 - dist.astype(np.float32)).reshape(-1))
    target = torch.from_numpy(relevance(ql, dl)).reshape(-1)
    indexes = torch.arange(qc.shape[0]).repeat_interleave(dc.shape[0])
    metric = RetrievalMAP(top_k=k)
    metric.update(preds, target, indexes=indexes)
    return float(metric.compute())


# ------------------------------------------------------------------------------------------------
# Worker: one (case, implementation) in a fresh process
# ------------------------------------------------------------------------------------------------


def worker(case: str, impl: str) -> dict:
    import resource

    import numpy as np

    data = np.load(os.environ["HASHBENCH_METRIC_DATA"])
    qc, dc, ql, dl = (np.ascontiguousarray(data[n]) for n in ("qc", "dc", "ql", "dl"))
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if impl == STEPS_IMPL:
        steps: dict[str, float] = {}
        calctopmap_port(qc, dc, ql, dl, CASES[case][5], steps)
        return {"steps": steps}
    if impl == "torchmetrics":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from hashbench.retrieval.metric_engine import BACKEND_ENV, load_kernels

    if impl.endswith(NUMPY_SUFFIX):
        os.environ[BACKEND_ENV] = "numpy"
    engine = "numba" if load_kernels() is not None else "numpy"
    compute = hashbench_call(case, impl.removesuffix(NUMPY_SUFFIX))
    first = None
    if impl not in ("calctopmap", "torchmetrics"):
        t0 = time.perf_counter()
        compute(qc[:2], dc[:64], ql[:2], dl[:64])
        first = time.perf_counter() - t0
    start, cpu_start = time.perf_counter(), time.process_time()
    value = compute(qc, dc, ql, dl)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p.get('internal_api')}:{p.get('num_threads')}"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pools = []
    return {
        "seconds": seconds,
        "cpu": cpu,
        "first": first,
        "engine": engine if first is not None else "-",
        "value": float(value),
        "rss_data_mb": rss_data / 1024,
        "peak_rss_mb": peak / 1024,
        "blas": pools,
        "dtype": str(np.asarray(qc).dtype),
    }


def hashbench_call(case: str, impl: str):
    """``f(qc, dc, ql, dl) -> mAP`` of implementation ``impl`` (without the ``-numpy`` suffix)."""
    from hashbench.retrieval import metrics
    from hashbench.retrieval.evaluation import metric_groups

    k = CASES[case][5]
    key = f"mAP@{'all' if k is None else k}"
    if impl == "hashbench":
        return lambda qc, dc, ql, dl: metrics.mean_average_precision(qc, dc, ql, dl, k=k)
    if impl == "hashbench-expected":
        return lambda qc, dc, ql, dl: metrics.mean_average_precision(
            qc, dc, ql, dl, k=k, ties="expected"
        )
    if impl == "hashbench-t2":
        return lambda qc, dc, ql, dl: metrics.evaluate(
            qc, dc, ql, dl, k=k, metrics=("mAP",), threads=ENGINE_THREADS
        )[key]
    if impl in EVALUATE_BASE:
        groups = metric_groups(bool(CASES[case][4]))
        ties = "expected" if impl == "evaluate-expected" else "index"
        threads = ENGINE_THREADS if impl.endswith("-t2") else 1
        return lambda qc, dc, ql, dl: metrics.evaluate(
            qc, dc, ql, dl, k=k, metrics=groups, ties=ties, threads=threads
        )[key]
    if impl == "calctopmap":
        return lambda qc, dc, ql, dl: calctopmap_port(qc, dc, ql, dl, k)
    if impl == "torchmetrics":
        return lambda qc, dc, ql, dl: torchmetrics_map(qc, dc, ql, dl, k)
    raise ValueError(f"unknown implementation {impl!r}")


def run_worker(case: str, impl: str, threads: int, data: Path) -> dict:
    env = dict(os.environ)
    env["HASHBENCH_METRIC_DATA"] = str(data)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", case, impl]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------


def save_data(case: str, path: Path) -> None:
    """Write the case's data from a subprocess: the driver stays small. (Linux keeps a process's
    peak RSS across ``fork``/``exec``, so every worker's ``ru_maxrss`` starts at the driver's.)"""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--make-data", case, str(path)]
    subprocess.run(cmd, check=True)


def fits(case: str, impl: str) -> bool:
    nq, nb = CASES[case][:2]
    return impl != "torchmetrics" or nq * nb <= TORCHMETRICS_MAX_PAIRS


def machine() -> str:
    """CPU model, family and model numbers (the ratios depend on them: see docs/metric_speed.md),
    cores, and the numpy / numba versions."""
    fields = {"Model name": platform.processor() or "?", "CPU family": "?", "Model": "?"}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                fields[name] = value.strip()
    except OSError:  # pragma: no cover - no lscpu
        pass
    import numpy as np

    try:  # the version only: importing numba would raise the driver's RSS, which workers inherit
        numba_version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        numba_version = "not installed"
    return (
        f"{fields['Model name']} (family {fields['CPU family']}, model {fields['Model']}), "
        f"{os.cpu_count()} cores; numpy {np.__version__}, numba {numba_version}"
    )


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "?"
    except OSError:  # pragma: no cover - no git
        return "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated implementations")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repeats per case")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP / torch threads")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--make-data", nargs=2, metavar=("CASE", "NPZ"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import numpy as np

    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if args.make_data:
        case, path = args.make_data
        np.savez(path, **dict(zip(("qc", "dc", "ql", "dl"), make_data(case), strict=True)))
        return
    cases = [c for c in args.cases.split(",") if c]
    impls = [i for i in args.impls.split(",") if i]
    print(f"commit {commit()}; machine: {machine()}; threads: {args.threads}; ")
    print(f"repeats: {args.repeat} (interleaved), subprocess per run\n")
    print(
        "| case | implementation | engine | min s | median s | median CPU s | CalcTopMap / this | "
        "evaluate / mAP | first call s | peak RSS MB (data alone) | mAP | load avg (1 min) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    blas: set[str] = set()
    port_steps: dict[str, list[dict]] = {}
    tmp = tempfile.TemporaryDirectory(prefix="metric_speed_")
    for case in cases:
        data = Path(tmp.name) / f"{case}.npz"
        save_data(case, data)
        load = os.getloadavg()[0]
        runs: dict[str, list[dict]] = {i: [] for i in impls if fits(case, i)}
        for _ in range(args.repeat):
            for impl in runs:
                runs[impl].append(run_worker(case, impl, args.threads, data))
        load = max(load, os.getloadavg()[0])
        ok = {i: [r for r in rs if "error" not in r] for i, rs in runs.items()}
        wall = {i: statistics.median(r["seconds"] for r in rs) for i, rs in ok.items() if rs}
        cpu = {i: statistics.median(r["cpu"] for r in rs) for i, rs in ok.items() if rs}
        for impl, rs in runs.items():
            good = ok[impl]
            if not good:
                print(f"| {case} | {impl} | failed: {rs[0].get('error')} | | | | | | | | | |")
                continue
            times = [r["seconds"] for r in good]
            ratio = f"{wall['calctopmap'] / wall[impl]:.1f}x" if "calctopmap" in wall else "-"
            base = EVALUATE_BASE.get(impl)
            over = "-"
            if base in wall:  # wall-time ratio (CPU-time ratio)
                over = f"{wall[impl] / wall[base]:.2f}x ({cpu[impl] / cpu[base]:.2f}x)"
            peak = max(r["peak_rss_mb"] for r in good)
            data_mb = max(r["rss_data_mb"] for r in good)
            blas.update(good[0]["blas"])
            firsts = [r["first"] for r in good if r.get("first") is not None]
            first = f"{statistics.median(firsts):.2f}" if firsts else "-"
            print(
                f"| {case} | {impl} | {good[0].get('engine', '-')} | {min(times):.3f} | "
                f"{wall[impl]:.3f} | {cpu[impl]:.3f} | {ratio} | {over} | {first} | "
                f"{peak:.0f} ({data_mb:.0f}) | {good[0]['value']:.4f} | {load:.2f} |",
                flush=True,
            )
        if "calctopmap" in runs:
            port_steps[case] = [
                run_worker(case, STEPS_IMPL, args.threads, data) for _ in range(STEP_RUNS)
            ]
    tmp.cleanup()
    print(f"\nthreadpoolctl BLAS pools in the workers: {', '.join(sorted(blas)) or 'none'}")
    print_port_steps(port_steps)


def print_port_steps(port_steps: dict[str, list[dict]]) -> None:
    """Where the CalcTopMap port spends its time, per case: the median of the timed runs."""
    if not port_steps:
        return
    print(f"\nCalcTopMap port by step (seconds over all queries, median of {STEP_RUNS} runs):\n")
    print("| case | " + " | ".join(STEPS) + " | total |")
    print("| --- |" + " --- |" * (len(STEPS) + 1))
    for case, rs in port_steps.items():
        good = [r["steps"] for r in rs if "steps" in r]
        if not good:
            print(f"| {case} | failed: {rs[0].get('error')} |" + " |" * len(STEPS))
            continue
        med = {n: statistics.median(g[n] for g in good) for n in STEPS}
        cells = " | ".join(f"{med[n]:.3f}" for n in STEPS)
        print(f"| {case} | {cells} | {sum(med.values()):.3f} |", flush=True)


if __name__ == "__main__":
    if "--worker" not in sys.argv:
        sys.path.insert(0, str(ROOT))
    main()
