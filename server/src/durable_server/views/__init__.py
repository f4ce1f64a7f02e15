"""Presentation: what the API shows of the engine's state (execution graphs as text)."""
