"""Run the Dramatiq worker fleet: N processes of T threads, each with its own pool and metrics port."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import dramatiq
import psycopg
import structlog
from prometheus_client import start_http_server
from psycopg_pool import ConnectionPool

from hookyard.config import Settings
from hookyard.logging import configure_logging
from workers.actors import build_broker, build_stores, register_actors
from workers.breaker import Breaker
from workers.registry import QUEUES

log = structlog.get_logger(__name__)

#: How long a stopping worker lets in-flight messages finish before closing (unacked ones requeue).
STOP_TIMEOUT_MS = 30_000


def run_worker_process(settings: Settings, *, threads: int, index: int, parent_pid: int | None = None) -> int:
    """Consume every queue of the registry until SIGTERM/SIGINT (or the parent dies)."""
    configure_logging(settings.hookyard_log_level, settings.hookyard_log_format)
    structlog.contextvars.bind_contextvars(worker=index)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=threads + 1,
        timeout=10,
        open=False,
        name=f"worker-{index}",
        kwargs={"connect_timeout": 5},
    )
    pool.open(wait=False)  # a database that is down is a transient failure, not a crash
    broker = build_broker(settings.amqp_url)
    breaker = Breaker(pool, limit=settings.hookyard_breaker_limit, window=settings.hookyard_breaker_window)
    register_actors(broker, build_stores(pool, settings), breaker)
    if settings.hookyard_worker_metrics_port:
        port = settings.hookyard_worker_metrics_port + index
        try:
            start_http_server(port, addr=settings.hookyard_metrics_host)
            log.info("metrics_listening", url=f"http://{settings.hookyard_metrics_host}:{port}/metrics")
        except OSError as exc:
            log.warning("metrics_port_busy", port=port, error=str(exc))

    worker = dramatiq.Worker(broker, queues=set(QUEUES), worker_threads=threads)
    worker.start()
    log.info("worker_started", threads=threads, queues=sorted(QUEUES), pid=os.getpid())
    while not stop.wait(1.0):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("parent_gone", detail="the supervising process exited; stopping")
            break
    log.info("worker_stopping")
    worker.stop(timeout=STOP_TIMEOUT_MS)
    broker.close()
    pool.close()
    log.info("worker_stopped")
    return 0


def _child(settings: Settings, threads: int, index: int, parent_pid: int) -> None:
    raise SystemExit(run_worker_process(settings, threads=threads, index=index, parent_pid=parent_pid))


def run_fleet(settings: Settings, *, processes: int, threads: int) -> int:
    """Run ``processes`` worker processes; restart one that dies, stop all on SIGTERM/SIGINT."""
    if processes == 1:
        return run_worker_process(settings, threads=threads, index=0)
    configure_logging(settings.hookyard_log_level, settings.hookyard_log_format)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getpid()

    def spawn(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_child, args=(settings, threads, index, parent), name=f"worker-{index}"
        )
        process.start()
        return process

    children = [spawn(index) for index in range(processes)]
    while not stop.wait(0.5):
        for index, child in enumerate(children):
            if not child.is_alive() and not stop.is_set():
                log.error("worker_process_died", index=index, exitcode=child.exitcode)
                time.sleep(1)
                children[index] = spawn(index)
    for child in children:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(STOP_TIMEOUT_MS / 1000 + 5)
    return 0
