"""Composition root: the one ``DeclarativeContainer`` that assembles settings, adapters and services.

Sections: infrastructure (settings, logging, clients with a lifetime), adapters typed by the port they implement,
services. Environments differ by settings and by which providers tests override, never by ``if env ==`` in code.

Async resources (database engine, Redis client) make their dependants async too: outside ``@inject`` routes,
resolve those with ``await container.<name>()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.fake import build_fake_providers
from adapters.files.media_store import FileMediaStore
from adapters.jose.jwks import jwks_key_source
from adapters.jose.minter import JoseTokenMinter
from adapters.jose.tickets import JoseStreamTickets
from adapters.jose.verifier import JoseTokenVerifier
from adapters.kit.audio_probe import PyAVAudioProbe
from adapters.memory.breakers import InMemoryBreakerStore
from adapters.memory.quotas import InMemoryQuotaStore
from adapters.memory.stream_log import InMemoryStreamLog
from adapters.prometheus.metrics import exporter_for, metrics_resource
from adapters.redis.breakers import RedisBreakerStore
from adapters.redis.client import RedisHealthCheck, redis_resource
from adapters.redis.generation import redis_cache_generation
from adapters.redis.quotas import RedisQuotaStore
from adapters.redis.stream_log import RedisStreamLog
from adapters.s3.media_store import s3_media_store
from adapters.sqlalchemy.api_keys import SqlAlchemyApiKeyStore
from adapters.sqlalchemy.engine import SqlAlchemyHealthCheck, engine_resource
from adapters.sqlalchemy.ledger import ledger_options, usage_ledger_resource
from adapters.sqlalchemy.migrator import AlembicSchemaMigrator, schema_resource
from adapters.sqlalchemy.quota_overrides import SqlAlchemyQuotaOverrideStore
from adapters.sqlalchemy.video_jobs import SqlAlchemyVideoJobStore
from adapters.structlog.setup import logging_resource
from adapters.tiktoken import TiktokenTokenCounter
from domain.errors import ConfigurationError
from domain.health import BreakerPolicy
from domain.quotas import LIMIT_NAMES, Limits
from ports.api_keys import ApiKeyStore, CacheGeneration
from ports.auth import KeySource, TokenMinter, TokenVerifier
from ports.breakers import BreakerStore
from ports.health import HealthCheck
from ports.media import MediaStore
from ports.metrics import Metrics
from ports.metrics_export import MetricsExporter
from ports.providers import VendorProviders
from ports.quotas import QuotaOverrideStore, QuotaStore
from ports.schema import SchemaMigrator
from ports.stream_log import StreamLog
from ports.tickets import StreamTickets
from ports.tokens import TokenCounter
from ports.transcription import AudioProbe
from ports.usage import UsageLedger
from ports.video import VideoJobStore
from services.api_keys import ApiKeyService, api_key_service_resource
from services.attempts import AttemptRunner, RetryPolicy
from services.breakers import Breakers, CircuitBreakers, NullBreakers
from services.chat import ChatService
from services.credentials import CredentialVerifier
from services.embeddings import EmbeddingService
from services.images import ImageService
from services.live_transcription import LiveTranscriptionService
from services.quota_admin import QuotaAdmin
from services.quotas import MeteredLedger, QuotaGate, QuotaPolicy, quota_gate_resource
from services.readiness import ReadinessService
from services.realtime import RealtimeService
from services.registry import ProviderRegistry
from services.speech import SpeechService
from services.speech_segments import SegmentRules
from services.streaming.lifecycle import streaming_manager_resource
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from services.transcription import TranscriptionService
from services.usage import UsageService
from services.video import JobAccounts, VideoConfig, VideoService
from services.video_streams import JobStreams
from services.video_worker import VideoWorker, video_worker_resource
from services.voiced_chat import VoiceConfig, VoicePipeline
from settings import Settings, load_settings
from settings.catalog import compatible_enabled, load_catalog
from settings.model import (
    AuthSettings,
    BreakerSettings,
    MediaSettings,
    ProvidersSettings,
    QuotasSettings,
    StreamingSettings,
    VideoSettings,
)
from settings.secret import Secret

__all__ = ["Container", "build_container", "package_version"]


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("switchyard")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


def _health_checks(engine: AsyncEngine, redis: Redis | None) -> list[HealthCheck]:
    checks: list[HealthCheck] = [SqlAlchemyHealthCheck(engine)]
    if redis is not None:
        checks.append(RedisHealthCheck(redis))
    return checks


# Vendor builders import their SDK when called, so a process imports only the SDKs of the vendors it configured:
# importing all four took ~4 s, paid by every `switchyard` command and every served process at start.
def _openai(**options: Any) -> VendorProviders:
    from adapters.openai import build_openai_providers

    return build_openai_providers(**options)


def _anthropic(**options: Any) -> VendorProviders:
    from adapters.anthropic import build_anthropic_providers

    return build_anthropic_providers(**options)


def _gemini(config: ProvidersSettings) -> Callable[..., VendorProviders]:
    vertex_key = config.gemini_vertex_api_key

    def build(**options: Any) -> VendorProviders:
        from adapters.gemini import build_gemini_providers

        return build_gemini_providers(
            api_version=config.gemini_api_version,
            vertex_project=config.gemini_vertex_project,
            vertex_location=config.gemini_vertex_location,
            vertex_api_key=None if vertex_key is None else vertex_key.reveal(),
            vertex_base_url=config.gemini_vertex_base_url,
            **options,
        )

    return build


def _elevenlabs(**options: Any) -> VendorProviders:
    from adapters.elevenlabs import build_elevenlabs_providers

    return build_elevenlabs_providers(**options)


def _vendor_table(config: ProvidersSettings) -> list[tuple[str, Any, Secret | None, str | None]]:
    """(name, builder, key, base URL) of every vendor the settings enable, besides ``fake``."""
    table: list[tuple[str, Any, Secret | None, str | None]] = [
        ("openai", _openai, config.openai_api_key, config.openai_base_url),
        ("anthropic", _anthropic, config.anthropic_api_key, config.anthropic_base_url),
        ("gemini", _gemini(config), config.gemini_api_key, config.gemini_base_url),
        ("elevenlabs", _elevenlabs, config.elevenlabs_api_key, config.elevenlabs_base_url),
    ]
    enabled = [row for row in table if row[2] is not None]
    for vendor in config.compatible:
        if compatible_enabled(vendor):
            # Local servers take no key, but the SDK insists on one: any non-empty string does.
            key = vendor.api_key if vendor.api_key is not None else Secret("not-needed")
            enabled.append((vendor.name, _openai, key, vendor.base_url))
    return enabled


async def _vendors(config: ProvidersSettings) -> AsyncIterator[dict[str, VendorProviders]]:
    """Every enabled vendor's providers (``fake`` always), built at start; each SDK client closed at shutdown."""
    timeouts = {"timeout_s": config.request_timeout_s, "connect_timeout_s": config.connect_timeout_s}
    built: dict[str, VendorProviders] = {"fake": build_fake_providers()}
    try:
        for name, build, key, base_url in _vendor_table(config):
            assert key is not None
            built[name] = build(name=name, api_key=key.reveal(), base_url=base_url, **timeouts)
        yield built
    finally:
        for vendor in built.values():
            await vendor.close()


def _ticket_secret(auth: AuthSettings) -> Secret | None:
    """What stream tickets are keyed from: their own secret, else the JWT secret (the adapter derives its key)."""
    return auth.stream_ticket_secret or auth.jwt_secret


def _retry_policy(config: ProvidersSettings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=config.max_retries,
        deadline_s=config.retry_deadline_s,
        base_delay_s=config.retry_base_delay_s,
        max_delay_s=config.retry_max_delay_s,
        idle_timeout_s=config.request_timeout_s,
        complete_timeout_s=config.complete_timeout_s,
    )


# Vendor health (issue 18): the breakers live in Redis whenever redis.url is set (streaming.backend = redis needs
# it too), so every instance skips a failing model alike; else in this process. Off: NullBreakers, no bookkeeping.
def _breakers(config: BreakerSettings, client: Redis | None, metrics: Metrics) -> Breakers:
    if not config.enabled:
        return NullBreakers()
    policy = BreakerPolicy(
        failure_threshold=config.failure_threshold,
        error_rate_threshold=config.error_rate_threshold,
        window_ms=round(config.window_s * 1000),
        min_volume=config.min_volume,
        open_ms=round(config.open_s * 1000),
        half_open_probes=config.half_open_probes,
    )
    if problems := policy.problems():
        name, reason = problems[0]
        key = {"window_ms": "window_s", "open_ms": "open_s"}.get(name, name)  # the policy counts milliseconds
        raise ConfigurationError(f"breaker.{key}", reason)
    store: BreakerStore = InMemoryBreakerStore() if client is None else RedisBreakerStore(client)
    return CircuitBreakers(store, policy, metrics)


# Limits and budgets (issue 18): counted in Redis when redis.url is set (atomic across instances), else in-process.
def _quota_store(client: Redis | None, config: QuotasSettings) -> QuotaStore:
    if client is None:
        return InMemoryQuotaStore()
    return RedisQuotaStore(client, prefix=config.redis_prefix, held_ttl_s=max(600.0, 10 * config.reservation_ttl_s))


def _video_hold_s(video: VideoSettings) -> float:
    """How long a video job's quota hold lasts unrenewed: the longest a job may run, plus a lease to hand it over."""
    return video.max_job_s + video.lease_s


def _quota_policy(config: QuotasSettings) -> QuotaPolicy:
    for name in LIMIT_NAMES:
        value = getattr(config, name)
        if value is not None and not value >= 0:
            raise ConfigurationError(
                f"SWITCHYARD_QUOTAS_{name.upper()}", "must be at least 0 (leave it unset for unlimited)"
            )
    for setting in ("reservation_ttl_s", "default_output_tokens", "overrides_ttl_s"):
        if not getattr(config, setting) > 0:
            raise ConfigurationError(f"SWITCHYARD_QUOTAS_{setting.upper()}", "must be positive")
    defaults = Limits(**{name: getattr(config, name) for name in LIMIT_NAMES})
    return QuotaPolicy(defaults, config.reservation_ttl_s, config.default_output_tokens, config.overrides_ttl_s)


# The Redis stream log needs the Redis client; the manager gets plain values, never settings.
def _redis_stream_log(client: Redis | None, config: StreamingSettings) -> StreamLog:
    if client is None:
        raise ConfigurationError("redis.url", "required when streaming.backend = redis (SWITCHYARD_REDIS_URL)")
    return RedisStreamLog(
        client,
        prefix=config.redis_prefix,
        max_events=config.max_events_per_stream,
        ttl_s=config.ttl_s,
        lease_s=config.producer_lease_s,
        max_attachment_bytes=config.max_attachment_bytes,
    )


def _streaming_config(config: StreamingSettings) -> StreamingConfig:
    return StreamingConfig(
        resume_grace_s=config.resume_grace_s,
        stall_timeout_s=config.stall_timeout_s,
        consumer_buffer=config.consumer_buffer,
        first_consumer_s=config.first_consumer_s,
        # Readers of a locally produced stream skip the Redis round trip for recent events; the memory log is local.
        local_tail=256 if config.backend == "redis" else 0,
        producer_lease_s=config.producer_lease_s,
        finalize_attempts=config.finalize_attempts,
        # A reader rides out a log outage as long as a producer's lease lasts: the same bound on "no answer".
        outage_s=config.producer_lease_s,
        max_attachment_bytes=config.max_attachment_bytes,
    )


def _voice_config(settings: Settings) -> VoiceConfig:
    audio = settings.audio
    for name in ("voiced_segment_max_chars", "voiced_segment_max_wait_s", "voiced_parallelism"):
        if not getattr(audio, name) > 0:
            raise ConfigurationError(f"audio.{name}", "must be positive")
    return VoiceConfig(
        SegmentRules(audio.voiced_segment_max_chars, audio.voiced_segment_max_wait_s),
        audio.voiced_parallelism,
        settings.streaming.max_attachment_bytes,  # each audio event's attachment fits the stream log's bound
    )


# One Resource picks the media backend, so only the chosen one starts (a Selector of Resources would start both:
# init_resources walks every option). S3 opens its client and checks its bucket at start, and closes at shutdown.
async def _media_store(config: MediaSettings, data_dir: Path) -> AsyncIterator[MediaStore]:
    for key, value in (("media.ttl_s", config.ttl_s), ("media.max_bytes", config.max_bytes)):
        if value <= 0:  # media that never expire, or a store that takes nothing, is a typo, not a choice
            raise ConfigurationError(key, "must be positive")
    if config.backend == "s3":
        async with s3_media_store(config) as store:
            yield store
        return
    root = config.dir if config.dir is not None else data_dir / "media"
    yield FileMediaStore(root, ttl_s=config.ttl_s, max_bytes=config.max_bytes, sweep_interval_s=config.sweep_interval_s)


class Container(containers.DeclarativeContainer):
    """Everything Switchyard is made of, built once per process (tests build their own)."""

    # --- infrastructure -------------------------------------------------------------------------------------------
    settings: providers.Provider[Settings] = providers.Singleton(load_settings)
    version: providers.Provider[str] = providers.Object(package_version())
    logging = providers.Resource(logging_resource, settings.provided.logging)
    database_engine = providers.Resource(engine_resource, settings.provided.database)
    redis_client = providers.Resource(redis_resource, settings.provided.redis)

    # --- adapters, typed by port ----------------------------------------------------------------------------------
    # --- observability: Prometheus when http.metrics_enabled (else NullMetrics); /metrics renders the exporter
    metrics: providers.Provider[Metrics] = providers.Resource(metrics_resource, settings.provided.http.metrics_enabled)
    metrics_exporter: providers.Provider[MetricsExporter | None] = providers.Callable(exporter_for, metrics)
    # --- persistence: migrations (run at start when database.auto_migrate) and the usage ledger (a resource: its
    # writer task starts with the app and flushes at shutdown); the ledger starts after the schema is migrated.
    migrator: providers.Provider[SchemaMigrator] = providers.Singleton(AlembicSchemaMigrator, database_engine)
    database_schema = providers.Resource(schema_resource, migrator, settings.provided.database.auto_migrate)
    usage_ledger: providers.Provider[UsageLedger] = providers.Resource(
        usage_ledger_resource,
        database_engine,
        providers.Callable(ledger_options, settings.provided.database, settings.provided.app.data_dir),
        metrics,
        schema_ready=database_schema,
    )
    # auth: the JWKS key source (None without auth.jwks_url) opens one short-lived httpx client per fetch, so it
    # holds no connection between its rare refreshes and needs no shutdown.
    jwks_key_source: providers.Provider[KeySource | None] = providers.Singleton(jwks_key_source, settings.provided.auth)
    jwt_verifier: providers.Provider[TokenVerifier] = providers.Singleton(
        JoseTokenVerifier, settings.provided.auth, settings.provided.auth.jwt_secret, key_source=jwks_key_source
    )
    # API keys (sy-...), issue 18: verified beside JWTs into the same AuthContext. A generation counter in Redis lets
    # instances cache keys yet refuse a revoked one at once; without Redis nothing is cached (one indexed read each).
    api_key_store: providers.Provider[ApiKeyStore] = providers.Singleton(SqlAlchemyApiKeyStore, database_engine)
    api_key_generation: providers.Provider[CacheGeneration | None] = providers.Singleton(
        redis_cache_generation, redis_client
    )
    api_keys: providers.Provider[ApiKeyService] = providers.Resource(
        api_key_service_resource,
        api_key_store,
        api_key_generation,
        schema_ready=database_schema,
        recheck_s=settings.provided.auth.key_recheck_s,  # sockets opened with a key close soon after its revocation
    )
    token_verifier: providers.Provider[TokenVerifier] = providers.Singleton(CredentialVerifier, jwt_verifier, api_keys)
    token_minter: providers.Provider[TokenMinter] = providers.Singleton(
        JoseTokenMinter, settings.provided.auth.jwt_secret
    )
    # stream tickets (issue 15): `?ticket=` on the SSE events route, for EventSource; keyed from their own secret,
    # else from the JWT secret (a derived key), else a random per-process key.
    stream_tickets: providers.Provider[StreamTickets] = providers.Singleton(
        JoseStreamTickets,
        providers.Callable(_ticket_secret, settings.provided.auth),
        ttl_s=settings.provided.auth.stream_ticket_ttl_s,
    )
    health_checks: providers.Provider[list[HealthCheck]] = providers.Singleton(
        _health_checks, database_engine, redis_client
    )

    # --- vendors: the catalog (built-in + providers.catalog_path + vendors' models), every enabled vendor's
    # providers by port (one Resource: built at start, each SDK client closed at shutdown), the registry over both.
    # The catalog is a Resource so a broken catalog file stops the app at start, not at its first request.
    model_catalog = providers.Resource(
        load_catalog, settings.provided.providers.catalog_path, vendors=settings.provided.providers.compatible
    )
    vendors: providers.Provider[dict[str, VendorProviders]] = providers.Resource(_vendors, settings.provided.providers)
    provider_registry: providers.Provider[ProviderRegistry] = providers.Singleton(
        ProviderRegistry, model_catalog, vendors
    )

    # --- streaming: the stream log chosen by streaming.backend; the manager is a Resource, so at shutdown its
    # producer tasks are cancelled and their streams end with `cancelled` (reason shutdown).
    stream_log: providers.Provider[StreamLog] = providers.Selector(
        settings.provided.streaming.backend,
        memory=providers.Singleton(
            InMemoryStreamLog,
            max_events=settings.provided.streaming.max_events_per_stream,
            ttl_s=settings.provided.streaming.ttl_s,
            lease_s=settings.provided.streaming.producer_lease_s,
            max_finished=settings.provided.streaming.max_finished_streams,
            max_finished_bytes=settings.provided.streaming.max_finished_bytes,
            max_attachment_bytes=settings.provided.streaming.max_attachment_bytes,
        ),
        redis=providers.Singleton(_redis_stream_log, redis_client, settings.provided.streaming),
    )
    streaming_manager: providers.Provider[StreamingManager] = providers.Resource(
        streaming_manager_resource,
        stream_log,
        providers.Callable(_streaming_config, settings.provided.streaming),
        metrics,
    )

    # --- media: generated media kept for their customer (media.backend: files under the data dir, or S3)
    media_store: providers.Provider[MediaStore] = providers.Resource(
        _media_store, settings.provided.media, settings.provided.app.data_dir
    )

    # --- services ---------------------------------------------------------------------------------------------
    readiness: providers.Provider[ReadinessService] = providers.Singleton(ReadinessService, health_checks)
    usage: providers.Provider[UsageService] = providers.Singleton(UsageService, usage_ledger)
    # Every modality's provider calls go through the one attempt runner (retries, fallbacks, usage, metrics), past
    # each model's circuit breaker (breaker.*).
    breakers: providers.Provider[Breakers] = providers.Singleton(
        _breakers, settings.provided.breaker, redis_client, metrics
    )
    # Limits and budgets (issue 18): every modality's entry point passes the quota gate before any vendor call; the
    # runner's usage records go through it (MeteredLedger) so each call is settled with what it really consumed.
    quota_store: providers.Provider[QuotaStore] = providers.Singleton(
        _quota_store, redis_client, settings.provided.quotas
    )
    quota_overrides: providers.Provider[QuotaOverrideStore] = providers.Singleton(
        SqlAlchemyQuotaOverrideStore, database_engine
    )
    quota_gate: providers.Provider[QuotaGate] = providers.Resource(
        quota_gate_resource,
        quota_store,
        quota_overrides,
        providers.Callable(_quota_policy, settings.provided.quotas),
        usage_ledger,
        schema_ready=database_schema,
    )
    metered_ledger: providers.Provider[UsageLedger] = providers.Singleton(MeteredLedger, usage_ledger, quota_gate)
    quota_admin: providers.Provider[QuotaAdmin] = providers.Singleton(QuotaAdmin, quota_gate, quota_overrides)
    attempt_runner: providers.Provider[AttemptRunner] = providers.Singleton(
        AttemptRunner,
        provider_registry,
        metered_ledger,
        metrics,
        providers.Callable(_retry_policy, settings.provided.providers),
        breakers=breakers,
    )
    # Cut chat streams are billed on tiktoken estimates (its encoding loads on the first estimate, not here).
    token_counter: providers.Provider[TokenCounter] = providers.Singleton(TiktokenTokenCounter)
    # text-to-speech: audio cut short after its first chunk is counted in speech_streams_cut_total
    speech_service: providers.Provider[SpeechService] = providers.Singleton(
        SpeechService, attempt_runner, metrics, quotas=quota_gate
    )
    # voiced chat (issue 12): a chat stream asking for `speech` is voiced segment by segment as its text arrives
    voice_pipeline: providers.Provider[VoicePipeline] = providers.Singleton(
        VoicePipeline, speech_service, providers.Callable(_voice_config, settings), metrics
    )
    chat_service: providers.Provider[ChatService] = providers.Singleton(
        ChatService, attempt_runner, streaming_manager, tokens=token_counter, quotas=quota_gate, voice=voice_pipeline
    )
    # --- modality services (images, embeddings ...): each on the attempt runner
    # live speech-to-text (WS /api/v1/ws/transcribe): a silent client is closed, a session is bounded in length
    live_transcription_service: providers.Provider[LiveTranscriptionService] = providers.Singleton(
        LiveTranscriptionService,
        attempt_runner,
        metrics,
        idle_timeout_s=settings.provided.audio.live_idle_timeout_s,
        max_seconds=settings.provided.audio.live_max_seconds,
        quotas=quota_gate,  # a session holds a slot and a whole session's price while it runs (issue 18)
    )
    # realtime voice (WS /api/v1/ws/realtime): a relay to a speech-to-speech model, bounded both ways and in time
    realtime_service: providers.Provider[RealtimeService] = providers.Singleton(
        RealtimeService,
        attempt_runner,
        metrics,
        quotas=quota_gate,
        idle_timeout_s=settings.provided.realtime.idle_timeout_s,
        max_seconds=settings.provided.realtime.max_seconds,
        inbound_queue_seconds=settings.provided.realtime.inbound_queue_seconds,
        outbound_queue_events=settings.provided.realtime.outbound_queue_events,
    )
    embedding_service: providers.Provider[EmbeddingService] = providers.Singleton(
        EmbeddingService, attempt_runner, quotas=quota_gate
    )
    image_service: providers.Provider[ImageService] = providers.Singleton(
        ImageService, attempt_runner, media_store, quotas=quota_gate
    )
    # speech-to-text for files: each upload is decoded (PyAV) before any vendor call, at most audio.max_upload_bytes
    audio_probe: providers.Provider[AudioProbe] = providers.Singleton(PyAVAudioProbe)
    transcription_service: providers.Provider[TranscriptionService] = providers.Singleton(
        TranscriptionService,
        attempt_runner,
        metrics,
        audio_probe,
        max_upload_bytes=settings.provided.audio.max_upload_bytes,
        quotas=quota_gate,
    )
    # video generation as durable jobs (issue 16): jobs in the database; a worker loop in every serving process (a
    # Resource: it starts with the app once the schema is migrated, and hands its jobs over at shutdown) claims them
    # under a lease; whichever process holds a job publishes on the job's progress stream.
    video_jobs: providers.Provider[VideoJobStore] = providers.Singleton(SqlAlchemyVideoJobStore, database_engine)
    video_config: providers.Provider[VideoConfig] = providers.Singleton(
        VideoConfig,
        poll_interval_s=settings.provided.video.poll_interval_s,
        poll_max_interval_s=settings.provided.video.poll_max_interval_s,
        max_job_s=settings.provided.video.max_job_s,
        lease_s=settings.provided.video.lease_s,
        worker_concurrency=settings.provided.video.worker_concurrency,
    )
    video_streams: providers.Provider[JobStreams] = providers.Singleton(
        JobStreams, streaming_manager, silence_s=settings.provided.video.max_job_s
    )
    # A job holds its quota reservation until whichever process ends it settles it (issue 18); its records are
    # counted by the accounts themselves (for the submitting key too), so they take the plain ledger.
    video_accounts: providers.Provider[JobAccounts] = providers.Singleton(
        JobAccounts, attempt_runner, usage_ledger, metrics, quotas=quota_gate
    )
    video_service: providers.Provider[VideoService] = providers.Singleton(
        VideoService,
        attempt_runner,
        video_jobs,
        video_streams,
        media_store,
        video_accounts,
        quotas=quota_gate,
        hold_s=providers.Callable(_video_hold_s, settings.provided.video),
    )
    video_worker: providers.Provider[VideoWorker] = providers.Resource(
        video_worker_resource,
        providers.Singleton(
            VideoWorker, attempt_runner, video_jobs, video_streams, media_store, video_accounts, video_config
        ),
        video_streams,
        schema_ready=database_schema,
    )


def build_container(settings: Settings | None = None, **overrides: Any) -> Container:
    """A container for ``settings`` (loaded from the environment when omitted), with optional provider overrides."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    for name, value in overrides.items():
        getattr(container, name).override(value if isinstance(value, providers.Provider) else providers.Object(value))
    return container
