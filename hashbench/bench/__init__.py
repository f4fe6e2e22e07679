"""Benchmark sweeps, per-cell records, the leaderboard and its figures (``docs/architecture.md``).

Data flows one way, and so do the imports:

- :mod:`~hashbench.bench.config`: ``benchmarks/<dataset>.yaml`` -> :class:`BenchConfig`;
- :mod:`~hashbench.bench.cells`: the grid's cells and the configuration each resolves to (deep
  cells through :mod:`hashbench.training`), hashed;
- :mod:`~hashbench.bench.executors`: how one deep or baseline cell runs;
- :mod:`~hashbench.bench.sweep`: plan (resume / rerun / retry), run, one record per cell;
- :mod:`~hashbench.bench.records`: the JSON records, written atomically;
- :mod:`~hashbench.bench.claims`: the papers' claims (``benchmarks/claims.yaml``) and their verdicts;
- :mod:`~hashbench.bench.tables` / :mod:`~hashbench.bench.leaderboard`: ``results/leaderboard.md``
  and ``.csv`` from the records; :mod:`~hashbench.bench.plots`: the figures;
- :mod:`~hashbench.bench.cli`: ``hashbench bench`` / ``hashbench leaderboard`` (argument parsing
  only; it imports the sweep, never the other way round).

Nothing heavy is imported here.
"""
