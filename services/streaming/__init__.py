"""Use case package: the StreamingManager (producer tasks, completion tokens, fan-out, cancellation)."""

from services.streaming.manager import Producer, StreamingManager, StreamPublisher
from services.streaming.runs import StreamingConfig

__all__ = ["Producer", "StreamPublisher", "StreamingConfig", "StreamingManager"]
