"""A RabbitMQ outage reads as two log lines in each process: when it starts and when it ends.

The real ``hookyard worker`` and ``hookyard serve`` reach RabbitMQ through a TCP proxy that the test
cuts for several of Dramatiq's reconnect rounds (3 s each) and then restores. Before, the worker
wrote a CRITICAL line per consumer and attempt and pika a traceback per attempt.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest

from contracts.topology import EVENTS
from tests.acceptance.conftest import Fleet
from tests.support.processes import HookyardProcess
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

CUT_SECONDS = 8.0  # long enough for every consumer to fail at least twice


def events(process: HookyardProcess) -> list[dict[str, Any]]:
    """The process's JSON log lines (anything else it wrote is kept as a raw line)."""
    found = []
    for line in process.log().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"event": None, "raw": line})
    return found


def named(process: HookyardProcess, event: str) -> list[dict[str, Any]]:
    return [line for line in events(process) if line.get("event") == event]


def consumers(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def assert_outage_told_once(process: HookyardProcess, *, at_least: float) -> None:
    lost = named(process, "broker_connection_lost")
    restored = named(process, "broker_connection_restored")
    assert len(lost) == 1, process.log()
    assert len(restored) == 1, process.log()
    assert lost[0]["level"] == restored[0]["level"] == "warning"
    assert lost[0]["error"]
    assert "\n" not in lost[0]["error"]
    assert restored[0]["outage_seconds"] >= at_least
    log = process.log()
    assert "Traceback" not in log
    assert '"critical"' not in log
    assert not [line for line in events(process) if line.get("level") == "error"], log


def test_a_broker_outage_is_one_lost_and_one_restored_line_in_the_worker_and_the_web_process(
    fleet: Fleet, env: dict[str, str]
) -> None:
    broker = urlsplit(env["AMQP_URL"])
    proxy = TcpProxy((broker.hostname or "127.0.0.1", broker.port or 5672))
    proxied = broker._replace(netloc=f"{broker.username}:{broker.password}@{proxy.address}").geturl()
    try:
        web = fleet.web(AMQP_URL=proxied)
        worker = fleet.worker(AMQP_URL=proxied)
        wait_until(lambda: consumers(env["AMQP_URL"], EVENTS.queue) >= 1, what="the worker to consume")

        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: named(worker, "broker_connection_lost"), what="the worker to report the outage")
        wait_until(lambda: named(web, "broker_connection_lost"), what="the web process to report it")
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        proxy.restore()
        outage = time.monotonic() - cut_at

        wait_until(lambda: named(worker, "broker_connection_restored"), timeout=30, what="worker restored")
        wait_until(lambda: named(web, "broker_connection_restored"), timeout=30, what="web restored")
        wait_until(lambda: consumers(env["AMQP_URL"], EVENTS.queue) >= 1, what="the worker to consume again")
        assert_outage_told_once(worker, at_least=CUT_SECONDS - 1)
        assert_outage_told_once(web, at_least=CUT_SECONDS - 1)
        assert named(worker, "broker_connection_restored")[0]["suppressed_lines"] > 0
        assert named(web, "broker_connection_restored")[0]["outage_seconds"] <= outage + 10
    finally:
        proxy.close()


def test_a_wrong_password_is_one_line_in_the_worker_not_a_traceback_per_attempt(
    fleet: Fleet, env: dict[str, str]
) -> None:
    broker = urlsplit(env["AMQP_URL"])
    wrong = broker._replace(netloc=f"{broker.username}:not-the-password@{broker.netloc.split('@')[1]}")
    worker = fleet.worker(AMQP_URL=wrong.geturl())

    wait_until(lambda: named(worker, "broker_connection_lost"), what="the refused login to be reported")
    # Dramatiq retries every 3 s: two more rounds would have logged a dozen CRITICAL lines before.
    time.sleep(7)

    lost = named(worker, "broker_connection_lost")
    assert len(lost) == 1, worker.log()
    assert "ACCESS_REFUSED" in lost[0]["error"]
    assert "Traceback" not in worker.log()
    assert '"critical"' not in worker.log()
    assert named(worker, "broker_connection_restored") == []
