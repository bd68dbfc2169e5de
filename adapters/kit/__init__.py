"""Driven-adapter support shared by the vendor adapters: the stream loop (``stream``) and the error ladder (``errors``).

It imports no SDK, framework or settings (an import-linter contract holds it to that), so every vendor package may
import it while the vendor packages stay independent of each other.
"""
