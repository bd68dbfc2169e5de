"""Services: use cases. They depend on ports and domain only, never on an adapter or a framework."""
