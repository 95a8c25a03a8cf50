"""A RabbitMQ outage is two log lines: ``broker_connection_lost`` and ``broker_connection_restored``.

Left alone, Dramatiq's consumer threads log a ``CRITICAL`` line on every reconnect attempt, and pika
logs a handful of ``ERROR`` lines (one with a traceback) for each of those attempts: about 24
CRITICAL lines per RabbitMQ restart, and 40 tracebacks in 15 s when the password is wrong.
:class:`BrokerLogFilter` sits on the one handler :func:`hookyard.logging.configure_logging`
installs and turns those records into the two lines of :class:`BrokerOutage`; the web
process's publisher (aiormq) reports its own connection through a :class:`BrokerOutage` as well.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable

import structlog

log = structlog.get_logger("hookyard.broker")

# The record each Dramatiq consumer thread writes when its connection fails (dramatiq/worker.py).
_CONSUMER_LOGGER = "dramatiq.worker.ConsumerThread("
_CONSUMER_CONNECTION_ERROR = "Consumer encountered a connection error: %s"
_CONSUMER_UNEXPECTED_ERROR = "Consumer encountered an unexpected error."
# What a consumer thread writes after every failure, and what a worker thread writes while it
# cannot ack: both repeat until the connection is back, which the consumer thread reports.
_CONSUMER_RESTARTING = "Restarting consumer in %0.2f seconds."
_ACK_RETRYING = "Failed to post_process_message("
# pika writes this once a channel's basic.consume succeeded: a consumer is back.
_PIKA_CONSUMING = "Created new queue consumer generator %r"
# aiormq's restatements of a lost or refused connection, which it also raises to the web
# process's publisher. Its other warnings (a connection blocked by a memory alarm) pass.
_AIORMQ_CONNECTION_LOSS = (
    "error when creating transport",
    "Cancelling cause reader exited abnormally",
    "Unexpected connection close from remote",
    "Server connection %r was stuck",
)


def _is_connection_error(exc: BaseException) -> bool:
    """pika's errors, sockets', and Dramatiq's ConnectionError family (matched by name: no import)."""
    import pika.exceptions  # noqa: PLC0415 - only processes that log a failure pay for the import

    if isinstance(exc, pika.exceptions.AMQPError | OSError):
        return True
    return any(
        cls.__module__ == "dramatiq.errors" and cls.__name__ == "ConnectionError" for cls in type(exc).__mro__
    )


def one_line(error: object) -> str:
    """The first line of an error's text, led by its type unless the text already names one.

    Dramatiq's ConnectionError text is already ``"<pika error type>: <detail>"``.
    """
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    if not isinstance(error, BaseException) or type(error).__module__ == "dramatiq.errors":
        return first or type(error).__name__
    name = type(error).__name__
    return f"{name}: {first}" if first else name


class BrokerOutage:
    """Whether this process has lost RabbitMQ, since when, and which connections are still down.

    ``lost`` and ``back`` may be called from any thread. The first ``lost`` of an outage logs one
    ``broker_connection_lost`` warning with the error; later ones are counted, not logged. The
    ``back`` that leaves no connection down logs one ``broker_connection_restored`` warning with
    the outage's duration. A ``back`` outside an outage logs nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: set[Hashable] = set()
        self._since: float | None = None
        self._suppressed = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def lost(self, who: Hashable, error: str) -> None:
        """Connection ``who`` failed with ``error`` (one line)."""
        with self._lock:
            self._down.add(who)
            if self._since is not None:
                self._suppressed += 1
                return
            self._since = time.monotonic()
        log.warning("broker_connection_lost", error=error)

    def suppressed(self) -> None:
        """Count one log record held back because it repeats the ongoing outage."""
        with self._lock:
            self._suppressed += 1

    def back(self, who: Hashable) -> None:
        """Connection ``who`` works again."""
        with self._lock:
            self._down.discard(who)
            if self._since is None or self._down:
                return
            seconds, suppressed = time.monotonic() - self._since, self._suppressed
            self._since, self._suppressed = None, 0
        log.warning(
            "broker_connection_restored", outage_seconds=round(seconds, 1), suppressed_lines=suppressed
        )


class BrokerLogFilter(logging.Filter):
    """Turns the connection records of Dramatiq and pika into the two lines of a :class:`BrokerOutage`.

    - A consumer thread's connection error starts (or continues) the outage of that thread.
    - pika's "consumer generator" record, written once ``basic.consume`` succeeded, ends it.
    - pika's own records are dropped below CRITICAL: each restates an exception pika raises to its
      caller (Dramatiq's consumer, ``ops.broker``), which reports it once. aiormq's records of a
      lost connection are dropped for the same reason: the publisher reports them.
    - Dramatiq's restart and ack-retry notices are dropped: they repeat until the connection is back.
    - Other Dramatiq records caused by a connection error are dropped during an outage only.

    Everything else passes unchanged.
    """

    def __init__(self, outage: BrokerOutage | None = None) -> None:
        super().__init__()
        self.outage = outage or BrokerOutage()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "pika" or record.name.startswith("pika."):
            if record.msg == _PIKA_CONSUMING:
                self.outage.back(record.thread)
            return record.levelno >= logging.CRITICAL
        if record.name.startswith("aiormq."):
            return not (isinstance(record.msg, str) and record.msg.startswith(_AIORMQ_CONNECTION_LOSS))
        if record.name.startswith("dramatiq."):
            return self._dramatiq(record)
        return True

    def _dramatiq(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith(_CONSUMER_LOGGER):
            if record.msg == _CONSUMER_CONNECTION_ERROR and isinstance(record.args, tuple) and record.args:
                self.outage.lost(record.thread, one_line(record.args[0]))
                return False
            if record.msg == _CONSUMER_UNEXPECTED_ERROR and exc is not None and _is_connection_error(exc):
                self.outage.lost(record.thread, one_line(exc))
                return False
        repeats = record.msg == _CONSUMER_RESTARTING or str(record.msg).startswith(_ACK_RETRYING)
        caused = self.outage.ongoing and exc is not None and _is_connection_error(exc)
        if repeats or caused:
            if self.outage.ongoing:
                self.outage.suppressed()
            return False
        return True
