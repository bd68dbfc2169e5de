"""Driven adapter: JWT verification and minting with joserfc."""
