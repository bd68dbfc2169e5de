"""Ports: the Protocols the core needs from the outside world. One capability per module; imports domain only."""
