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
    "CompatibleProviderSettings",
    "DatabaseSettings",
    "Environment",
    "HttpSettings",
    "LimitsSettings",
    "LoggingSettings",
    "MediaSettings",
    "ProvidersSettings",
    "RedisSettings",
    "Settings",
    "StreamingSettings",
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


@frozen
class DatabaseSettings:
    """The usage ledger's database (SQLAlchemy async)."""

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
    elevenlabs_api_key: Secret | None = None
    elevenlabs_base_url: str | None = None
    groq_api_key: Secret | None = None
    perplexity_api_key: Secret | None = None
    # Merged by name over the built-in vendors of settings/catalog.py when settings load (chat work).
    compatible: tuple[CompatibleProviderSettings, ...] = ()
    catalog_path: Path | None = None
    request_timeout_s: float = 60.0
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
