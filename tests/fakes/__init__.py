"""Hand-written fakes of the ports, for unit tests and container overrides."""
