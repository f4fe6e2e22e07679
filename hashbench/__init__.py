"""hashbench: a benchmark suite for learning-to-hash image retrieval."""

__version__ = "0.1.0"
