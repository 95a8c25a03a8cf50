"""Hookyard: signed events in over HTTP, through RabbitMQ, into PostgreSQL exactly once."""

from __future__ import annotations

__version__ = "0.1.0"
