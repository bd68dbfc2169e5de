"""Domain: attrs models, the error hierarchy and pure rules. Imports only the standard library and attrs."""
