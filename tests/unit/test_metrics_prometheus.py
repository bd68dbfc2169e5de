"""PrometheusMetrics: every canonical name declared with its labels, typos fail loudly, values reach the page."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

import ports.metrics
from adapters.prometheus.metrics import METRICS, MetricError, PrometheusMetrics, exporter_for, metrics_resource
from ports.metrics import NullMetrics

_DECLARED = re.compile(r"``([a-z_]+)(?:\[([a-z_, ]+)\])?``")


def _canonical() -> dict[str, tuple[str, ...]]:
    doc = ports.metrics.__doc__ or ""
    found = {}
    for name, labels in _DECLARED.findall(doc.split("Canonical names", 1)[1]):
        found[name] = tuple(label.strip() for label in labels.split(",")) if labels else ()
    return found


def _samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    page = metrics.render().body.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def test_every_canonical_name_is_declared_with_its_labels() -> None:
    """The adapter declares exactly the names and label sets that ports/metrics.py documents."""
    canonical = _canonical()
    assert len(canonical) >= 25
    assert {name: spec.labels for name, spec in METRICS.items()} == canonical


def test_values_reach_the_page() -> None:
    """Counters, histograms and gauges appear in the text exposition with their labels."""
    metrics = PrometheusMetrics()
    metrics.increment("http_requests_total", route="/health", method="GET", status="200")
    metrics.increment("http_requests_total", 2, route="/health", method="GET", status="200")
    metrics.observe("provider_ttft_seconds", 0.3, provider="openai", model="gpt-x")
    metrics.gauge_add("streams_active", 2)
    metrics.gauge_add("streams_active", -1)
    samples = _samples(metrics)
    assert samples[("http_requests_total", (("method", "GET"), ("route", "/health"), ("status", "200")))] == 3
    assert samples[("provider_ttft_seconds_count", (("model", "gpt-x"), ("provider", "openai")))] == 1
    assert samples[("streams_active", ())] == 1
    assert "text/plain" in metrics.render().content_type


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.increment("http_request_total", route="/", method="GET", status="200"), "unknown metric"),
        (lambda m: m.increment("http_requests_total", route="/", method="GET"), "takes labels"),
        (lambda m: m.increment("stream_resumes_total", reason="x"), "takes labels"),
        (lambda m: m.observe("http_requests_total", 1.0, route="/", method="GET", status="200"), "is a counter"),
        (lambda m: m.gauge_add("tokens_total", 1.0, provider="p", model="m", kind="input"), "is a counter"),
    ],
)
def test_typos_fail_loudly(call: object, message: str) -> None:
    """An undeclared name, a wrong label set or the wrong kind raises MetricError at once."""
    metrics = PrometheusMetrics()
    with pytest.raises(MetricError, match=message):
        call(metrics)  # type: ignore[operator]


def test_a_label_set_recorded_again_reaches_the_same_series_and_is_still_checked() -> None:
    """Recording reuses the labelled series (in any keyword order) without relaxing the checks on a new call."""
    metrics = PrometheusMetrics()
    for _ in range(3):
        metrics.increment("tokens_total", 2, provider="fake", model="echo", kind="input")
    metrics.increment("tokens_total", kind="input", model="echo", provider="fake")
    assert _samples(metrics)[("tokens_total", (("kind", "input"), ("model", "echo"), ("provider", "fake")))] == 7
    with pytest.raises(MetricError, match="is a counter"):
        metrics.observe("tokens_total", 1.0, provider="fake", model="echo", kind="input")


def test_instances_do_not_share_values() -> None:
    """Each instance has its own registry (tests and containers never see each other's counts)."""
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.increment("stream_resumes_total")
    assert _samples(first)[("stream_resumes_total", ())] == 1
    assert _samples(second)[("stream_resumes_total", ())] == 0


def test_ad_hoc_metrics_can_be_declared() -> None:
    """declare() adds an ad-hoc metric; redeclaring it differently is refused."""
    metrics = PrometheusMetrics()
    metrics.declare("cache_hits_total", "counter", ("cache",))
    metrics.declare("cache_hits_total", "counter", ("cache",))
    metrics.increment("cache_hits_total", cache="catalog")
    assert _samples(metrics)[("cache_hits_total", (("cache", "catalog"),))] == 1
    with pytest.raises(MetricError):
        metrics.declare("cache_hits_total", "gauge")


def test_disabled_metrics_are_null_and_have_no_page() -> None:
    """With http.metrics_enabled off the resource yields NullMetrics, which has no exposition."""
    resource = metrics_resource(False)
    metrics = next(resource)
    assert isinstance(metrics, NullMetrics)
    assert exporter_for(metrics) is None
    enabled = next(metrics_resource(True))
    assert isinstance(enabled, PrometheusMetrics)
    assert exporter_for(enabled) is enabled
