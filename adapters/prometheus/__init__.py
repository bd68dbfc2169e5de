"""Driven adapter package: Prometheus (prometheus-client) metrics."""
