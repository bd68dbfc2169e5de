"""Test suite: unit (domain and services with fakes), contract (one suite per port), integration, e2e."""
