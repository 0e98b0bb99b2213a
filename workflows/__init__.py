"""Deterministic Temporal workflows: they decide and wait; activities act."""
