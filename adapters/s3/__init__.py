"""Driven adapter: S3 and S3-compatible object stores (aiobotocore)."""
