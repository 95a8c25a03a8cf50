"""Broker outages in the logs: one line when one starts, one when it ends, whatever repeats between.

The records are built as Dramatiq and pika write them (dramatiq/worker.py ConsumerThread,
pika/adapters/blocking_connection.py); the acceptance test drives the real processes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pika.exceptions
import pytest
from dramatiq.errors import ConnectionClosed
from structlog.testing import capture_logs

from hookyard.outages import BrokerLogFilter, BrokerOutage, one_line

CONSUMER = "dramatiq.worker.ConsumerThread(events)"
CONNECTION_ERROR = "Consumer encountered a connection error: %s"


def dramatiq_connection_error() -> BaseException:
    return ConnectionClosed(
        pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker forced")
    )


def record(
    name: str,
    msg: str,
    *args: object,
    level: int = logging.ERROR,
    thread: int = 1,
    exc: BaseException | None = None,
) -> logging.LogRecord:
    made = logging.LogRecord(
        name, level, __file__, 1, msg, args, (type(exc), exc, None) if exc is not None else None
    )
    made.thread = thread
    return made


def lost(thread: int) -> logging.LogRecord:
    return record(
        CONSUMER, CONNECTION_ERROR, dramatiq_connection_error(), level=logging.CRITICAL, thread=thread
    )


def consuming(thread: int) -> logging.LogRecord:
    generator = "<_QueueConsumerGeneratorInfo params=('events', False, False) consumer_tag='ctag1'>"
    return record(
        "pika.adapters.blocking_connection",
        "Created new queue consumer generator %r",
        generator,
        level=logging.INFO,
        thread=thread,
    )


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as logs:
        yield logs


def test_the_first_failure_of_an_outage_is_logged_and_the_repeats_are_not(captured):
    outage = BrokerOutage()

    outage.lost("a", "ConnectionRefusedError: refused")
    outage.lost("a", "ConnectionRefusedError: refused")
    outage.lost("b", "ConnectionRefusedError: refused")

    assert captured == [
        {
            "event": "broker_connection_lost",
            "error": "ConnectionRefusedError: refused",
            "log_level": "warning",
        }
    ]


def test_the_outage_ends_when_every_connection_that_failed_is_back(captured):
    outage = BrokerOutage()
    outage.lost("a", "refused")
    outage.lost("b", "refused")

    outage.back("a")
    assert [line["event"] for line in captured] == ["broker_connection_lost"]
    outage.back("b")

    restored = captured[-1]
    assert restored["event"] == "broker_connection_restored"
    assert restored["log_level"] == "warning"
    assert restored["outage_seconds"] >= 0
    assert restored["suppressed_lines"] == 1
    assert not outage.ongoing


def test_a_connection_that_comes_up_outside_an_outage_logs_nothing(captured):
    BrokerOutage().back("a")

    assert captured == []


def test_a_second_outage_is_reported_again(captured):
    outage = BrokerOutage()
    for _ in range(2):
        outage.lost("a", "refused")
        outage.back("a")

    assert [line["event"] for line in captured] == [
        "broker_connection_lost",
        "broker_connection_restored",
    ] * 2


def test_threads_reporting_at_once_start_one_outage(captured):
    outage = BrokerOutage()
    threads = [threading.Thread(target=outage.lost, args=(index, "refused")) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [line["event"] for line in captured] == ["broker_connection_lost"]


def test_a_consumer_connection_error_becomes_the_lost_line_with_the_error(captured):
    keep = BrokerLogFilter().filter(lost(thread=1))

    assert keep is False
    assert captured == [
        {
            "event": "broker_connection_lost",
            "error": "(320, 'CONNECTION_FORCED - broker forced')",
            "log_level": "warning",
        }
    ]


def test_every_consumer_back_becomes_the_restored_line(captured):
    log_filter = BrokerLogFilter()
    for thread in (1, 2, 3, 4):
        log_filter.filter(lost(thread))
    for thread in (1, 2, 3):
        assert log_filter.filter(consuming(thread)) is False
    assert [line["event"] for line in captured] == ["broker_connection_lost"]

    log_filter.filter(consuming(4))

    assert [line["event"] for line in captured] == ["broker_connection_lost", "broker_connection_restored"]
    assert captured[-1]["suppressed_lines"] == 3


def test_the_repeats_of_an_outage_are_dropped(captured):
    log_filter = BrokerLogFilter()
    log_filter.filter(lost(thread=1))
    repeats = [
        lost(thread=1),
        record(CONSUMER, "Restarting consumer in %0.2f seconds.", 3.0, level=logging.INFO),
        record(
            "pika.adapters.blocking_connection",
            "Error in _create_connection().",
            exc=pika.exceptions.AMQPConnectionError("refused"),
        ),
        record("pika.adapters.utils.connection_workflow", "TCP Connection attempt failed: %r", "refused"),
        record(
            "dramatiq.worker.WorkerThread",
            "Failed to post_process_message(%s) due to a connection error: %s",
            "message",
            "closed",
            level=logging.WARNING,
        ),
        record(
            "dramatiq.broker.RabbitmqBroker",
            "Encountered exception while closing Connection.",
            exc=pika.exceptions.StreamLostError("Transport indicated EOF"),
        ),
    ]

    assert [log_filter.filter(repeat) for repeat in repeats] == [False] * len(repeats)
    assert [line["event"] for line in captured] == ["broker_connection_lost"]


def test_a_consumer_failing_for_another_reason_keeps_its_traceback():
    bug = record(
        CONSUMER, "Consumer encountered an unexpected error.", level=logging.CRITICAL, exc=KeyError("x")
    )

    assert BrokerLogFilter().filter(bug) is True


def test_records_unrelated_to_the_broker_pass_unchanged():
    log_filter = BrokerLogFilter()
    log_filter.filter(lost(thread=1))  # even during an outage

    assert log_filter.filter(record("workers.store", "event_stored")) is True
    assert (
        log_filter.filter(record("dramatiq.worker.WorkerThread", "Failed to process message %s", "m")) is True
    )
    assert (
        log_filter.filter(record("aiormq.connection", "Connection %r was blocked by: %r", "c", "mem")) is True
    )


def test_aiormq_restating_a_lost_connection_is_dropped():
    restatement = record("aiormq.connection", "error when creating transport: %r", "refused")

    assert BrokerLogFilter().filter(restatement) is False


def test_an_error_is_one_line_led_by_its_type():
    assert one_line(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert one_line(dramatiq_connection_error()) == "(320, 'CONNECTION_FORCED - broker forced')"
    assert one_line(RuntimeError("first\nsecond")) == "RuntimeError: first"


def exported_by(code: str) -> bool:
    """Whether a fresh interpreter that runs ``code`` exports hookyard_broker_connected."""
    script = f"{code}\nfrom prometheus_client import generate_latest\nprint(generate_latest().decode())"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return "hookyard_broker_connected" in result.stdout


def test_workers_and_the_scheduler_do_not_export_the_broker_gauge():
    assert not exported_by("import hookyard.metrics, workers.runner, workers.scheduler")


def test_a_process_with_a_publisher_exports_the_broker_gauge_at_0_until_it_connects():
    code = textwrap.dedent(
        """
        import asyncio
        from producers.publisher import Publisher

        async def make():
            for _ in range(2):  # a second publisher in the process registers nothing twice
                Publisher("amqp://guest:guest@127.0.0.1:1/", confirm_timeout=1, max_batch=1)

        asyncio.run(make())
        """
    )
    assert exported_by(code)
