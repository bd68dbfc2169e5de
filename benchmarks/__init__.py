"""Benchmarks: throughput and overhead measured as ratios against a baseline taken in the same run."""
