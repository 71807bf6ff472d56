"""Benchmarks: each module prints markdown tables with ratios against a baseline measured in the same run."""
