"""Test helpers shared across tiers: settings for tests, tokens, service availability, running servers."""
