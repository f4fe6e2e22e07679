"""Fixtures of the retrieval tests."""

from __future__ import annotations

import pytest

from hashbench.retrieval.metric_engine import BACKEND_ENV


@pytest.fixture(params=["numba", "numpy"])
def metrics_backend(request, monkeypatch):
    """Runs a test once with the compiled kernels and once with the numpy engine
    (``HASHBENCH_METRICS_BACKEND``); skips the compiled run where numba is missing."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv(BACKEND_ENV, request.param)
    return request.param
