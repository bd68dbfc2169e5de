"""Front door: the Anthropic Messages API (``/v1/messages``) on the chat service, for Anthropic's SDKs."""

from entrypoints.http.doors.anthropic.routes import blueprint

__all__ = ["blueprint"]
