"""Front doors: vendor-shaped HTTP APIs (OpenAI, Anthropic Messages) translated onto the same services, so a vendor's
own SDK reaches every model Switchyard serves by changing its base URL alone."""
