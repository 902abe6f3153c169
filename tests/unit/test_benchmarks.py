"""The parse benchmark itself runs (on a few vendors), so `make bench` does not rot."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_parse_benchmark_runs_on_a_few_vendors() -> None:
    from benchmarks.run import parse_benchmark

    result = parse_benchmark(n=5, repeats=1)  # asserts every vendor and reference DAG loaded without errors
    assert result["n"] == 5 and result["kassebro_s"] > 0 and result["reference_s"] > 0
