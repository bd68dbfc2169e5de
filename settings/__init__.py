"""Settings: typed, frozen configuration loaded once from the environment and an optional TOML file.

Only ``container.py`` and the CLI read settings from the process environment; everything else receives a section.
"""

from settings.loader import load_settings
from settings.model import (
    AppSettings,
    AuthSettings,
    DatabaseSettings,
    HttpSettings,
    LimitsSettings,
    LoggingSettings,
    ProvidersSettings,
    RedisSettings,
    Settings,
    StreamingSettings,
)
from settings.secret import Secret

__all__ = [
    "AppSettings",
    "AuthSettings",
    "DatabaseSettings",
    "HttpSettings",
    "LimitsSettings",
    "LoggingSettings",
    "ProvidersSettings",
    "RedisSettings",
    "Secret",
    "Settings",
    "StreamingSettings",
    "load_settings",
]
