"""Driven adapter: prometheus-client implementation of ``Metrics`` and ``MetricsExporter``.

Every canonical name of ``ports/metrics.py`` is declared here once, with its kind and label names; recording an
unknown name, the wrong kind or a different label set raises ``MetricError`` at once (tests catch typos the first
time a code path runs). Each instance owns its ``CollectorRegistry`` (never the global one), so tests and
containers do not share values.

Multiprocess mode: prometheus-client decides at import time, from ``PROMETHEUS_MULTIPROC_DIR``, whether values
live in per-process mmap files; ``switchyard serve --workers N`` sets that variable before the workers start.
Then the page aggregates every worker's files (``MultiProcessCollector``), gauges sum over live workers, and a
worker marks itself dead when its container shuts down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Final, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from ports.metrics import Metrics, NullMetrics
from ports.metrics_export import MetricsExporter, MetricsPage

__all__ = ["METRICS", "MetricError", "MetricSpec", "PrometheusMetrics", "exporter_for", "metrics_resource"]

Kind = Literal["counter", "gauge", "histogram"]


class MetricError(ValueError):
    """A metric was recorded under an undeclared name, as the wrong kind, or with the wrong labels."""


class MetricSpec:
    """One declared metric."""

    __slots__ = ("buckets", "help", "kind", "labels")

    def __init__(
        self, kind: Kind, labels: tuple[str, ...], help: str, buckets: tuple[float, ...] | None = None
    ) -> None:
        self.kind = kind
        self.labels = labels
        self.help = help
        self.buckets = buckets


_LATENCY: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_TTFT: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_HTTP: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FACTOR: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)

# The canonical names (ports/metrics.py is the contract; tests check the two lists agree).
METRICS: Final[dict[str, MetricSpec]] = {
    "http_requests_total": MetricSpec("counter", ("route", "method", "status"), "HTTP requests"),
    "http_request_duration_seconds": MetricSpec("histogram", ("route", "method"), "HTTP request latency", _HTTP),
    "websocket_connections": MetricSpec("gauge", (), "Open WebSocket connections"),
    "websocket_messages_total": MetricSpec("counter", ("direction",), "WebSocket messages (in/out)"),
    "streams_started_total": MetricSpec("counter", ("kind",), "Streams started"),
    "streams_completed_total": MetricSpec("counter", ("outcome",), "Streams ended, by terminal outcome"),
    "streams_active": MetricSpec("gauge", (), "Streams producing now"),
    "stream_events_total": MetricSpec("counter", ("type",), "Stream events sent"),
    "stream_consumers": MetricSpec("gauge", (), "Attached stream consumers"),
    "stream_resumes_total": MetricSpec("counter", (), "Stream resumes"),
    "stream_cancels_total": MetricSpec("counter", ("reason",), "Stream cancels"),
    "stream_consumers_dropped_total": MetricSpec("counter", ("reason",), "Consumers dropped"),
    "provider_requests_total": MetricSpec("counter", ("provider", "model", "outcome"), "Provider calls"),
    "provider_latency_seconds": MetricSpec("histogram", ("provider", "model"), "Provider call latency", _LATENCY),
    "provider_ttft_seconds": MetricSpec("histogram", ("provider", "model"), "Time to first token", _TTFT),
    "provider_errors_total": MetricSpec("counter", ("provider", "type"), "Provider errors by type"),
    "provider_retries_total": MetricSpec("counter", ("provider",), "Provider call retries"),
    "provider_fallbacks_total": MetricSpec("counter", ("from_model", "to_model"), "Model fallbacks"),
    "tokens_total": MetricSpec("counter", ("provider", "model", "kind"), "Tokens by kind (input, output ...)"),
    "cost_usd_total": MetricSpec("counter", ("provider", "model"), "Cost in USD from catalog prices"),
    "usage_units_total": MetricSpec(
        "counter", ("provider", "model", "unit"), "Non-token usage units (images, characters, audio/video seconds)"
    ),
    "ledger_queue_depth": MetricSpec("gauge", (), "Usage records waiting in memory"),
    "ledger_flush_failures_total": MetricSpec("counter", (), "Failed usage ledger writes"),
    "ledger_spilled_records_total": MetricSpec("counter", (), "Usage records spilled to the local file"),
    "ledger_records_written_total": MetricSpec("counter", (), "Usage records written to the database"),
    "speech_streams_cut_total": MetricSpec(
        "counter", ("provider", "model"), "Speech audio cut short by a vendor failure after its first chunk"
    ),
    "transcription_audio_seconds_total": MetricSpec("counter", ("provider", "model"), "Audio seconds transcribed"),
    "transcription_processing_seconds": MetricSpec("histogram", ("provider", "model"), "Transcription time", _LATENCY),
    "transcription_realtime_factor": MetricSpec(
        "histogram", ("provider", "model"), "Processing time / audio duration", _FACTOR
    ),
    "transcription_words_total": MetricSpec("counter", ("provider", "model"), "Words transcribed"),
    "transcription_live_first_partial_seconds": MetricSpec(
        "histogram", ("provider", "model"), "Live transcription: first audio byte to first partial", _TTFT
    ),
    "transcription_live_final_seconds": MetricSpec(
        "histogram", ("provider", "model"), "Live transcription: end of audio to last final", _TTFT
    ),
    "voiced_chat_streams_total": MetricSpec(
        "counter", ("provider", "model", "status"), "Voiced chat streams ended, by speech status (ok, failed, stopped)"
    ),
    "voiced_chat_segments_total": MetricSpec(
        "counter", ("provider", "model", "outcome"), "Voiced chat segments sent to the vendor, by outcome"
    ),
    "voiced_chat_characters_total": MetricSpec("counter", ("provider", "model"), "Voiced chat characters voiced"),
    "voiced_chat_first_audio_seconds": MetricSpec(
        "histogram", ("provider", "model"), "Voiced chat: first text published to first audio byte published", _TTFT
    ),
    "realtime_sessions_total": MetricSpec(
        "counter", ("provider", "model", "outcome"), "Realtime voice sessions ended, by outcome"
    ),
    "realtime_audio_seconds_total": MetricSpec(
        "counter", ("provider", "model", "direction"), "Realtime audio seconds relayed (in: client, out: model)"
    ),
    "realtime_turns_total": MetricSpec("counter", ("provider", "model", "status"), "Realtime model turns, by status"),
    "realtime_first_audio_seconds": MetricSpec(
        "histogram", ("provider", "model"), "Realtime: end of the user's turn to the answer's first audio", _TTFT
    ),
    "breaker_state": MetricSpec("gauge", ("provider", "model"), "Circuit breaker: 0 closed, 1 half-open, 2 open"),
    "breaker_transitions_total": MetricSpec(
        "counter", ("provider", "model", "to"), "Circuit breaker transitions, by the state entered"
    ),
    "breaker_skips_total": MetricSpec(
        "counter", ("provider", "model"), "Attempts skipped: the model's circuit was open"
    ),
}
# Gauges sum over live workers, except a breaker's level: each worker's view of one shared state, the worst counts.
_GAUGE_MODES: Final[dict[str, Literal["livesum", "livemax"]]] = {"breaker_state": "livemax"}


def _multiprocess_mode() -> bool:
    # prometheus-client chose its value class at import time from PROMETHEUS_MULTIPROC_DIR.
    return values.ValueClass is not values.MutexValue


class PrometheusMetrics:
    """``Metrics`` on prometheus-client, plus ``render()`` for ``GET /metrics``."""

    def __init__(self, specs: dict[str, MetricSpec] | None = None) -> None:
        self.multiprocess = _multiprocess_mode()
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode values go to mmap files and the page is collected from them instead.
        target = None if self.multiprocess else self.registry
        self._specs = dict(METRICS if specs is None else specs)
        self._metrics: dict[str, Any] = {}
        # (name, kind, *label items) -> the labelled child, checked once: the same few label sets are recorded on
        # every request, and prometheus-client's ``labels()`` takes a lock and rebuilds the key each time.
        self._children: dict[tuple[Any, ...], Any] = {}
        for name, spec in self._specs.items():
            self._metrics[name] = self._build(name, spec, target)

    @staticmethod
    def _build(name: str, spec: MetricSpec, registry: CollectorRegistry | None) -> Any:
        if spec.kind == "counter":
            return Counter(name, spec.help, spec.labels, registry=registry)
        if spec.kind == "gauge":
            mode = _GAUGE_MODES.get(name, "livesum")
            return Gauge(name, spec.help, spec.labels, registry=registry, multiprocess_mode=mode)
        buckets = spec.buckets or Histogram.DEFAULT_BUCKETS
        return Histogram(name, spec.help, spec.labels, registry=registry, buckets=buckets)

    def declare(self, name: str, kind: Kind, labels: tuple[str, ...] = (), help: str = "") -> None:
        """Declare an ad-hoc metric (idempotent for the same declaration)."""
        spec = MetricSpec(kind, labels, help or name)
        existing = self._specs.get(name)
        if existing is not None:
            if (existing.kind, existing.labels) != (kind, labels):
                raise MetricError(f"metric {name!r} is already declared as a {existing.kind} with {existing.labels}")
            return
        self._metrics[name] = self._build(name, spec, None if self.multiprocess else self.registry)
        self._specs[name] = spec

    def _child(self, name: str, kind: Kind, labels: dict[str, str]) -> Any:
        key = (name, kind, *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._labelled(name, kind, labels)
        return child

    def _labelled(self, name: str, kind: Kind, labels: dict[str, str]) -> Any:
        spec = self._specs.get(name)
        if spec is None:
            raise MetricError(f"unknown metric {name!r} (declare it in adapters/prometheus/metrics.py)")
        if spec.kind != kind:
            raise MetricError(f"metric {name!r} is a {spec.kind}, not a {kind}")
        if set(labels) != set(spec.labels):
            raise MetricError(f"metric {name!r} takes labels {sorted(spec.labels)}, got {sorted(labels)}")
        metric = self._metrics[name]
        return metric.labels(**labels) if labels else metric

    def increment(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (>= 0) to a counter."""
        self._child(name, "counter", labels).inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record ``value`` in a histogram."""
        self._child(name, "histogram", labels).observe(value)

    def gauge_add(self, name: str, delta: float, **labels: str) -> None:
        """Move a gauge by ``delta``."""
        self._child(name, "gauge", labels).inc(delta)

    def render(self) -> MetricsPage:
        """The Prometheus text exposition of this process, or of every worker in multiprocess mode."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return MetricsPage(generate_latest(registry), CONTENT_TYPE_LATEST)
        return MetricsPage(generate_latest(self.registry), CONTENT_TYPE_LATEST)

    def close(self) -> None:
        """Multiprocess mode: drop this worker's live gauges from the aggregate."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def metrics_resource(enabled: bool) -> Iterator[Metrics]:
    """Container resource: ``PrometheusMetrics`` when ``http.metrics_enabled``, else ``NullMetrics``."""
    if not enabled:
        yield NullMetrics()
        return
    metrics = PrometheusMetrics()
    try:
        yield metrics
    finally:
        metrics.close()


def exporter_for(metrics: Metrics) -> MetricsExporter | None:
    """The exposition side of ``metrics`` when it has one (``None``: ``/metrics`` answers 404)."""
    return metrics if isinstance(metrics, PrometheusMetrics) else None
