"""Driven adapter: Redis (redis-py asyncio)."""
