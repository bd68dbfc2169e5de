"""Domain: shared identifier aliases, so signatures say which string they mean."""

from __future__ import annotations

from typing import NewType, TypeAlias

__all__ = ["CustomerId", "JsonValue", "RequestId", "StreamId"]

CustomerId = NewType("CustomerId", str)
StreamId = NewType("StreamId", str)
RequestId = NewType("RequestId", str)

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
