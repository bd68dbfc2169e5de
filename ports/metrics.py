"""Driven port: metrics, by name. The Prometheus adapter declares each name below; fakes record calls.

Canonical names (labels in brackets), so producers and the adapter agree:

- HTTP/WS: ``http_requests_total[route, method, status]``, ``http_request_duration_seconds[route, method]``,
  ``websocket_connections`` (gauge), ``websocket_messages_total[direction]``
- streams: ``streams_started_total[kind]``, ``streams_completed_total[outcome]``, ``streams_active`` (gauge),
  ``stream_events_total[type]``, ``stream_consumers`` (gauge), ``stream_resumes_total``,
  ``stream_cancels_total[reason]``, ``stream_consumers_dropped_total[reason]``
- providers: ``provider_requests_total[provider, model, outcome]``, ``provider_latency_seconds[provider, model]``,
  ``provider_ttft_seconds[provider, model]``, ``provider_errors_total[provider, type]``,
  ``provider_retries_total[provider]``, ``provider_fallbacks_total[from_model, to_model]``,
  ``tokens_total[provider, model, kind]``, ``usage_units_total[provider, model, unit]`` (images, characters,
  audio_seconds, video_seconds), ``cost_usd_total[provider, model]``
- ledger: ``ledger_queue_depth`` (gauge), ``ledger_flush_failures_total``, ``ledger_spilled_records_total``,
  ``ledger_records_written_total``
- speech: ``speech_streams_cut_total[provider, model]`` (audio cut short after its first chunk),
  ``transcription_audio_seconds_total[provider, model]``,
  ``transcription_processing_seconds[provider, model]``, ``transcription_realtime_factor[provider, model]``,
  ``transcription_words_total[provider, model]`` (files and live sessions alike; for a live session the
  processing time runs from its first audio byte to its last final),
  ``transcription_live_first_partial_seconds[provider, model]`` (first audio byte to first partial),
  ``transcription_live_final_seconds[provider, model]`` (end of the client's audio to the session's last final)
- voiced chat (a chat stream that asks for speech): ``voiced_chat_streams_total[provider, model, status]`` (the
  requested speech model; status: ok, failed (a speech_error) or stopped (the text failed or the stream was
  cancelled first)),
  ``voiced_chat_segments_total[provider, model, outcome]`` (outcome: done, the error code, or cancelled),
  ``voiced_chat_characters_total[provider, model]`` (characters voiced),
  ``voiced_chat_first_audio_seconds[provider, model]`` (first text published to first audio byte published)
- realtime voice: ``realtime_sessions_total[provider, model, outcome]`` (outcome: done, cancelled or the error
  code), ``realtime_audio_seconds_total[provider, model, direction]`` (in: the client's audio, out: the model's),
  ``realtime_turns_total[provider, model, status]`` (a model response ended: completed, cancelled, interrupted ...),
  ``realtime_first_audio_seconds[provider, model]`` (end of the user's turn, a commit, text or tool result, to the
  first audio of the answer)
- breakers: ``breaker_state[provider, model]`` (gauge: 0 closed, 1 half-open, 2 open, as this process last saw it),
  ``breaker_transitions_total[provider, model, to]`` (counted by the instance that made the transition),
  ``breaker_skips_total[provider, model]`` (attempts refused because the model's breaker was open)
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Metrics", "NullMetrics"]


class Metrics(Protocol):
    """Counters, histograms and gauges addressed by canonical name."""

    def increment(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to a counter."""
        ...

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record ``value`` in a histogram."""
        ...

    def gauge_add(self, name: str, delta: float, **labels: str) -> None:
        """Move a gauge by ``delta``."""
        ...


class NullMetrics:
    """Metrics that go nowhere (when metrics are disabled, and the default in unit tests)."""

    def increment(self, name: str, amount: float = 1.0, **labels: str) -> None:
        return None

    def observe(self, name: str, value: float, **labels: str) -> None:
        return None

    def gauge_add(self, name: str, delta: float, **labels: str) -> None:
        return None
