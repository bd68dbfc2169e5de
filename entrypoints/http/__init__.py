"""Driving adapter: the Quart HTTP and WebSocket API."""
