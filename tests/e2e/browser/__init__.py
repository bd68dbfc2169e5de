"""Browser tests: Playwright for Python driving the system's Chromium against a real server."""
