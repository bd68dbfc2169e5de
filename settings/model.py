"""Settings: one frozen attrs class per section, assembled into ``Settings``.

Every field has a default for the ``local`` environment; ``environments.toml`` holds what the other environments
change. Field docstrings live in the README's configuration table (generated from ``describe()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from attrs import field, frozen

from settings.secret import Secret

__all__ = [
    "AppSettings",
    "AudioSettings",
    "AuthSettings",
    "BreakerSettings",
    "CompatibleProviderSettings",
    "DatabaseSettings",
    "Environment",
    "HttpSettings",
    "LimitsSettings",
    "LoggingSettings",
    "MediaSettings",
    "ProvidersSettings",
    "QuotasSettings",
    "RealtimeSettings",
    "RedisSettings",
    "Settings",
    "StreamingSettings",
    "VideoSettings",
]

Environment = Literal["local", "test", "staging", "production"]


@frozen
class AppSettings:
    """The process as a whole."""

    env: Environment = "local"
    name: str = "switchyard"
    data_dir: Path = Path("var")


@frozen
class HttpSettings:
    """The Quart/Hypercorn server."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    graceful_timeout_s: float = 5.0
    keep_alive_s: float = 5.0
    metrics_enabled: bool = True
    trust_request_id: bool = True
    backlog: int = 2048  # the listen queue: Hypercorn's default of 100 refuses connections in bursts
    shutdown_grace_s: float = 3.0  # how long running streams may finish at shutdown before they are cancelled
    # --- CORS (issue 15): origins whose pages may call the API (`*`, exact origins, or `http://localhost:*` for any
    # port); empty sends no CORS headers. Local allows localhost pages; environments.toml empties it elsewhere.
    cors_origins: tuple[str, ...] = ("http://localhost:*", "http://127.0.0.1:*")
    cors_allow_credentials: bool = False  # cookies/HTTP auth; bearer tokens need none. Never with `*`.
    cors_allow_methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    cors_allow_headers: tuple[str, ...] = ("*",)  # `*`: whatever request headers the browser asks to send
    cors_expose_headers: tuple[str, ...] = ("X-Stream-ID", "X-Request-ID", "Retry-After", "Server-Timing")
    cors_max_age_s: int = 600


@frozen
class AuthSettings:
    """JWT verification (joserfc)."""

    jwt_secret: Secret | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    public_keys: tuple[Path, ...] = ()
    jwks_url: str | None = None
    jwks_cache_ttl_s: float = 300.0
    jwks_timeout_s: float = 3.0
    jwks_min_refresh_interval_s: float = 30.0
    issuer: str | None = None
    audience: str | None = None
    customer_id_claim: str = "sub"
    scopes_claim: str = "scope"
    leeway_s: float = 30.0
    max_token_bytes: int = 8192
    allow_query_token: bool = False
    metrics_require_auth: bool = False
    ws_auth_timeout_s: float = 5.0
    dev_token: bool = True
    # --- stream tickets (issue 15): `?ticket=` for EventSource, which cannot send headers. Signed with
    # stream_ticket_secret, else a key derived from jwt_secret, else a random per-process key (one process only).
    stream_ticket_ttl_s: float = 300.0
    stream_ticket_secret: Secret | None = None
    # --- API keys (issue 18): how often a WebSocket opened with a key checks it was not revoked since (one read of
    # the Redis revocation counter per process while none was; a database read per open key without Redis).
    key_recheck_s: float = 2.0


@frozen
class DatabaseSettings:
    """The usage ledger's database (SQLAlchemy async)."""

    # Unset: SQLite at <app.data_dir>/switchyard.db (settings.loader fills it in).
    url: Secret = field(factory=lambda: Secret("sqlite+aiosqlite:///var/switchyard.db"))
    pool_size: int = 5
    echo: bool = False
    auto_migrate: bool = True
    # The usage ledger writes in batches from a bounded queue; records beyond it go to <app.data_dir>/usage-spill.jsonl.
    ledger_queue_size: int = 10_000
    ledger_batch_size: int = 500
    ledger_flush_interval_s: float = 1.0
    ledger_retry_max_s: float = 30.0
    ledger_shutdown_timeout_s: float = 5.0


@frozen
class RedisSettings:
    """Redis, used by the Redis Streams stream log when ``streaming.backend = redis``."""

    url: Secret | None = None
    socket_timeout_s: float = 5.0
    # To survive a Redis restart or failover: commands are retried, pooled connections health-checked.
    retry_attempts: int = 3
    health_check_interval_s: float = 5.0


@frozen
class CompatibleProviderSettings:
    """One OpenAI-compatible vendor (``[[providers.compatible]]``): where it answers and which key it takes.

    Enabled when its key is configured (``api_key`` or the variable named by ``api_key_env``) or, for local servers
    that need no key (``requires_key = false``), when its base URL is (``base_url`` or ``base_url_env``).
    ``models`` adds catalog entries (with ``capabilities``) for ids the catalog does not list yet.
    """

    name: str
    base_url: str | None = None
    base_url_env: str | None = None
    api_key: Secret | None = None
    api_key_env: str | None = None
    requires_key: bool = True
    models: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ("text",)


@frozen
class ProvidersSettings:
    """Vendor credentials, endpoints and call policy; a vendor is enabled when its key or base URL is set."""

    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    anthropic_api_key: Secret | None = None
    anthropic_base_url: str | None = None
    gemini_api_key: Secret | None = None
    gemini_base_url: str | None = None
    gemini_api_version: str = "v1beta"  # the path's version segment; Gemini-compatible servers and new features use it
    # Imagen and Veo: google-genai serves them in Vertex AI mode only. A project (credentials: Application Default
    # Credentials) or an express-mode key puts them on a Vertex client beside the Gemini API one (gemini/vertex.py).
    gemini_vertex_project: str | None = None
    gemini_vertex_location: str = "us-central1"  # with a project only (express mode has no location)
    gemini_vertex_api_key: Secret | None = None
    gemini_vertex_base_url: str | None = None
    elevenlabs_api_key: Secret | None = None
    elevenlabs_base_url: str | None = None
    groq_api_key: Secret | None = None
    perplexity_api_key: Secret | None = None
    # Merged by name over the built-in vendors of settings/catalog.py when settings load (chat work).
    compatible: tuple[CompatibleProviderSettings, ...] = ()
    catalog_path: Path | None = None
    request_timeout_s: float = 60.0
    # A call made without streaming (the client did not stream) answers only when whole: bounded as a whole by this.
    complete_timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    retry_deadline_s: float = 30.0
    retry_base_delay_s: float = 0.25
    retry_max_delay_s: float = 8.0


@frozen
class LoggingSettings:
    """structlog output."""

    level: str = "INFO"
    format: Literal["console", "json"] = "console"
    noisy_level: str = "WARNING"
    file_path: Path | None = None
    file_max_bytes: int = 10 * 1024 * 1024
    file_backup_count: int = 5


@frozen
class StreamingSettings:
    """The StreamingManager and its stream log."""

    backend: Literal["memory", "redis"] = "memory"
    resume_grace_s: float = 30.0
    stall_timeout_s: float = 120.0
    keepalive_s: float = 15.0
    retry_hint_ms: int = 3000
    send_timeout_s: float = 10.0
    consumer_buffer: int = 1024
    max_events_per_stream: int = 10_000
    ttl_s: float = 3600.0
    first_consumer_s: float = 5.0  # a stream never read waits max(this, resume_grace_s), then is cancelled
    redis_prefix: str = "switchyard:stream:"
    # A dead producer's streams end (leases), finalising a stream is bounded, the memory log forgets old streams.
    producer_lease_s: float = 10.0
    finalize_attempts: int = 5
    max_finished_streams: int = 10_000
    max_finished_bytes: int = 64 * 1024 * 1024
    # --- binary attachments (issue 10): the bound on one event's raw bytes (an audio chunk), in both stream logs
    max_attachment_bytes: int = 1024 * 1024


@frozen
class LimitsSettings:
    """Input bounds."""

    max_body_bytes: int = 1024 * 1024
    max_ws_message_bytes: int = 1024 * 1024
    max_json_depth: int = 64


# --- media store (issue 10): generated media kept for their customer until they expire ---------------------------
@frozen
class MediaSettings:
    """The media store: ``files`` under a directory (the embedded default) or an S3-compatible bucket."""

    backend: Literal["files", "s3"] = "files"
    dir: Path | None = None  # None: <app.data_dir>/media
    ttl_s: float = 86_400.0
    max_bytes: int = 64 * 1024 * 1024
    sweep_interval_s: float = 300.0
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None  # None (with the secret): the AWS SDK's own chain (env, profile, role)
    s3_secret_access_key: Secret | None = None
    s3_prefix: str = "media/"
    s3_create_bucket: bool = True


# --- audio (issue 11): speech-to-text uploads ------------------------------------------------------------------
@frozen
class AudioSettings:
    """Audio the API takes in: the largest file ``POST /api/v1/audio/transcriptions`` accepts (OpenAI's own cap)."""

    max_upload_bytes: int = 25 * 1024 * 1024
    # Live transcription (WS /api/v1/ws/transcribe): a client silent this long is closed; a session is cut at this much
    # audio (an hour).
    live_idle_timeout_s: float = 10.0
    live_max_seconds: float = 3600.0
    # Voiced chat (issue 12, a chat request's `speech`): the answer is spoken in segments cut at sentence ends, at most
    # this many characters, or once text waited this long; this many segments are synthesized at once.
    voiced_segment_max_chars: int = 240
    voiced_segment_max_wait_s: float = 0.4
    voiced_parallelism: int = 2


# --- realtime voice (issue 17): WS /api/v1/ws/realtime, a relay to a speech-to-speech model --------------------
@frozen
class RealtimeSettings:
    """Realtime sessions: one quiet both ways for ``idle_timeout_s`` ends, one ends at ``max_seconds``; up to
    ``inbound_queue_seconds`` of the client's audio wait for the vendor (then its socket is not read); a client that
    lets ``outbound_queue_events`` messages pile up, or does not take one within ``write_timeout_s``, is disconnected
    (``client_too_slow``)."""

    idle_timeout_s: float = 30.0
    max_seconds: float = 1800.0
    inbound_queue_seconds: float = 2.0
    outbound_queue_events: int = 512
    write_timeout_s: float = 5.0


# --- video (issue 16): durable video jobs, polled by a worker loop in every serving process ----------------------
@frozen
class VideoSettings:
    """Video jobs: the first poll ``poll_interval_s`` after submission, then backing off to ``poll_max_interval_s``;
    a job is failed (``job_timeout``) ``max_job_s`` after it was submitted; a worker's lease on a job lasts
    ``lease_s`` (renewed at each poll; a dead worker's jobs are taken over once it lapses); each process works on
    at most ``worker_concurrency`` jobs at once (0: this process only serves the API)."""

    poll_interval_s: float = 2.0
    poll_max_interval_s: float = 20.0
    max_job_s: float = 1800.0
    lease_s: float = 60.0
    worker_concurrency: int = 8


# --- vendor health (issue 18): a circuit breaker per model, shared through Redis when redis.url is set ----------
@frozen
class BreakerSettings:
    """Circuit breakers: a model is skipped after ``failure_threshold`` consecutive vendor failures, or an error rate of
    ``error_rate_threshold`` over ``window_s`` with ``min_volume`` calls; ``open_s`` later ``half_open_probes`` probes
    go through and the first success closes it again."""

    enabled: bool = True
    failure_threshold: int = 5
    error_rate_threshold: float = 0.5
    window_s: float = 60.0
    min_volume: int = 20
    open_s: float = 30.0
    half_open_probes: int = 1


# --- tenancy (issue 18): limits and budgets every customer gets unless its override (admin routes) says otherwise ---
@frozen
class QuotasSettings:
    """Per-customer limits (unset: unlimited), enforced atomically in Redis when ``redis.url`` is set, else in this
    process. A call reserves before any vendor call and is settled after; an unfinished reservation lapses after
    ``reservation_ttl_s`` (renewed while its call runs). A request with no ``max_tokens`` is reserved as
    ``default_output_tokens`` of output. Overrides are re-read every ``overrides_ttl_s``."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    reservation_ttl_s: float = 60.0
    default_output_tokens: int = 4096
    overrides_ttl_s: float = 5.0
    redis_prefix: str = "switchyard:quota:"


@frozen
class Settings:
    """All sections; built once by ``load_settings`` and handed to the container."""

    app: AppSettings = field(factory=AppSettings)
    http: HttpSettings = field(factory=HttpSettings)
    auth: AuthSettings = field(factory=AuthSettings)
    database: DatabaseSettings = field(factory=DatabaseSettings)
    redis: RedisSettings = field(factory=RedisSettings)
    providers: ProvidersSettings = field(factory=ProvidersSettings)
    logging: LoggingSettings = field(factory=LoggingSettings)
    streaming: StreamingSettings = field(factory=StreamingSettings)
    limits: LimitsSettings = field(factory=LimitsSettings)
    media: MediaSettings = field(factory=MediaSettings)
    audio: AudioSettings = field(factory=AudioSettings)
    realtime: RealtimeSettings = field(factory=RealtimeSettings)
    video: VideoSettings = field(factory=VideoSettings)
    breaker: BreakerSettings = field(factory=BreakerSettings)
    quotas: QuotasSettings = field(factory=QuotasSettings)
