"""Front door: OpenAI's HTTP API under ``/v1`` (Chat Completions, Responses, Models, Embeddings, Images) onto
Switchyard's services. ``routes.blueprint`` is what the app registers; ``wire`` and ``wire_responses`` hold the
bodies, ``errors`` the error shape, ``delivery`` streams the answers."""
