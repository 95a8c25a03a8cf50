"""Dramatiq actors and the stores they write through."""
