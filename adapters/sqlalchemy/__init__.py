"""Driven adapter: SQLAlchemy 2 async (asyncpg in production, aiosqlite embedded)."""
