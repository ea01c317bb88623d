"""Placeholder until the pass lands (owner is writing it)."""
