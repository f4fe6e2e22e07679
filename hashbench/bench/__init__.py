"""Benchmark sweeps, per-cell records, the leaderboard and its figures (DESIGN.md, ``bench/``).

- :mod:`~hashbench.bench.runner`: every (method, bits, seed) cell of ``benchmarks/<dataset>.yaml``;
- :mod:`~hashbench.bench.records`: one JSON record per cell, written atomically;
- :mod:`~hashbench.bench.leaderboard`: ``results/leaderboard.md`` and ``.csv`` from the records;
- :mod:`~hashbench.bench.plots`: the figures;
- :mod:`~hashbench.bench.cli`: ``hashbench bench`` (:func:`~hashbench.bench.cli.bench_main`).

Nothing heavy is imported here.
"""
