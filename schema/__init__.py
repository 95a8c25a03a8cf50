"""SQL as data: numbered migrations and named queries, read from this package's files."""

from __future__ import annotations

from schema.queries import queries

__all__ = ["queries"]
