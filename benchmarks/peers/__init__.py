"""Peer benchmark (``make bench-peers``): Switchyard beside LiteLLM's proxy and the bare upstream, in one run.

Modules: ``upstream`` (the fast fake OpenAI server), ``litellm_env`` (LiteLLM in its own environment), ``servers``
(starting each process under test), ``load`` (wrk and CPU accounting), ``streams`` (time to first token),
``procstat`` (``/proc`` readings), ``report`` (the Markdown table); ``__main__`` runs them in order.
"""
