"""One exception root. psycopg and pika errors are translated at one boundary each."""

from __future__ import annotations


class HookyardError(Exception):
    """Something Hookyard itself reports; its message is one sentence for an operator."""


class ConfigurationError(HookyardError):
    """The environment or the command line holds a value Hookyard cannot run with."""


class ServiceUnavailable(HookyardError):
    """PostgreSQL or RabbitMQ cannot be reached now; trying again later may succeed."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} is unreachable: {detail}")
        self.service = service
        self.detail = detail


class TransientError(HookyardError):
    """A failure worth retrying with backoff: a lost connection, a deadlock, a serialization failure."""


class PoisonMessage(HookyardError):
    """A message or event that can never be stored as it is: it goes to the dead letters, unretried.

    ``reason`` is a stable code (``invalid_message``, ``unsupported_schema_version``,
    ``unstorable_event``) and the message is the human detail.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class PublishFailed(HookyardError):
    """RabbitMQ did not confirm a publish in time, refused it, or could not be reached."""


class MigrationError(HookyardError):
    """A migration could not be applied, or an applied one no longer matches its file."""
