"""Driven adapter: structlog configuration, redaction and noise filters."""
